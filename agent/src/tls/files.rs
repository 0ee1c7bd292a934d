//! Directories and errors for the CA's files. The files themselves are written with
//! [`crate::routes::write_file_mode`] (O_EXCL temporary file, exact mode, rename).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Creates `dir` (and parents) and gives it exactly `mode`.
pub fn private_dir(dir: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir_all(dir).map_err(|e| context(e, "create directory", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(|e| context(e, "chmod", dir))
}

pub fn context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

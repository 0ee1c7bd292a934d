//! Writing key and certificate files another process reads while we replace them.
//!
//! The temporary file is created with `O_EXCL` under a random name and its final mode, so no
//! other process can have opened it first or read the key through a looser mode for a moment.
//! It is then fsynced and renamed over the target: a reader sees the old or the new file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Replaces `path` with `content` and mode `mode` unless it already holds exactly that.
/// Returns whether the file changed.
pub fn write_private(path: &Path, content: &[u8], mode: u32) -> io::Result<bool> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        if meta.is_file()
            && meta.permissions().mode() & 0o7777 == mode
            && fs::read(path).is_ok_and(|existing| existing == content)
        {
            return Ok(false);
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    // Hidden and `.tmp`: bloud-proxy's file provider skips both.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| context(e, "create", &tmp))?;
        // The umask may have narrowed the mode given to open(2); set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| context(e, "chmod", &tmp))?;
        f.write_all(content)
            .map_err(|e| context(e, "write", &tmp))?;
        f.sync_all().map_err(|e| context(e, "fsync", &tmp))?;
        fs::rename(&tmp, path).map_err(|e| context(e, "rename into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(true)
}

/// Creates `dir` (and parents) and gives it exactly `mode`.
pub fn private_dir(dir: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir_all(dir).map_err(|e| context(e, "create directory", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(|e| context(e, "chmod", dir))
}

pub fn context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_is_exact_and_no_temp_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        assert!(write_private(&path, b"secret", 0o640).unwrap());
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        assert!(!write_private(&path, b"secret", 0o640).unwrap());
        // Same content, wrong mode: rewritten with the right one.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(write_private(&path, b"secret", 0o640).unwrap());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("k.key")]);
    }
}

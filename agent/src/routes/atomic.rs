//! Atomic file replacement for files that another process watches or reads.
//!
//! Upstream learned this the hard way (commit 87b0981): the proxy reloading a half-written route
//! file made routes vanish for seconds. We write a hidden `.<name>.<random>.tmp` next to the
//! target (the proxy ignores both hidden and `*.tmp` files), fsync it, rename it over the target
//! and fsync the directory, so a reader sees either the old or the new file, also after a power
//! cut. The TLS key and certificate files use the same path with their own modes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Replaces `path` with `content` (mode 0644: the proxy runs as another user and must be able
/// to read it) unless it already holds exactly that. Returns whether the file changed. Creates
/// missing parent directories.
pub fn write_file_atomic(path: &Path, content: &[u8]) -> io::Result<bool> {
    let dir = parent_of(path);
    fs::create_dir_all(dir).map_err(|e| with_path(e, "create directory", dir))?;
    write_file_mode(path, content, 0o644)
}

/// Replaces `path` with `content` and exactly `mode` unless it already holds both. Returns
/// whether the file changed. The temporary file is created with `O_EXCL` under a random hidden
/// name and its final mode, so no other process can have opened it first or read a key through
/// a looser mode for a moment.
pub fn write_file_mode(path: &Path, content: &[u8], mode: u32) -> io::Result<bool> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        if meta.is_file()
            && meta.permissions().mode() & 0o7777 == mode
            && fs::read(path).is_ok_and(|existing| existing == content)
        {
            return Ok(false);
        }
    }
    let dir = parent_of(path);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
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
            .map_err(|e| with_path(e, "create", &tmp))?;
        // The umask may have narrowed the mode given to open(2); set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| with_path(e, "chmod", &tmp))?;
        f.write_all(content)
            .map_err(|e| with_path(e, "write", &tmp))?;
        f.sync_all().map_err(|e| with_path(e, "fsync", &tmp))?;
        fs::rename(&tmp, path).map_err(|e| with_path(e, "rename into place", path))
    })();
    if result.is_err() {
        // Leave no stray temp file behind; the original is untouched.
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // The rename is durable only once the directory entry is on disk.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(true)
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::{write_file_atomic, write_file_mode};

    #[test]
    fn writes_skips_unchanged_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("f.yml");
        assert!(write_file_atomic(&path, b"one").unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert!(!write_file_atomic(&path, b"one").unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
        assert!(write_file_atomic(&path, b"two").unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f.yml")]);
    }

    #[test]
    fn failure_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a directory: rename must fail, and nothing else may change.
        let path = dir.path().join("target");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"x").unwrap();
        assert!(write_file_atomic(&path, b"new").is_err());
        assert!(path.join("keep").exists());
        // No temporary file is left beside it, whatever its name.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("target")]);
    }

    #[test]
    fn mode_is_exact_and_no_temp_file_is_left() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        assert!(write_file_mode(&path, b"secret", 0o640).unwrap());
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        assert!(!write_file_mode(&path, b"secret", 0o640).unwrap());
        // Same content, wrong mode: rewritten with the right one.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(write_file_mode(&path, b"secret", 0o640).unwrap());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("k.key")]);
    }
}

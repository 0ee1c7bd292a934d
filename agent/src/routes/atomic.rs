//! Atomic file replacement for files that another process watches or reads.
//!
//! Upstream learned this the hard way (commit 87b0981): the proxy reloading a half-written route
//! file made routes vanish for seconds. We write `<name>.tmp` next to the target (the proxy
//! ignores `*.tmp`), fsync it, rename it over the target and fsync the directory, so a reader
//! sees either the old or the new file, also after a power cut.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Replaces `path` with `content` unless it already holds exactly that. Returns whether the
/// file changed. Creates missing parent directories.
pub fn write_file_atomic(path: &Path, content: &[u8]) -> io::Result<bool> {
    match fs::read(path) {
        Ok(existing) if existing == content => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(with_path(e, "read", path)),
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| with_path(e, "create directory", dir))?;
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);

    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| with_path(e, "create", &tmp))?;
        f.write_all(content)
            .map_err(|e| with_path(e, "write", &tmp))?;
        f.sync_all().map_err(|e| with_path(e, "fsync", &tmp))?;
        set_readable(&f);
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

/// 0644: the proxy runs as another user and must be able to read the file.
fn set_readable(f: &File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = f.set_permissions(fs::Permissions::from_mode(0o644));
    }
    #[cfg(not(unix))]
    let _ = f;
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::write_file_atomic;

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
        assert!(!dir.path().join("target.tmp").exists());
    }
}

//! `apps.list`: what crosses from the agent (user `bloud`) to the root rebuild helper.
//!
//! The agent writes the names of the enabled apps, one per line, next to `apps.nix`. The root
//! side (`bloud-agent apps-nix`, run by `bloud-rebuild` through sudo) reads that file once,
//! without following a symlink anywhere on its path, accepts only names of the catalog shipped
//! in the Nix store, and generates the Nix module itself with [`crate::nixgen`]. So the `bloud`
//! user can choose which catalog apps are on, and nothing else: no Nix of its own reaches root.
//!
//! Errors name the line and the reason, never the content: the file may be anything (a hard
//! link to a root-only file, a FIFO), and its bytes must not come out of a root process.

use std::ffi::CString;
use std::fmt::Write;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use crate::catalog::Catalog;
use crate::nixgen::{generate_apps_nix, AppState, NixState};

/// File name next to apps.nix and apps-state.json.
pub const APPS_LIST: &str = "apps.list";

/// More than every catalog app many times over; a bigger file is refused unread.
pub const MAX_LIST_BYTES: u64 = 64 * 1024;

/// Longest app name accepted (catalog names are short directory names).
const MAX_NAME: usize = 64;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ListError {
    #[error("the app list path must be absolute and plain (no `.`/`..`)")]
    BadPath,
    #[error("the app list or a directory above it is a symlink or not a directory; refused")]
    Symlink,
    #[error("the app list is not a regular file; refused")]
    NotRegular,
    #[error("the app list has more than one link (a hard link to another file?); refused")]
    HardLink,
    #[error("the app list is larger than {MAX_LIST_BYTES} bytes; refused")]
    TooLarge,
    #[error("cannot read the app list: {0}")]
    Io(String),
    #[error("line {0}: not an app name (lowercase letters, digits and `-`); refused")]
    Syntax(usize),
    #[error("line {0}: not an app of the catalog; refused")]
    Unknown(usize),
}

/// The list for `state`: enabled app names, sorted, one per line.
pub fn render(state: &NixState) -> String {
    let mut out = String::new();
    for name in state.enabled_apps() {
        let _ = writeln!(out, "{name}");
    }
    out
}

/// Opens `path` component by component with `O_NOFOLLOW`, so a symlink anywhere on the way
/// (not only the last component) is refused, then reads it once. `Ok(None)` when the file
/// does not exist (no app was ever enabled).
pub fn read_no_follow(path: &Path) -> Result<Option<Vec<u8>>, ListError> {
    if !path.is_absolute() {
        return Err(ListError::BadPath);
    }
    let mut names = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => names.push(n),
            _ => return Err(ListError::BadPath),
        }
    }
    let Some((file, dirs)) = names.split_last() else {
        return Err(ListError::BadPath);
    };
    let mut dir =
        open_at(None, Path::new("/").as_os_str().as_bytes(), true)?.ok_or(ListError::BadPath)?;
    for d in dirs {
        match open_at(Some(&dir), d.as_bytes(), true)? {
            Some(next) => dir = next,
            None => return Ok(None),
        }
    }
    let Some(fd) = open_at(Some(&dir), file.as_bytes(), false)? else {
        return Ok(None);
    };
    let mut f = std::fs::File::from(fd);
    let meta = f.metadata().map_err(|e| ListError::Io(e.to_string()))?;
    if !meta.file_type().is_file() {
        return Err(ListError::NotRegular);
    }
    if std::os::unix::fs::MetadataExt::nlink(&meta) != 1 {
        return Err(ListError::HardLink);
    }
    let mut bytes = Vec::new();
    (&mut f)
        .take(MAX_LIST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ListError::Io(e.to_string()))?;
    if bytes.len() as u64 > MAX_LIST_BYTES {
        return Err(ListError::TooLarge);
    }
    Ok(Some(bytes))
}

/// `openat(dir, name, O_NOFOLLOW | …)`; `Ok(None)` for a missing entry.
fn open_at(
    dir: Option<&OwnedFd>,
    name: &[u8],
    directory: bool,
) -> Result<Option<OwnedFd>, ListError> {
    let c = CString::new(name).map_err(|_| ListError::BadPath)?;
    // O_NONBLOCK: opening a FIFO must not hang the helper; it is refused after fstat.
    let flags = libc::O_RDONLY
        | libc::O_CLOEXEC
        | libc::O_NOFOLLOW
        | libc::O_NOCTTY
        | if directory {
            libc::O_DIRECTORY
        } else {
            libc::O_NONBLOCK
        };
    let base = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `c` is a valid NUL-terminated string and `base` an open descriptor (or AT_FDCWD).
    let fd = unsafe { libc::openat(base, c.as_ptr(), flags) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(None),
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => Err(ListError::Symlink),
            _ => Err(ListError::Io(e.kind().to_string())),
        };
    }
    // SAFETY: `fd` was just returned by openat and is owned by nobody else.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Parses the list: one catalog app name per line (empty lines allowed). The whole list is
/// refused on the first bad line.
pub fn parse(bytes: &[u8], catalog: &Catalog) -> Result<Vec<String>, ListError> {
    let mut names = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let valid = line.len() <= MAX_NAME
            && line[0].is_ascii_alphanumeric()
            && line
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if !valid {
            return Err(ListError::Syntax(n));
        }
        // Checked ASCII above.
        let name = String::from_utf8_lossy(line).into_owned();
        if !catalog.contains(&name) {
            return Err(ListError::Unknown(n));
        }
        names.push(name);
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// The Nix module for a validated list: the same generator as the agent's apps.nix, with the
/// Authentik LDAP switch recomputed from the catalog (not taken from the input).
pub fn generate(catalog: &Catalog, names: &[String]) -> String {
    let mut state = NixState::default();
    for name in names {
        state.apps.insert(
            name.clone(),
            AppState {
                name: name.clone(),
                integrations: None,
                enabled: true,
            },
        );
    }
    state.recompute_global(catalog);
    generate_apps_nix(&state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn catalog() -> Catalog {
        let load = Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps"));
        assert!(load.errors.is_empty(), "{:#?}", load.errors);
        load.catalog
    }

    #[test]
    fn parse_accepts_catalog_names_only() {
        let c = catalog();
        let cases: &[(&str, Result<Vec<&str>, ListError>)] = &[
            ("", Ok(vec![])),
            ("miniflux\npostgres\n", Ok(vec!["miniflux", "postgres"])),
            ("postgres\n\nminiflux", Ok(vec!["miniflux", "postgres"])),
            ("miniflux\nminiflux\n", Ok(vec!["miniflux"])),
            ("miniflux\nnot-an-app\n", Err(ListError::Unknown(2))),
            ("miniflux.enable = true;\n", Err(ListError::Syntax(1))),
            ("Miniflux\n", Err(ListError::Syntax(1))),
            (" miniflux\n", Err(ListError::Syntax(1))),
            ("-x\n", Err(ListError::Syntax(1))),
            ("miniflux\r\n", Err(ListError::Syntax(1))),
            ("../../etc/shadow\n", Err(ListError::Syntax(1))),
        ];
        for (input, want) in cases {
            let got = parse(input.as_bytes(), &c);
            let want: Result<Vec<String>, ListError> = want
                .clone()
                .map(|v| v.into_iter().map(String::from).collect());
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn errors_never_contain_the_input() {
        let c = catalog();
        let secret = "root:$6$hash:19000:0:99999:7:::";
        let err = parse(format!("miniflux\n{secret}\n").as_bytes(), &c).unwrap_err();
        assert!(!err.to_string().contains("root"), "{err}");
    }

    #[test]
    fn generated_nix_enables_the_names_and_recomputes_ldap() {
        let c = catalog();
        let nix = generate(&c, &["jellyfin".to_string(), "authentik".to_string()]);
        assert!(
            nix.contains("  bloud.apps.jellyfin.enable = true;\n"),
            "{nix}"
        );
        // jellyfin's SSO is LDAP: the switch comes from the catalog, not from the list.
        assert!(
            nix.contains("bloud.apps.authentik.ldap.enable = true;"),
            "{nix}"
        );
        let plain = generate(&c, &["miniflux".to_string()]);
        assert!(!plain.contains("ldap"), "{plain}");
    }

    #[test]
    fn symlinks_fifos_hard_links_and_big_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let real = root.join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("apps.list"), "miniflux\n").unwrap();
        assert_eq!(
            read_no_follow(&real.join("apps.list")).unwrap().as_deref(),
            Some(&b"miniflux\n"[..])
        );
        assert_eq!(read_no_follow(&real.join("missing")).unwrap(), None);
        assert_eq!(read_no_follow(&root.join("nodir/apps.list")).unwrap(), None);

        // Last component a symlink.
        symlink(real.join("apps.list"), real.join("link")).unwrap();
        assert_eq!(read_no_follow(&real.join("link")), Err(ListError::Symlink));
        // A directory on the way a symlink.
        symlink(&real, root.join("dirlink")).unwrap();
        assert_eq!(
            read_no_follow(&root.join("dirlink/apps.list")),
            Err(ListError::Symlink)
        );
        // A FIFO does not block and is refused.
        let fifo = CString::new(real.join("fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(
            read_no_follow(&real.join("fifo")),
            Err(ListError::NotRegular)
        );
        // A hard link (e.g. to a root-only file on the same file system).
        std::fs::write(real.join("other"), "x\n").unwrap();
        std::fs::hard_link(real.join("other"), real.join("hard")).unwrap();
        assert_eq!(read_no_follow(&real.join("hard")), Err(ListError::HardLink));
        // Too big.
        std::fs::write(real.join("big"), vec![b'a'; MAX_LIST_BYTES as usize + 1]).unwrap();
        assert_eq!(read_no_follow(&real.join("big")), Err(ListError::TooLarge));
        // Relative and dotted paths.
        assert_eq!(
            read_no_follow(Path::new("apps.list")),
            Err(ListError::BadPath)
        );
        assert_eq!(
            read_no_follow(&root.join("real/../real/apps.list")),
            Err(ListError::BadPath)
        );
    }
}

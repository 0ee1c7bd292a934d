//! Where the binaries under test are: `cargo test` runs `<target>/debug/deps/<test>-<hash>`, and
//! `cargo build --workspace --bins` (run first by scripts/test) puts the binaries in `<target>/debug`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context};

pub struct Bins {
    pub proxy: PathBuf,
    pub agent: PathBuf,
}

pub fn locate() -> anyhow::Result<Bins> {
    let exe = std::env::current_exe().context("cannot find the test executable's path")?;
    let deps = exe
        .parent()
        .with_context(|| format!("{} has no parent directory", exe.display()))?;
    let profile_dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent()
            .with_context(|| format!("{} has no parent directory", deps.display()))?
    } else {
        deps
    };
    let bins = Bins {
        proxy: profile_dir.join("bloud-proxy"),
        agent: profile_dir.join("bloud-agent"),
    };
    for bin in [&bins.proxy, &bins.agent] {
        if !bin.is_file() {
            bail!(
                "{} does not exist: run `cargo build --workspace --bins` before the end-to-end tests \
                 (scripts/test does)",
                bin.display()
            );
        }
    }
    static CHECKED: std::sync::Once = std::sync::Once::new();
    CHECKED.call_once(|| {
        warn_if_stale(&bins.proxy, "proxy");
        warn_if_stale(&bins.agent, "agent");
    });
    Ok(bins)
}

/// `cargo test` does not rebuild the binaries: say so when one is older than its sources, so a
/// failure (the warning is shown with it) is not blamed on code the binary does not contain.
fn warn_if_stale(bin: &Path, crate_dir: &str) {
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok();
    let newest = newest_mtime(&super::repo_root().join(crate_dir).join("src"));
    if let (Some(built), Some((newest, file))) = (built, newest) {
        if newest > built {
            eprintln!(
                "warning: {} is older than {}: run `cargo build --workspace --bins` to test the current code",
                bin.display(),
                file.display()
            );
        }
    }
}

fn newest_mtime(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let candidate = if path.is_dir() {
            newest_mtime(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .map(|t| (t, path))
        };
        if let Some(c) = candidate {
            if newest.as_ref().is_none_or(|n| c.0 > n.0) {
                newest = Some(c);
            }
        }
    }
    newest
}

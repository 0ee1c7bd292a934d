//! Where the binaries under test are: `cargo test` runs `<target>/debug/deps/<test>-<hash>`, and
//! `cargo build --workspace --bins` (run first by scripts/test) puts the binaries in `<target>/debug`.

use std::path::PathBuf;

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
    Ok(bins)
}

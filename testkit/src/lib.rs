//! Helpers every test suite of the workspace needs, kept in one place.
//!
//! The one job today: finding upstream Bloud's real files (its Traefik route files and app
//! metadata) for the compatibility suites. They are not part of this repository, so a user's
//! clone has no copy; those suites then skip with one line that says why, and CI, which has
//! the files, sets [`REQUIRE_VAR`] so a missing copy fails instead of passing quietly.

use std::path::{Path, PathBuf};

/// Where the upstream fixtures are (a directory holding `traefik/` and `upstream-apps/`).
pub const LOCATION_VAR: &str = "BLOUD_UPSTREAM_FIXTURES";
/// Set to `1` to turn "upstream fixtures not found" from a skip into a test failure.
pub const REQUIRE_VAR: &str = "BLOUD_REQUIRE_UPSTREAM_FIXTURES";

/// The repository root (this crate lives one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where upstream's fixtures are looked for: `$BLOUD_UPSTREAM_FIXTURES`, else
/// `fixtures/` of the checkout's sibling `shared/` directory (where the project's own
/// machines keep them).
pub fn upstream_fixtures_location() -> PathBuf {
    match std::env::var_os(LOCATION_VAR) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root().join("../shared/fixtures"),
    }
}

/// `Some(dir)` when upstream's fixture directory `sub` (e.g. `"traefik"`) exists. Otherwise
/// prints one line naming the test, the path and how to run it, and returns `None` — or
/// panics when [`REQUIRE_VAR`] is `1`, so a CI run cannot skip the compatibility suite.
pub fn upstream_fixtures(sub: &str, test: &str) -> Option<PathBuf> {
    let dir = upstream_fixtures_location().join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    let why = format!(
        "{test}: upstream Bloud fixtures not found at {} (set {LOCATION_VAR}=<dir with traefik/ and upstream-apps/> to run the compatibility suite)",
        dir.display()
    );
    if required() {
        panic!("{why}; {REQUIRE_VAR}=1 makes this a failure");
    }
    eprintln!("skipped: {why}");
    None
}

fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test touches the process environment, so no other test here races with it.
    #[test]
    fn missing_fixtures_skip_unless_required() {
        std::env::set_var(LOCATION_VAR, "/nonexistent/bloud-fixtures");
        std::env::remove_var(REQUIRE_VAR);
        assert_eq!(upstream_fixtures("traefik", "t"), None);
        std::env::set_var(REQUIRE_VAR, "1");
        let required = std::panic::catch_unwind(|| upstream_fixtures("traefik", "t"));
        assert!(required.is_err(), "a required, missing copy must fail");
        let dir = std::env::temp_dir().join(format!("bloud-testkit-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("traefik")).expect("temp dir");
        std::env::set_var(LOCATION_VAR, &dir);
        assert_eq!(upstream_fixtures("traefik", "t"), Some(dir.join("traefik")));
        std::env::remove_var(REQUIRE_VAR);
        std::env::remove_var(LOCATION_VAR);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

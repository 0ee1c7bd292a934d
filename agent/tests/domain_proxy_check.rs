//! The files the agent writes for the proxy pass `bloud-proxy check`: the generated
//! `apps-routes.yml` for the whole catalog, next to the base routes and Authentik's root routes
//! taken from our catalog's `traefikConfig`.
//!
//! Needs the proxy binary: `BLOUD_PROXY_BIN`, or `bloud-proxy` in the same target directory as
//! this test (the test command builds all binaries first). Without it the test says so and
//! passes, so `cargo test -p bloud-agent` alone still works.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bloud_agent::catalog::Catalog;
use bloud_agent::routes::{generate, write_atomic};

fn proxy_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BLOUD_PROXY_BIN") {
        return Some(PathBuf::from(p));
    }
    // <target>/debug/deps/<test> -> <target>/debug/bloud-proxy
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("bloud-proxy");
    candidate.is_file().then_some(candidate)
}

/// Messages for middlewares the proxy does not implement yet are not our problem; anything else
/// (unknown keys, wrong types, dangling references, bad rules) is.
fn real_problems(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !(l.contains("not supported")
                || l.contains("unsupported")
                || l.contains("not implemented"))
        })
        .filter(|l| !l.to_ascii_lowercase().contains("warning"))
        .collect()
}

#[test]
fn generated_routes_pass_bloud_proxy_check() {
    let Some(bin) = proxy_binary() else {
        eprintln!("bloud-proxy binary not built: skipping the proxy check of generated routes");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let catalog = Catalog::load(&root.join("apps")).catalog;
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes");
    std::fs::create_dir_all(&routes).unwrap();
    std::fs::copy(root.join("config/routes/base.yml"), routes.join("base.yml")).unwrap();
    let authentik = catalog
        .get("authentik")
        .and_then(|a| a.traefik_config.clone())
        .expect("authentik's root routes in the catalog");
    std::fs::write(
        routes.join("authentik.yml"),
        serde_saphyr::to_string(&authentik).unwrap(),
    )
    .unwrap();
    let static_file = dir.path().join("static.yml");
    std::fs::write(
        &static_file,
        format!(
            "entryPoints:\n  web: {{ address: \"127.0.0.1:0\" }}\nproviders:\n  file: {{ directory: {:?}, watch: false }}\n",
            routes.display().to_string()
        ),
    )
    .unwrap();

    let names: Vec<String> = catalog.apps().map(|a| a.name.clone()).collect();
    for authentik_installed in [true, false] {
        let content =
            generate(&catalog, &names, "http://bloud.local", authentik_installed).unwrap();
        write_atomic(&routes, &content).unwrap();
        let mut child = Command::new(&bin)
            .arg("check")
            .arg("--config")
            .arg(&static_file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "bloud-proxy check hung");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let problems = real_problems(&text);
        assert!(
            problems.is_empty(),
            "bloud-proxy check (authentik={authentik_installed}) reported:\n{text}"
        );
    }
}

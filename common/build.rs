//! Compiles the Authentik path list that the web shell also reads (web/src/sw/authentik-paths.json)
//! into constants, so a malformed list fails the build instead of a request, and the proxy's hot
//! path scans a `const` slice.

use std::fmt::Write as _;
use std::path::PathBuf;

const LIST: &str = "../web/src/sw/authentik-paths.json";

fn main() {
    println!("cargo:rerun-if-changed={LIST}");
    println!("cargo:rerun-if-changed=build.rs");
    if let Err(e) = run() {
        // A build script reports failure by exiting non-zero; the message is shown by cargo.
        eprintln!("error: {LIST}: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(PathBuf::from(manifest_dir).join(LIST))
        .map_err(|e| format!("cannot read it: {e}"))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let entries = doc
        .get("paths")
        .and_then(|p| p.as_array())
        .ok_or("`paths` must be an array")?;
    let mut all = String::new();
    let mut never_prefixed = String::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = entry
            .get("path")
            .and_then(|p| p.as_str())
            .ok_or_else(|| format!("paths[{i}].path must be a string"))?;
        // The same checks the embed middleware makes of its `exclude` paths: a root path that
        // the segment match and the generated Rust literal can take as they are.
        if !path.starts_with('/')
            || path.len() < 2
            || path
                .bytes()
                .any(|b| b <= b' ' || b >= 0x7f || b"?#\\\"'<>`".contains(&b))
        {
            return Err(format!(
                "paths[{i}].path {path:?} must be a plain root path (`/x`, no spaces, quotes, `?`, `#`)"
            ));
        }
        let flag = |name: &str| -> Result<bool, String> {
            match entry.get(name) {
                None => Ok(false),
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| format!("paths[{i}].{name} must be true or false")),
            }
        };
        let never_client_rewritten = flag("neverClientRewritten")?;
        let shared_with_apps = flag("sharedWithApps")?;
        let _ = writeln!(
            all,
            "    AuthentikPath {{ path: {path:?}, never_client_rewritten: {never_client_rewritten}, shared_with_apps: {shared_with_apps} }},"
        );
        if !shared_with_apps {
            let _ = writeln!(never_prefixed, "    {path:?},");
        }
    }
    if entries.is_empty() {
        return Err("`paths` is empty".into());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let write = |name: &str, items: &str| {
        std::fs::write(out.join(name), format!("&[\n{items}]\n"))
            .map_err(|e| format!("cannot write {name}: {e}"))
    };
    write("authentik_paths.rs", &all)?;
    write("authentik_never_prefixed.rs", &never_prefixed)
}

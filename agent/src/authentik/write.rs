//! Writing the blueprint directory: each file atomically (Authentik's worker watches the
//! directory and must never apply half a file), and removing files this agent wrote earlier
//! that the current set no longer has (an uninstalled app, the outpost file once no forward-auth
//! app is left). Files without [`GENERATED_MARKER`] (an operator's own blueprints) are left alone.

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::blueprints::{Blueprints, GENERATED_MARKER};
use crate::routes::write_file_atomic;

/// Makes `dir` hold exactly `files` among the agent's blueprints. Returns whether anything
/// changed.
pub fn write_dir(dir: &Path, files: &Blueprints) -> io::Result<bool> {
    let mut changed = false;
    if dir.exists() {
        let entries = fs::read_dir(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.ends_with(".yaml") || files.contains_key(name) {
                continue;
            }
            let path = entry.path();
            if generated_by_us(&path)? {
                fs::remove_file(&path).map_err(|e| {
                    io::Error::new(e.kind(), format!("remove {}: {e}", path.display()))
                })?;
                changed = true;
            }
        }
    } else if files.is_empty() {
        return Ok(false);
    }
    for (name, content) in files {
        changed |= write_file_atomic(&dir.join(name), content.as_bytes())?;
    }
    Ok(changed)
}

fn generated_by_us(path: &Path) -> io::Result<bool> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    let mut first = String::new();
    BufReader::new(file).read_line(&mut first)?;
    Ok(first.trim_end() == GENERATED_MARKER)
}

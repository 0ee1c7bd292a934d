//! `chain`: a named list of middlewares. Chains are flattened when the route table is compiled,
//! so a request walks one flat list; cycles are configuration errors.

use std::collections::BTreeMap;

use crate::config::dynamic::MiddlewareConfig;

/// Strips Traefik's `@file` provider suffix; other providers are not available here.
pub fn local_name(reference: &str) -> Result<&str, String> {
    match reference.split_once('@') {
        None => Ok(reference),
        Some((name, "file")) => Ok(name),
        Some((_, provider)) => Err(format!(
            "{reference:?}: provider {provider:?} is not available (only @file)"
        )),
    }
}

/// Expands middleware references (following chains) into the flat list of leaf names.
pub fn flatten(
    refs: &[String],
    all: &BTreeMap<String, MiddlewareConfig>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut stack = Vec::new();
    expand(refs, all, &mut stack, &mut out)?;
    Ok(out)
}

fn expand(
    refs: &[String],
    all: &BTreeMap<String, MiddlewareConfig>,
    stack: &mut Vec<String>,
    out: &mut Vec<String>,
) -> Result<(), String> {
    for r in refs {
        let name = local_name(r)?;
        let cfg = all
            .get(name)
            .ok_or_else(|| format!("middleware {name:?} is not defined"))?;
        match &cfg.chain {
            Some(chain) => {
                if stack.iter().any(|s| s == name) {
                    return Err(format!("chain cycle: {} -> {name}", stack.join(" -> ")));
                }
                stack.push(name.to_string());
                expand(&chain.middlewares, all, stack, out)?;
                stack.pop();
            }
            None => out.push(name.to_string()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dynamic::{Chain, Headers};

    fn headers() -> MiddlewareConfig {
        MiddlewareConfig {
            headers: Some(Headers::default()),
            ..Default::default()
        }
    }

    fn chain(names: &[&str]) -> MiddlewareConfig {
        MiddlewareConfig {
            chain: Some(Chain {
                middlewares: names.iter().map(|s| s.to_string()).collect(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn flattens_nested_chains_in_order() {
        let mut all = BTreeMap::new();
        all.insert("a".to_string(), headers());
        all.insert("b".to_string(), headers());
        all.insert("inner".to_string(), chain(&["b", "a@file"]));
        all.insert("outer".to_string(), chain(&["a", "inner"]));
        let flat = flatten(&["outer".to_string(), "b".to_string()], &all).expect("valid");
        assert_eq!(flat, vec!["a", "b", "a", "b"]);
    }

    #[test]
    fn cycles_and_missing_are_errors() {
        let mut all = BTreeMap::new();
        all.insert("x".to_string(), chain(&["y"]));
        all.insert("y".to_string(), chain(&["x"]));
        assert!(flatten(&["x".to_string()], &all)
            .unwrap_err()
            .contains("cycle"));
        assert!(flatten(&["nope".to_string()], &all)
            .unwrap_err()
            .contains("not defined"));
        assert!(flatten(&["x@docker".to_string()], &all)
            .unwrap_err()
            .contains("docker"));
    }
}

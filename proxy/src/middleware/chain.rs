//! `chain`: a named list of middlewares. Chains are flattened when the route table is compiled,
//! so a request walks one flat list; cycles are configuration errors.

use std::collections::{BTreeMap, HashMap};

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

/// How many middlewares one router's list may expand to. Real chains hold a handful; without a
/// bound, 30 chains that each list the next one twice (1.6 KB of YAML) expand to 2^30 names.
pub const MAX_LEAVES: usize = 64;
/// How deep chains may nest (each level is one recursion while expanding).
pub const MAX_DEPTH: usize = 16;

/// Expands middleware references (following chains) into the flat list of leaf names.
pub fn flatten(
    refs: &[String],
    all: &BTreeMap<String, MiddlewareConfig>,
) -> Result<Vec<String>, String> {
    let mut expander = Expander {
        all,
        memo: HashMap::new(),
        stack: Vec::new(),
    };
    expander.expand(refs)
}

struct Expander<'a> {
    all: &'a BTreeMap<String, MiddlewareConfig>,
    /// Each chain is expanded once; later references reuse the result, so the work is linear in
    /// the number of chains however often they refer to each other.
    memo: HashMap<&'a str, Vec<String>>,
    /// The chains being expanded, outermost first (for cycle errors).
    stack: Vec<&'a str>,
}

impl<'a> Expander<'a> {
    fn expand(&mut self, refs: &[String]) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for r in refs {
            let name = local_name(r)?;
            let (name, cfg) = self
                .all
                .get_key_value(name)
                .ok_or_else(|| format!("middleware {name:?} is not defined"))?;
            match &cfg.chain {
                Some(chain) => out.extend_from_slice(&self.chain(name, &chain.middlewares)?),
                None => out.push(name.clone()),
            }
            if out.len() > MAX_LEAVES {
                return Err(format!(
                    "expands to more than {MAX_LEAVES} middlewares (chains included); \
                     list each middleware once"
                ));
            }
        }
        Ok(out)
    }

    fn chain(&mut self, name: &'a str, members: &[String]) -> Result<Vec<String>, String> {
        if let Some(done) = self.memo.get(name) {
            return Ok(done.clone());
        }
        if self.stack.contains(&name) {
            return Err(format!(
                "chain cycle: {} -> {name}",
                self.stack.join(" -> ")
            ));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!(
                "chains nest more than {MAX_DEPTH} levels deep: {} -> {name}",
                self.stack.join(" -> ")
            ));
        }
        self.stack.push(name);
        let flat = self.expand(members);
        self.stack.pop();
        let flat = flat?;
        self.memo.insert(name, flat.clone());
        Ok(flat)
    }
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

    /// Each case: chains as (name, members), the router's list, and the expected result
    /// (`Ok` leaves or a fragment of the error).
    #[test]
    fn expansion_is_bounded() {
        // 15 chains, each listing the next twice: 2^15 leaves without the bound (the attack
        // used 30 levels, which the depth bound now refuses first: see "too deep").
        let mut doubling: Chains = (0..15)
            .map(|i| (format!("c{i}"), vec![format!("c{}", i + 1); 2]))
            .collect();
        doubling.push(("c15".into(), vec!["h".into()]));
        let deep: Chains = (0..40)
            .map(|i| (format!("d{i}"), vec![format!("d{}", i + 1)]))
            .chain([("d40".to_string(), vec!["h".to_string()])])
            .collect();
        let wide: Chains = vec![("w".into(), vec!["h".into(); MAX_LEAVES])];
        type Chains = Vec<(String, Vec<String>)>;
        let cases: Vec<(&str, Chains, &str, Result<usize, &str>)> = vec![
            (
                "exponential",
                doubling,
                "c0",
                Err("more than 64 middlewares"),
            ),
            ("too deep", deep, "d0", Err("nest more than 16 levels")),
            ("exactly the limit", wide.clone(), "w", Ok(MAX_LEAVES)),
            ("one over", wide, "w", Err("more than 64")),
        ];
        for (what, chains, entry, want) in cases {
            let mut all = BTreeMap::new();
            all.insert("h".to_string(), headers());
            for (name, members) in &chains {
                let m: Vec<&str> = members.iter().map(String::as_str).collect();
                all.insert(name.clone(), chain(&m));
            }
            let mut refs = vec![entry.to_string()];
            if what == "one over" {
                refs.push("h".into());
            }
            let start = std::time::Instant::now();
            let got = flatten(&refs, &all);
            assert!(
                start.elapsed().as_secs() < 1,
                "{what}: took {:?}",
                start.elapsed()
            );
            match (got, want) {
                (Ok(flat), Ok(n)) => assert_eq!(flat.len(), n, "{what}"),
                (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{what}: {e}"),
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_chain_used_twice_expands_the_same_both_times() {
        let mut all = BTreeMap::new();
        all.insert("a".to_string(), headers());
        all.insert("b".to_string(), headers());
        all.insert("pair".to_string(), chain(&["a", "b"]));
        all.insert("outer".to_string(), chain(&["pair", "a", "pair"]));
        let flat = flatten(&["outer".to_string()], &all).expect("valid");
        assert_eq!(flat, vec!["a", "b", "a", "a", "b"]);
    }
}

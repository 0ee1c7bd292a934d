//! The rule parser: any text parses or fails with an error (no panic, no stack overflow), the
//! nesting limit holds, the indexing hints of a parsed rule are true for every request it
//! matches, and a table of the parsed rules routes like a linear scan.
#![no_main]

use bloud_proxy::rules::{self, MAX_NESTING};
use bloud_proxy::RequestView;
use bloud_proxy_fuzz::{check_requirements, check_routing, request_candidates};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let [0xff, depth, style, ..] = *data {
        nesting(usize::from(depth), style);
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut accepted = Vec::new();
    for line in text.lines().take(16) {
        match rules::parse(line) {
            Ok(m) => accepted.push((line, m)),
            // The message is what `check` and the reload log print: it must render.
            Err(e) => drop(e.to_string()),
        }
    }

    let (paths, hosts, queries) = request_candidates(text);
    let headers = http::HeaderMap::new();
    for (_, m) in &accepted {
        for path in &paths {
            for host in &hosts {
                for query in &queries {
                    let req = RequestView {
                        method: "GET",
                        host,
                        path,
                        query: query.as_deref(),
                        headers: &headers,
                    };
                    check_requirements(m, &req);
                }
            }
        }
    }

    // The same rules as routers of one file: whatever the parser accepts, a table accepts, and
    // its index agrees with a scan. Control characters cannot be written in YAML.
    let mut yaml = String::from("http:\n  routers:\n");
    let mut n = 0;
    for (line, _) in &accepted {
        if line.chars().any(|c| c.is_control() && c != '\t') || line.trim() != *line {
            continue;
        }
        yaml.push_str(&format!(
            "    r{n}:\n      rule: '{}'\n      service: s\n",
            line.replace('\'', "''")
        ));
        n += 1;
    }
    yaml.push_str("  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n");
    match bloud_proxy::RouteTable::from_yaml(&[("fuzz.yml", &yaml)]) {
        Ok(table) => check_routing(&table, text),
        Err(e) => panic!("rules the parser accepts were refused in a file:\n{yaml}\n{e}"),
    }
});

/// A rule nested `depth` levels by parentheses, `!` or both: accepted up to [`MAX_NESTING`],
/// refused beyond, and never a stack overflow, even at thousands of levels.
fn nesting(depth: usize, style: u8) {
    let depth = if style & 4 != 0 { depth * 40 } else { depth };
    let rule = match style & 3 {
        0 => format!("{}Path(`/`){}", "(".repeat(depth), ")".repeat(depth)),
        1 => format!("{}Path(`/`)", "!".repeat(depth)),
        _ => format!(
            "{}Path(`/`){}",
            "!(".repeat(depth / 2),
            ")".repeat(depth / 2)
        ),
    };
    let levels = if style & 3 >= 2 { depth / 2 * 2 } else { depth };
    let parsed = rules::parse(&rule);
    assert_eq!(
        parsed.is_ok(),
        levels <= MAX_NESTING,
        "{levels} levels of nesting (limit {MAX_NESTING}): {:?}",
        parsed.err()
    );
}

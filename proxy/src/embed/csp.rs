//! Lets the injected shim run under an app's own `Content-Security-Policy`, changing the policy
//! as little as possible.
//!
//! For each policy (every `Content-Security-Policy` and `-Report-Only` header, every
//! comma-separated policy in it), the directive that governs a `<script src>` is
//! `script-src-elem`, else `script-src`, else `default-src` (none: scripts are not restricted).
//! Then, in order:
//! 1. it has a `'nonce-X'`: the tag gets `nonce="X"`, the policy stays;
//! 2. it allows `'self'` (or `*`) and has no `'strict-dynamic'`: the served path is allowed;
//! 3. it has `'strict-dynamic'` (which ignores `'self'`): the shim's `'sha256-…'` is added and
//!    the tag gets a matching `integrity` (a hash allows an external script only with one);
//! 4. otherwise `'self'` is appended. Not a hash or nonce: adding one would switch off an
//!    `'unsafe-inline'` the app relies on.
//!
//! A directive of `'none'` is left alone: the app runs no scripts, so nothing needs the shim.
//! Only one nonce fits on the tag; a second policy with a different nonce goes on to rule 2.

use http::header::{CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY};
use http::{HeaderMap, HeaderValue};

/// What the shim's tag needs so that every policy of the response lets it run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TagAttrs {
    pub nonce: Option<String>,
    pub integrity: bool,
}

/// Adapts the response's policies in place; returns the tag attributes they need. `sri` is
/// the shim's `sha256-<base64>`.
pub(crate) fn adapt(headers: &mut HeaderMap, sri: &str) -> TagAttrs {
    let mut attrs = TagAttrs::default();
    for name in [CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY] {
        if !headers.contains_key(&name) {
            continue;
        }
        let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
        let mut changed = false;
        let mut out = Vec::with_capacity(values.len());
        for value in values {
            let Ok(text) = value.to_str() else {
                out.push(value);
                continue;
            };
            match adapt_header(text, sri, &mut attrs) {
                Some(new) => match HeaderValue::from_str(&new) {
                    Ok(v) => {
                        changed = true;
                        out.push(v);
                    }
                    Err(_) => out.push(value),
                },
                None => out.push(value),
            }
        }
        if changed {
            headers.remove(&name);
            for v in out {
                headers.append(&name, v);
            }
        }
    }
    attrs
}

/// One header value (policies separated by `,`); `Some` with the new text when it changed.
fn adapt_header(value: &str, sri: &str, attrs: &mut TagAttrs) -> Option<String> {
    let mut changed = false;
    let policies: Vec<String> = value
        .split(',')
        .map(|policy| match adapt_policy(policy, sri, attrs) {
            Some(new) => {
                changed = true;
                new
            }
            None => policy.to_string(),
        })
        .collect();
    changed.then(|| policies.join(","))
}

fn adapt_policy(policy: &str, sri: &str, attrs: &mut TagAttrs) -> Option<String> {
    let directives: Vec<&str> = policy.split(';').collect();
    let named = |want: &str| {
        // The first of duplicate directives counts (CSP3 §2.2.1).
        directives.iter().position(|d| {
            d.split_ascii_whitespace()
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case(want))
        })
    };
    let index = named("script-src-elem")
        .or_else(|| named("script-src"))
        .or_else(|| named("default-src"))?;
    let sources: Vec<&str> = directives[index].split_ascii_whitespace().skip(1).collect();
    let is = |s: &str, want: &str| s.eq_ignore_ascii_case(want);
    if sources.is_empty() || (sources.len() == 1 && is(sources[0], "'none'")) {
        return None;
    }
    let nonce = sources.iter().find_map(|s| {
        let lower = s.get(..7)?;
        let value = s.get(7..s.len().checked_sub(1)?)?;
        (lower.eq_ignore_ascii_case("'nonce-") && s.ends_with('\'') && valid_nonce(value))
            .then_some(value)
    });
    if let Some(nonce) = nonce {
        match &attrs.nonce {
            None => {
                attrs.nonce = Some(nonce.to_string());
                return None;
            }
            Some(ours) if ours == nonce => return None,
            Some(_) => {}
        }
    }
    let strict = sources.iter().any(|s| is(s, "'strict-dynamic'"));
    let add = if strict {
        attrs.integrity = true;
        format!("'{sri}'")
    } else if sources.iter().any(|s| is(s, "'self'") || *s == "*") {
        return None;
    } else {
        "'self'".to_string()
    };
    let mut out: Vec<String> = directives.iter().map(|d| d.to_string()).collect();
    let directive = out[index].trim_end().to_string();
    out[index] = format!("{directive} {add}");
    Some(out.join(";"))
}

/// A nonce as CSP writes it (base64 or base64url); anything else is not put into markup.
fn valid_nonce(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRI: &str = "sha256-AAAA";

    /// (policy, policy after, nonce, integrity)
    #[test]
    fn table() {
        let cases: &[(&str, &str, Option<&str>, bool)] = &[
            ("default-src 'self'", "default-src 'self'", None, false),
            ("img-src *", "img-src *", None, false),
            (
                "script-src 'nonce-abc123' 'unsafe-inline'",
                "script-src 'nonce-abc123' 'unsafe-inline'",
                Some("abc123"),
                false,
            ),
            (
                "script-src 'nonce-abc' 'strict-dynamic'",
                "script-src 'nonce-abc' 'strict-dynamic'",
                Some("abc"),
                false,
            ),
            (
                "script-src 'strict-dynamic' 'sha256-xyz'; object-src 'none'",
                "script-src 'strict-dynamic' 'sha256-xyz' 'sha256-AAAA'; object-src 'none'",
                None,
                true,
            ),
            (
                "script-src 'self' 'strict-dynamic' 'sha256-xyz'",
                "script-src 'self' 'strict-dynamic' 'sha256-xyz' 'sha256-AAAA'",
                None,
                true,
            ),
            (
                "default-src 'none'; script-src https://cdn.example 'unsafe-inline'",
                "default-src 'none'; script-src https://cdn.example 'unsafe-inline' 'self'",
                None,
                false,
            ),
            (
                "script-src 'self'; script-src-elem https://cdn.example",
                "script-src 'self'; script-src-elem https://cdn.example 'self'",
                None,
                false,
            ),
            (
                "default-src https:; script-src *",
                "default-src https:; script-src *",
                None,
                false,
            ),
            ("script-src 'none'", "script-src 'none'", None, false),
            (
                "SCRIPT-SRC 'SELF'; style-src 'self'",
                "SCRIPT-SRC 'SELF'; style-src 'self'",
                None,
                false,
            ),
            (
                "default-src 'self', script-src 'unsafe-inline'",
                "default-src 'self', script-src 'unsafe-inline' 'self'",
                None,
                false,
            ),
            (
                "script-src 'nonce-a\"b' 'unsafe-inline'",
                "script-src 'nonce-a\"b' 'unsafe-inline' 'self'",
                None,
                false,
            ),
        ];
        for &(policy, after, nonce, integrity) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_str(policy).expect("value"),
            );
            let attrs = adapt(&mut headers, SRI);
            assert_eq!(headers[CONTENT_SECURITY_POLICY], after, "{policy}");
            assert_eq!(attrs.nonce.as_deref(), nonce, "{policy}");
            assert_eq!(attrs.integrity, integrity, "{policy}");
        }
    }

    #[test]
    fn report_only_and_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("script-src 'nonce-one'"),
        );
        headers.append(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("script-src 'nonce-two'"),
        );
        headers.insert(
            CONTENT_SECURITY_POLICY_REPORT_ONLY,
            HeaderValue::from_static("script-src https://x.example; report-uri /csp"),
        );
        let attrs = adapt(&mut headers, SRI);
        assert_eq!(attrs.nonce.as_deref(), Some("one"));
        let enforced: Vec<_> = headers.get_all(CONTENT_SECURITY_POLICY).iter().collect();
        assert_eq!(
            enforced,
            ["script-src 'nonce-one'", "script-src 'nonce-two' 'self'"]
        );
        assert_eq!(
            headers[CONTENT_SECURITY_POLICY_REPORT_ONLY],
            "script-src https://x.example 'self'; report-uri /csp"
        );
        let mut none = HeaderMap::new();
        assert_eq!(adapt(&mut none, SRI), TagAttrs::default());
        assert!(none.is_empty());
    }
}

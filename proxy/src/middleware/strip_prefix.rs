//! `stripPrefix`: removes the first matching prefix, keeps a leading `/`, adds
//! `X-Forwarded-Prefix`, and answers 400 when the result would be changed by normalisation
//! (a dot-segment appearing after the strip), as Traefik v3 does.

use std::borrow::Cow;

use http::HeaderValue;

use super::{LocalResponse, Outcome, RequestState};
use crate::config::dynamic;

pub const X_FORWARDED_PREFIX: http::HeaderName =
    http::HeaderName::from_static("x-forwarded-prefix");

#[derive(Debug)]
pub struct StripPrefix {
    /// Each prefix with its `X-Forwarded-Prefix` value, built once.
    prefixes: Vec<(String, HeaderValue)>,
}

impl StripPrefix {
    pub fn new(cfg: &dynamic::StripPrefix) -> Result<Self, String> {
        let prefixes = cfg
            .prefixes
            .iter()
            .map(|p| {
                HeaderValue::from_str(p)
                    .map(|v| (p.clone(), v))
                    .map_err(|_| format!("stripPrefix.prefixes: {p:?} is not usable in a header"))
            })
            .collect::<Result<_, _>>()?;
        Ok(StripPrefix { prefixes })
    }

    pub fn apply(&self, st: &mut RequestState) -> Outcome {
        for (prefix, value) in &self.prefixes {
            if st.path.starts_with(prefix.as_str()) {
                let stripped = cut_front(&st.path, prefix.len());
                if crate::edge::has_dot_segments(&stripped) {
                    return Outcome::Respond(LocalResponse::text(400, "Bad Request\n"));
                }
                st.path = stripped;
                st.header_ops
                    .push(super::HeaderOp::Append(X_FORWARDED_PREFIX, value.clone()));
                return Outcome::Continue;
            }
        }
        Outcome::Continue
    }
}

/// `path` without its first `len` bytes, starting with `/`: a borrowed slice when `path` is
/// borrowed and the rest already starts with `/`.
pub(crate) fn cut_front<'a>(path: &Cow<'a, str>, len: usize) -> Cow<'a, str> {
    match path {
        Cow::Borrowed(p) => ensure_leading_slash(&p[len..]),
        Cow::Owned(p) => Cow::Owned(ensure_leading_slash(&p[len..]).into_owned()),
    }
}

fn ensure_leading_slash(rest: &str) -> Cow<'_, str> {
    if rest.starts_with('/') {
        Cow::Borrowed(rest)
    } else {
        Cow::Owned(format!("/{rest}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::{state, HeaderOp};

    fn mw(prefixes: &[&str]) -> StripPrefix {
        StripPrefix::new(&dynamic::StripPrefix {
            prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
            force_slash: None,
        })
        .expect("valid")
    }

    #[test]
    fn strips_and_adds_forwarded_prefix() {
        let mut st = state("/embed/miniflux/feeds", Some("a=1"));
        assert!(matches!(
            mw(&["/embed/miniflux"]).apply(&mut st),
            Outcome::Continue
        ));
        assert_eq!(st.path, "/feeds");
        assert_eq!(st.request_uri(), "/feeds?a=1");
        assert_eq!(
            st.header_ops,
            vec![HeaderOp::Append(
                X_FORWARDED_PREFIX,
                HeaderValue::from_static("/embed/miniflux")
            )]
        );
    }

    #[test]
    fn empty_remainder_becomes_root_and_raw_prefix_keeps_slash() {
        let mut st = state("/embed/miniflux", None);
        mw(&["/embed/miniflux"]).apply(&mut st);
        assert_eq!(st.path, "/");
        let mut st = state("/embed/minifluxx/y", None);
        mw(&["/embed/miniflux"]).apply(&mut st);
        assert_eq!(st.path, "/x/y");
    }

    #[test]
    fn first_matching_prefix_only() {
        let mut st = state("/a/b/c", None);
        mw(&["/x", "/a", "/a/b"]).apply(&mut st);
        assert_eq!(st.path, "/b/c");
        let mut st = state("/nomatch", None);
        mw(&["/x"]).apply(&mut st);
        assert_eq!(st.path, "/nomatch");
        assert!(st.header_ops.is_empty());
    }

    #[test]
    fn traversal_after_strip_is_400() {
        let mut st = state("/embed/x../etc", None);
        match mw(&["/embed/x"]).apply(&mut st) {
            Outcome::Respond(r) => assert_eq!(r.status, 400),
            other => panic!("expected 400 for {}, got {other:?}", st.path),
        }
        let mut st = state("/embed/x%2e%2e/etc", None);
        assert!(matches!(
            mw(&["/embed/x"]).apply(&mut st),
            Outcome::Respond(_)
        ));
    }

    #[test]
    fn table() {
        /// (prefixes, path, outcome, upstream path, X-Forwarded-Prefix)
        type Case = (
            &'static [&'static str],
            &'static str,
            &'static str,
            &'static str,
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            (
                &["/embed/app"],
                "/embed/app/x",
                "continue",
                "/x",
                Some("/embed/app"),
            ),
            (
                &["/embed/app"],
                "/embed/app",
                "continue",
                "/",
                Some("/embed/app"),
            ),
            (
                &["/embed/app/"],
                "/embed/app/x",
                "continue",
                "/x",
                Some("/embed/app/"),
            ),
            (&["/x", "/a"], "/a/b", "continue", "/b", Some("/a")),
            (&["/x"], "/a/b", "continue", "/a/b", None),
            (
                &["/embed/x"],
                "/embed/x../etc",
                "400",
                "/embed/x../etc",
                None,
            ),
        ];
        for (prefixes, path, outcome, want, forwarded) in cases {
            let (got, st) = crate::middleware::run_hook(&mw(prefixes), path, None);
            assert_eq!(crate::middleware::describe(&got), *outcome, "{path}");
            assert_eq!(st.path, *want, "{path}");
            let sent: Vec<HeaderOp> = forwarded
                .iter()
                .map(|p| {
                    HeaderOp::Append(X_FORWARDED_PREFIX, HeaderValue::from_str(p).expect("value"))
                })
                .collect();
            assert_eq!(st.header_ops, sent, "{path}");
        }
    }
}

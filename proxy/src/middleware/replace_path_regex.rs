//! `replacePathRegex`: rewrites the path with a regex replacement (`$1`, `${name}`), keeping
//! the original in `X-Replaced-Path`.

use regex::Regex;

use super::replace_path::record_original;
use super::{Outcome, RequestState};
use crate::config::dynamic;

#[derive(Debug)]
pub struct ReplacePathRegex {
    regex: Regex,
    replacement: String,
}

impl ReplacePathRegex {
    pub fn new(cfg: &dynamic::ReplacePathRegex) -> Result<Self, String> {
        let regex = Regex::new(&cfg.regex)
            .map_err(|e| format!("replacePathRegex.regex {:?}: {e}", cfg.regex))?;
        Ok(ReplacePathRegex {
            regex,
            replacement: cfg.replacement.clone(),
        })
    }

    pub fn apply(&self, st: &mut RequestState) -> Outcome {
        if self.regex.is_match(&st.path) {
            let new = self
                .regex
                .replace_all(&st.path, self.replacement.as_str())
                .into_owned();
            record_original(st);
            st.path = if new.starts_with('/') {
                new.into()
            } else {
                format!("/{new}").into()
            };
        }
        Outcome::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::state;

    #[test]
    fn rewrites_with_groups() {
        let m = ReplacePathRegex::new(&dynamic::ReplacePathRegex {
            regex: "^/old/(.*)".into(),
            replacement: "/new/$1".into(),
        })
        .expect("valid");
        let mut st = state("/old/a/b", None);
        m.apply(&mut st);
        assert_eq!(st.path, "/new/a/b");
        assert_eq!(st.header_ops.len(), 1);
        let mut st = state("/other", None);
        m.apply(&mut st);
        assert_eq!(st.path, "/other");
        assert!(st.header_ops.is_empty());
    }

    #[test]
    fn table() {
        // (regex, replacement, path, upstream path, whether X-Replaced-Path is sent)
        let cases = [
            ("^/old/(.*)", "/new/$1", "/old/a/b", "/new/a/b", true),
            ("^/old/(.*)", "/new/$1", "/other", "/other", false),
            (
                "^/api/v(\\d+)/(.*)",
                "/v$1-${2}",
                "/api/v2/items",
                "/v2-items",
                true,
            ),
        ];
        for (regex, replacement, path, want, replaced) in cases {
            let m = ReplacePathRegex::new(&dynamic::ReplacePathRegex {
                regex: regex.into(),
                replacement: replacement.into(),
            })
            .expect("valid");
            let (outcome, st) = crate::middleware::run_hook(&m, path, None);
            assert_eq!(crate::middleware::describe(&outcome), "continue");
            assert_eq!(st.path, want, "{regex} on {path}");
            assert_eq!(!st.header_ops.is_empty(), replaced, "{regex} on {path}");
        }
    }
}

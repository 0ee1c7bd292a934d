//! `addPrefix`: prepends a fixed prefix to the path.

use super::{Outcome, RequestState};
use crate::config::dynamic;

#[derive(Debug)]
pub struct AddPrefix {
    prefix: String,
}

impl AddPrefix {
    pub fn new(cfg: &dynamic::AddPrefix) -> Result<Self, String> {
        if cfg.prefix.is_empty() {
            return Err("addPrefix.prefix: must not be empty".into());
        }
        let prefix = if cfg.prefix.starts_with('/') {
            cfg.prefix.clone()
        } else {
            format!("/{}", cfg.prefix)
        };
        Ok(AddPrefix { prefix })
    }

    pub fn apply(&self, st: &mut RequestState) -> Outcome {
        st.path = format!("{}{}", self.prefix, st.path).into();
        Outcome::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::state;

    #[test]
    fn prepends() {
        let m = AddPrefix::new(&dynamic::AddPrefix {
            prefix: "base".into(),
        })
        .expect("valid");
        let mut st = state("/x", Some("q=1"));
        m.apply(&mut st);
        assert_eq!(st.request_uri(), "/base/x?q=1");
    }

    #[test]
    fn table() {
        // (prefix, path, query, upstream target)
        let cases = [
            ("/base", "/x", Some("q=1"), "/base/x?q=1"),
            ("base", "/x", None, "/base/x"),
            ("/api/v1", "/", None, "/api/v1/"),
        ];
        for (prefix, path, query, want) in cases {
            let m = AddPrefix::new(&dynamic::AddPrefix {
                prefix: prefix.into(),
            })
            .expect("valid");
            let (outcome, st) = crate::middleware::run_hook(&m, path, query);
            assert_eq!(crate::middleware::describe(&outcome), "continue");
            assert_eq!(st.request_uri(), want, "{prefix} + {path}");
        }
    }
}

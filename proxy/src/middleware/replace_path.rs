//! `replacePath`: replaces the whole path, keeping the original in `X-Replaced-Path`.

use http::HeaderValue;

use super::{HeaderOp, Outcome, RequestState};
use crate::config::dynamic;

pub const X_REPLACED_PATH: http::HeaderName = http::HeaderName::from_static("x-replaced-path");

#[derive(Debug)]
pub struct ReplacePath {
    path: String,
}

impl ReplacePath {
    pub fn new(cfg: &dynamic::ReplacePath) -> Result<Self, String> {
        if !cfg.path.starts_with('/') {
            return Err(format!(
                "replacePath.path: {:?} must start with '/'",
                cfg.path
            ));
        }
        Ok(ReplacePath {
            path: cfg.path.clone(),
        })
    }

    pub fn apply(&self, st: &mut RequestState) -> Outcome {
        record_original(st);
        st.path = self.path.clone().into();
        Outcome::Continue
    }
}

pub(crate) fn record_original(st: &mut RequestState) {
    if let Ok(v) = HeaderValue::from_str(&st.path) {
        st.header_ops.push(HeaderOp::Set(X_REPLACED_PATH, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::state;

    #[test]
    fn replaces_and_records() {
        let m = ReplacePath::new(&dynamic::ReplacePath {
            path: "/health".into(),
        })
        .expect("valid");
        let mut st = state("/embed/x/ping", Some("a"));
        m.apply(&mut st);
        assert_eq!(st.request_uri(), "/health?a");
        assert_eq!(
            st.header_ops,
            vec![HeaderOp::Set(
                X_REPLACED_PATH,
                HeaderValue::from_static("/embed/x/ping")
            )]
        );
    }

    #[test]
    fn table() {
        // (replacement, path, query, upstream target, X-Replaced-Path)
        let cases = [
            (
                "/health",
                "/embed/x/ping",
                Some("a"),
                "/health?a",
                "/embed/x/ping",
            ),
            ("/", "/deep/path", None, "/", "/deep/path"),
        ];
        for (replacement, path, query, want, replaced) in cases {
            let m = ReplacePath::new(&dynamic::ReplacePath {
                path: replacement.into(),
            })
            .expect("valid");
            let (outcome, st) = crate::middleware::run_hook(&m, path, query);
            assert_eq!(crate::middleware::describe(&outcome), "continue");
            assert_eq!(st.request_uri(), want);
            assert_eq!(
                st.header_ops,
                vec![HeaderOp::Set(
                    X_REPLACED_PATH,
                    HeaderValue::from_str(replaced).expect("value")
                )]
            );
        }
    }
}

//! `stripPrefixRegex`: strips the text matched by the first regex that matches at the start.

use http::HeaderValue;
use regex::Regex;

use super::strip_prefix::{cut_front, X_FORWARDED_PREFIX};
use super::{HeaderOp, LocalResponse, Outcome, RequestState};
use crate::config::dynamic;

#[derive(Debug)]
pub struct StripPrefixRegex {
    regexes: Vec<Regex>,
}

impl StripPrefixRegex {
    pub fn new(cfg: &dynamic::StripPrefixRegex) -> Result<Self, String> {
        let regexes = cfg
            .regex
            .iter()
            .map(|r| Regex::new(r).map_err(|e| format!("stripPrefixRegex.regex {r:?}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(StripPrefixRegex { regexes })
    }

    pub fn apply(&self, st: &mut RequestState) -> Outcome {
        for re in &self.regexes {
            let Some(m) = re.find(&st.path) else { continue };
            if m.start() != 0 || m.is_empty() {
                continue;
            }
            let prefix = HeaderValue::from_str(m.as_str());
            let stripped = cut_front(&st.path, m.end());
            if crate::edge::has_dot_segments(&stripped) {
                return Outcome::Respond(LocalResponse::text(400, "Bad Request\n"));
            }
            st.path = stripped;
            if let Ok(v) = prefix {
                st.header_ops.push(HeaderOp::Append(X_FORWARDED_PREFIX, v));
            }
            return Outcome::Continue;
        }
        Outcome::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::state;

    #[test]
    fn strips_regex_prefix() {
        let m = StripPrefixRegex::new(&dynamic::StripPrefixRegex {
            regex: vec!["/embed/[a-z-]+".into()],
        })
        .expect("valid");
        let mut st = state("/embed/adguard-home/control/status", None);
        m.apply(&mut st);
        assert_eq!(st.path, "/control/status");
        assert_eq!(
            st.header_ops,
            vec![HeaderOp::Append(
                X_FORWARDED_PREFIX,
                HeaderValue::from_static("/embed/adguard-home")
            )]
        );
        let mut st = state("/x/embed/a", None);
        m.apply(&mut st);
        assert_eq!(st.path, "/x/embed/a", "only a match at the start strips");
        assert!(StripPrefixRegex::new(&dynamic::StripPrefixRegex {
            regex: vec!["(".into()]
        })
        .is_err());
    }

    #[test]
    fn table() {
        // (regex, path, upstream path, X-Forwarded-Prefix)
        let cases = [
            (
                "/embed/[a-z-]+",
                "/embed/adguard-home/status",
                "/status",
                Some("/embed/adguard-home"),
            ),
            ("/embed/[a-z-]+", "/embed/app", "/", Some("/embed/app")),
            ("/embed/[a-z-]+", "/x/embed/a", "/x/embed/a", None),
        ];
        for (regex, path, want, forwarded) in cases {
            let m = StripPrefixRegex::new(&dynamic::StripPrefixRegex {
                regex: vec![regex.into()],
            })
            .expect("valid");
            let (outcome, st) = crate::middleware::run_hook(&m, path, None);
            assert_eq!(crate::middleware::describe(&outcome), "continue");
            assert_eq!(st.path, want, "{path}");
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

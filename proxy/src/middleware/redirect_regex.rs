//! `redirectRegex`: when the regex matches the full request URL (`scheme://host/path?query`),
//! answer a redirect to the replacement (302/307, or 301/308 when `permanent`).

use http::HeaderValue;
use regex::Regex;

use super::{LocalResponse, Outcome, RequestState};
use crate::config::dynamic;

#[derive(Debug)]
pub struct RedirectRegex {
    regex: Regex,
    replacement: String,
    permanent: bool,
}

impl RedirectRegex {
    pub fn new(cfg: &dynamic::RedirectRegex) -> Result<Self, String> {
        let regex = Regex::new(&cfg.regex)
            .map_err(|e| format!("redirectRegex.regex {:?}: {e}", cfg.regex))?;
        Ok(RedirectRegex {
            regex,
            replacement: cfg.replacement.clone(),
            permanent: cfg.permanent,
        })
    }

    pub fn apply(&self, st: &mut RequestState) -> Outcome {
        let url = format!("{}://{}{}", st.scheme, st.host, st.request_uri());
        let Some(caps) = self.regex.captures(&url) else {
            return Outcome::Continue;
        };
        // Go's ReplaceAllString replaces every non-overlapping match; a pattern like `.*` matches
        // the whole URL once, which is the common case. Expand the first match and keep the rest
        // of the URL around it, then replace any further matches.
        let mut location = String::new();
        let whole = caps.get(0).map(|m| (m.start(), m.end())).unwrap_or((0, 0));
        location.push_str(&url[..whole.0]);
        caps.expand(&self.replacement, &mut location);
        let tail = &url[whole.1..];
        if !tail.is_empty() {
            location.push_str(&self.regex.replace_all(tail, self.replacement.as_str()));
        }
        Outcome::Respond(redirect(&location, st.method, self.permanent))
    }
}

/// Builds a redirect response with Traefik's status choice.
pub(crate) fn redirect(location: &str, method: &str, permanent: bool) -> LocalResponse {
    let get = method.eq_ignore_ascii_case("GET");
    let status = match (permanent, get) {
        (true, true) => 301,
        (true, false) => 308,
        (false, true) => 302,
        (false, false) => 307,
    };
    let mut resp = LocalResponse::text(status, "");
    match HeaderValue::from_str(location) {
        Ok(v) => resp.headers.push((http::header::LOCATION, v)),
        Err(_) => return LocalResponse::text(500, "Internal Server Error: bad redirect target\n"),
    }
    resp.body = bytes::Bytes::from(format!(
        "<a href=\"{}\">{}</a>.\n",
        crate::error_page::escape_html(location),
        http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Redirect")
    ));
    resp.headers[0].1 = HeaderValue::from_static("text/html; charset=utf-8");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::state;

    fn location(r: &LocalResponse) -> &str {
        r.headers
            .iter()
            .find(|(n, _)| n == http::header::LOCATION)
            .and_then(|(_, v)| v.to_str().ok())
            .unwrap_or("")
    }

    #[test]
    fn upstream_miniflux_login_redirect() {
        let m = RedirectRegex::new(&dynamic::RedirectRegex {
            regex: ".*".into(),
            replacement: "/embed/miniflux/oauth2/oidc/redirect".into(),
            permanent: false,
        })
        .expect("valid");
        let mut st = state("/embed/miniflux/login", None);
        match m.apply(&mut st) {
            Outcome::Respond(r) => {
                assert_eq!(r.status, 302);
                assert_eq!(location(&r), "/embed/miniflux/oauth2/oidc/redirect");
            }
            other => panic!("must redirect, got {other:?}"),
        }
        st.method = "POST";
        match m.apply(&mut st) {
            Outcome::Respond(r) => assert_eq!(r.status, 307),
            other => panic!("must redirect, got {other:?}"),
        }
    }

    #[test]
    fn capture_groups_and_no_match() {
        let m = RedirectRegex::new(&dynamic::RedirectRegex {
            regex: "^http://bloud.local/old/(.*)".into(),
            replacement: "http://bloud.local/new/${1}".into(),
            permanent: true,
        })
        .expect("valid");
        let mut st = state("/old/a", Some("x=1"));
        match m.apply(&mut st) {
            Outcome::Respond(r) => {
                assert_eq!(r.status, 301);
                assert_eq!(location(&r), "http://bloud.local/new/a?x=1");
            }
            other => panic!("must redirect, got {other:?}"),
        }
        let mut st = state("/other", None);
        assert!(matches!(m.apply(&mut st), Outcome::Continue));
    }

    #[test]
    fn table() {
        // (regex, replacement, permanent, path, query, answer)
        let cases = [
            (
                ".*",
                "/embed/m/oidc",
                false,
                "/embed/m/login",
                None,
                "302 /embed/m/oidc",
            ),
            (
                ".*",
                "/embed/m/oidc",
                true,
                "/embed/m/login",
                None,
                "301 /embed/m/oidc",
            ),
            (
                "^http://bloud.local/old/(.*)",
                "http://bloud.local/new/${1}",
                false,
                "/old/a",
                Some("x=1"),
                "302 http://bloud.local/new/a?x=1",
            ),
            ("^http://other/", "/x", false, "/old/a", None, "continue"),
        ];
        for (regex, replacement, permanent, path, query, want) in cases {
            let m = RedirectRegex::new(&dynamic::RedirectRegex {
                regex: regex.into(),
                replacement: replacement.into(),
                permanent,
            })
            .expect("valid");
            let (outcome, _) = crate::middleware::run_hook(&m, path, query);
            assert_eq!(
                crate::middleware::describe(&outcome),
                want,
                "{regex} on {path}"
            );
        }
    }
}

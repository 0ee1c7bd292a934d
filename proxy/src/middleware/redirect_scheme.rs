//! `redirectScheme`: redirects to another scheme (and optionally port) unless already there.

use super::redirect_regex::redirect;
use super::{Outcome, RequestState};
use crate::config::dynamic;

#[derive(Debug)]
pub struct RedirectScheme {
    scheme: String,
    port: Option<String>,
    permanent: bool,
}

impl RedirectScheme {
    pub fn new(cfg: &dynamic::RedirectScheme) -> Result<Self, String> {
        if cfg.scheme.is_empty() {
            return Err("redirectScheme.scheme: must not be empty".into());
        }
        let port = cfg.port.as_ref().map(|p| p.as_string());
        if let Some(p) = &port {
            p.parse::<u16>()
                .map_err(|_| format!("redirectScheme.port: {p:?} is not a port number"))?;
        }
        Ok(RedirectScheme {
            scheme: cfg.scheme.to_ascii_lowercase(),
            port,
            permanent: cfg.permanent,
        })
    }

    pub fn apply(&self, st: &mut RequestState) -> Outcome {
        if st.scheme == self.scheme {
            return Outcome::Continue;
        }
        let host = crate::edge::strip_port(st.host);
        let port = match self.port.as_deref() {
            Some("80") if self.scheme == "http" => String::new(),
            Some("443") if self.scheme == "https" => String::new(),
            Some(p) => format!(":{p}"),
            None => String::new(),
        };
        let location = format!("{}://{}{}{}", self.scheme, host, port, st.request_uri());
        Outcome::Respond(redirect(&location, st.method, self.permanent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::state;

    #[test]
    fn redirects_to_https_with_port() {
        let m = RedirectScheme::new(&dynamic::RedirectScheme {
            scheme: "https".into(),
            port: Some(dynamic::PortValue::Num(8443)),
            permanent: true,
        })
        .expect("valid");
        let mut st = state("/a", Some("b=1"));
        st.host = "bloud.local:8080";
        match m.apply(&mut st) {
            Outcome::Respond(r) => {
                assert_eq!(r.status, 301);
                assert_eq!(r.headers[1].1, "https://bloud.local:8443/a?b=1");
            }
            other => panic!("must redirect, got {other:?}"),
        }
        let same = RedirectScheme::new(&dynamic::RedirectScheme {
            scheme: "http".into(),
            port: None,
            permanent: false,
        })
        .expect("valid");
        assert!(matches!(same.apply(&mut st), Outcome::Continue));
    }

    #[test]
    fn table() {
        // (scheme, port, permanent, Host, answer)
        let cases = [
            (
                "https",
                Some(8443),
                true,
                "bloud.local:8080",
                "301 https://bloud.local:8443/a?b=1",
            ),
            (
                "https",
                Some(443),
                false,
                "bloud.local",
                "302 https://bloud.local/a?b=1",
            ),
            (
                "https",
                None,
                false,
                "bloud.local:8080",
                "302 https://bloud.local/a?b=1",
            ),
            ("http", None, false, "bloud.local", "continue"),
        ];
        for (scheme, port, permanent, host, want) in cases {
            let m = RedirectScheme::new(&dynamic::RedirectScheme {
                scheme: scheme.into(),
                port: port.map(dynamic::PortValue::Num),
                permanent,
            })
            .expect("valid");
            let mut st = state("/a", Some("b=1"));
            st.host = host;
            let (outcome, _) = crate::middleware::run_hook_on(&m, st);
            assert_eq!(
                crate::middleware::describe(&outcome),
                want,
                "{scheme} {port:?} {host}"
            );
        }
    }
}

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
            Outcome::Continue => panic!("must redirect"),
        }
        let same = RedirectScheme::new(&dynamic::RedirectScheme {
            scheme: "http".into(),
            port: None,
            permanent: false,
        })
        .expect("valid");
        assert!(matches!(same.apply(&mut st), Outcome::Continue));
    }
}

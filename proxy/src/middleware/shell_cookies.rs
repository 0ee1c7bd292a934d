//! `shellCookies` (Bloud extension): cookies the shell owns (its session) never reach an app, and
//! an app cannot set them.
//!
//! - Request: the named cookies are removed from every `Cookie` header; the header is dropped
//!   when nothing is left. A request without any of them is not touched (no allocation).
//! - Response: a `Set-Cookie` for one of the names is dropped, whatever its `Path` or `Domain`
//!   (an app answering `Set-Cookie: bloud_session=…; Path=/api` would otherwise replace the
//!   user's session).
//!
//! Names compare exactly, as browsers do. Cookie values are opaque: no parsing beyond `;` and
//! the first `=`.

use http::{HeaderName, HeaderValue};

use super::{HeaderOp, Middleware, MiddlewareCtx, Outcome, RequestCx, RequestState, ResponseCx};
use crate::config::dynamic;

#[derive(Debug)]
pub struct ShellCookies {
    names: Vec<String>,
}

impl ShellCookies {
    pub fn new(cfg: &dynamic::ShellCookies) -> Result<Self, String> {
        if cfg.names.is_empty() {
            return Err("shellCookies.names: list at least one cookie name".into());
        }
        for n in &cfg.names {
            let valid = !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if !valid {
                return Err(format!("shellCookies.names: {n:?} is not a cookie name"));
            }
        }
        Ok(ShellCookies {
            names: cfg.names.clone(),
        })
    }

    fn owned(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name.trim())
    }

    /// The `Cookie` header edits for a request: `None` when no named cookie is present.
    pub fn request_ops(&self, headers: &http::HeaderMap) -> Option<Vec<HeaderOp>> {
        let values = headers.get_all(http::header::COOKIE);
        let present = values.iter().any(|v| {
            v.as_bytes()
                .split(|b| *b == b';')
                .any(|pair| self.owned_bytes(pair))
        });
        if !present {
            return None;
        }
        let mut kept = Vec::new();
        for v in values {
            for pair in v.as_bytes().split(|b| *b == b';') {
                let trimmed = pair.trim_ascii();
                if !trimmed.is_empty() && !self.owned_bytes(pair) {
                    kept.push(trimmed);
                }
            }
        }
        let mut ops = vec![HeaderOp::Remove(http::header::COOKIE)];
        if !kept.is_empty() {
            if let Ok(v) = HeaderValue::from_bytes(&kept.join(&b"; "[..])) {
                ops.push(HeaderOp::Append(http::header::COOKIE, v));
            }
        }
        Some(ops)
    }

    fn owned_bytes(&self, pair: &[u8]) -> bool {
        let name = match pair.iter().position(|b| *b == b'=') {
            Some(i) => &pair[..i],
            None => pair,
        };
        std::str::from_utf8(name).is_ok_and(|n| self.owned(n))
    }

    /// Whether a `Set-Cookie` value sets one of the names.
    pub fn refuses_set_cookie(&self, value: &HeaderValue) -> bool {
        let bytes = value.as_bytes();
        let first = bytes.split(|b| *b == b';').next().unwrap_or(bytes);
        self.owned_bytes(first)
    }
}

impl Middleware for ShellCookies {
    async fn request(
        &self,
        st: &mut RequestState<'_>,
        cx: &RequestCx<'_>,
        _mcx: &mut MiddlewareCtx,
    ) -> Outcome {
        if let Some(ops) = self.request_ops(&cx.original.headers) {
            st.header_ops.extend(ops);
        }
        Outcome::Continue
    }

    fn response_headers(
        &self,
        resp: &mut http::response::Parts,
        _cx: &ResponseCx<'_>,
        _mcx: &mut MiddlewareCtx,
    ) {
        const SET_COOKIE: HeaderName = http::header::SET_COOKIE;
        if !resp
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .any(|v| self.refuses_set_cookie(v))
        {
            return;
        }
        let kept: Vec<HeaderValue> = resp
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .filter(|v| !self.refuses_set_cookie(v))
            .cloned()
            .collect();
        tracing::warn!(
            "shellCookies: dropped an upstream Set-Cookie for a cookie the shell owns ({:?})",
            self.names
        );
        resp.headers.remove(SET_COOKIE);
        for v in kept {
            resp.headers.append(SET_COOKIE, v);
        }
    }

    fn edits_response(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc() -> ShellCookies {
        ShellCookies::new(&dynamic::ShellCookies {
            names: vec!["bloud_session".into()],
        })
        .expect("valid")
    }

    fn headers(name: HeaderName, values: &[&str]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for v in values {
            h.append(name.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn request_cookie_table() {
        // Cookie header(s) from the client -> Cookie header the app gets (None: untouched).
        let cases: &[(&[&str], Option<&[&str]>)] = &[
            (&["bloud_session=abc"], Some(&[])),
            (&["a=1; bloud_session=abc; b=2"], Some(&["a=1; b=2"])),
            (&["bloud_session=abc;a=1"], Some(&["a=1"])),
            (&["a=1", "bloud_session=abc"], Some(&["a=1"])),
            (&["a=1", "b=2; bloud_session=x"], Some(&["a=1; b=2"])),
            (&[" bloud_session = abc ; a=1"], Some(&["a=1"])),
            (&["bloud_session"], Some(&[])),
            // Names compare exactly: others are kept and the request is not touched.
            (&["a=1; b=2"], None),
            (&["bloud_session2=x; xbloud_session=y"], None),
            (&["BLOUD_SESSION=x"], None),
            (&["a=bloud_session"], None),
            (&[], None),
        ];
        for (input, want) in cases {
            let sc = sc();
            let got = sc.request_ops(&headers(http::header::COOKIE, input));
            let got = got.map(|ops| {
                let mut h = headers(http::header::COOKIE, input);
                super::super::apply_ops(&mut h, &ops);
                h.get_all(http::header::COOKIE)
                    .iter()
                    .map(|v| v.to_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            });
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "Cookie: {input:?}");
        }
    }

    #[test]
    fn set_cookie_table() {
        let cases: &[(&str, bool)] = &[
            ("bloud_session=x; Path=/api", true),
            ("bloud_session=x; Path=/", true),
            ("bloud_session=; Max-Age=0", true),
            (" bloud_session =x", true),
            ("bloud_session", true),
            ("sid=x; Path=/embed/app/", false),
            ("sid=bloud_session; Path=/", false),
            ("bloud_session2=x", false),
        ];
        for (value, refused) in cases {
            assert_eq!(
                sc().refuses_set_cookie(&HeaderValue::from_str(value).unwrap()),
                *refused,
                "Set-Cookie: {value}"
            );
        }
    }

    #[test]
    fn config_errors_name_the_key() {
        for names in [
            vec![],
            vec!["".to_string()],
            vec!["a b".to_string()],
            vec!["a=b".to_string()],
        ] {
            let err = ShellCookies::new(&dynamic::ShellCookies { names }).unwrap_err();
            assert!(err.starts_with("shellCookies.names"), "{err}");
        }
    }
}

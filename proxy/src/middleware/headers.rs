//! `headers`: `customRequestHeaders` and `customResponseHeaders`; an empty value deletes.

use super::{
    apply_ops, header_name, header_value, HeaderOp, Middleware, MiddlewareCtx, Outcome, RequestCx,
    RequestState, ResponseCx,
};
use crate::config::dynamic;
use crate::edge::ForwardedOverrides;

#[derive(Debug)]
pub struct Headers {
    request: Vec<HeaderOp>,
    response: Vec<HeaderOp>,
}

impl Headers {
    pub fn new(cfg: &dynamic::Headers) -> Result<Self, String> {
        let ops = |map: &std::collections::BTreeMap<String, String>, section: &str| {
            map.iter()
                .map(|(k, v)| {
                    let name = header_name(k).map_err(|e| format!("headers.{section}: {e}"))?;
                    if v.is_empty() {
                        Ok(HeaderOp::Remove(name))
                    } else {
                        Ok(HeaderOp::Set(
                            name,
                            header_value(k, v).map_err(|e| format!("headers.{section}.{e}"))?,
                        ))
                    }
                })
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(Headers {
            request: ops(&cfg.custom_request_headers, "customRequestHeaders")?,
            response: ops(&cfg.custom_response_headers, "customResponseHeaders")?,
        })
    }

    pub fn request_ops(&self) -> &[HeaderOp] {
        &self.request
    }

    pub fn response_ops(&self) -> &[HeaderOp] {
        &self.response
    }
}

impl Middleware for Headers {
    async fn request(
        &self,
        st: &mut RequestState<'_>,
        _cx: &RequestCx<'_>,
        _mcx: &mut MiddlewareCtx,
    ) -> Outcome {
        st.header_ops.extend_from_slice(&self.request);
        Outcome::Continue
    }

    fn response_headers(
        &self,
        resp: &mut http::response::Parts,
        _cx: &ResponseCx<'_>,
        _mcx: &mut MiddlewareCtx,
    ) {
        apply_ops(&mut resp.headers, &self.response);
    }

    fn edits_response(&self) -> bool {
        !self.response.is_empty()
    }

    fn note_overrides(&self, overrides: &mut ForwardedOverrides) {
        for op in &self.request {
            if let HeaderOp::Set(n, _) | HeaderOp::Remove(n) = op {
                overrides.note(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::apply_ops;
    use http::{HeaderMap, HeaderValue};

    #[test]
    fn empty_value_deletes_others_set() {
        let mut cfg = dynamic::Headers::default();
        cfg.custom_response_headers
            .insert("X-Frame-Options".into(), String::new());
        cfg.custom_response_headers
            .insert("Cross-Origin-Opener-Policy".into(), "same-origin".into());
        let h = Headers::new(&cfg).expect("valid");
        let mut resp = HeaderMap::new();
        resp.insert("x-frame-options", HeaderValue::from_static("DENY"));
        resp.insert(
            "cross-origin-opener-policy",
            HeaderValue::from_static("unsafe-none"),
        );
        apply_ops(&mut resp, h.response_ops());
        assert!(resp.get("x-frame-options").is_none());
        assert_eq!(resp["cross-origin-opener-policy"], "same-origin");
        assert!(h.request_ops().is_empty());
    }

    #[test]
    fn invalid_names_are_errors() {
        let mut cfg = dynamic::Headers::default();
        cfg.custom_request_headers
            .insert("Bad Header".into(), "x".into());
        assert!(Headers::new(&cfg).is_err());
    }

    #[test]
    fn table() {
        // (section, key, configured value, value the request/response had, value after)
        let cases = [
            ("response", "X-Frame-Options", "", Some("DENY"), None),
            (
                "response",
                "Cross-Origin-Opener-Policy",
                "same-origin",
                Some("unsafe-none"),
                Some("same-origin"),
            ),
            ("response", "X-New", "1", None, Some("1")),
            (
                "request",
                "X-Forwarded-Proto",
                "https",
                Some("http"),
                Some("https"),
            ),
            ("request", "X-Secret", "", Some("x"), None),
        ];
        for (section, key, value, before, after) in cases {
            let mut cfg = dynamic::Headers::default();
            let map = match section {
                "request" => &mut cfg.custom_request_headers,
                _ => &mut cfg.custom_response_headers,
            };
            map.insert(key.into(), value.into());
            let h = Headers::new(&cfg).expect("valid");
            let (mut parts, ()) = http::Response::new(()).into_parts();
            if let Some(b) = before {
                parts.headers.insert(
                    http::HeaderName::from_bytes(key.as_bytes()).expect("name"),
                    HeaderValue::from_static(b),
                );
            }
            let (outcome, st) = crate::middleware::run_hook(&h, "/", None);
            assert_eq!(crate::middleware::describe(&outcome), "continue");
            if section == "request" {
                apply_ops(&mut parts.headers, &st.header_ops);
            } else {
                let req = pingora::http::RequestHeader::build("GET", b"/", None).expect("req");
                let cx = ResponseCx {
                    request: &req,
                    scheme: "http",
                    host: "bloud.local",
                    upstream: None,
                    downstream_h2: false,
                };
                h.response_headers(&mut parts, &cx, &mut MiddlewareCtx::default());
            }
            let got = parts.headers.get(key).map(|v| v.to_str().unwrap_or("?"));
            assert_eq!(got, after, "{section} {key}: {value:?}");
            assert_eq!(h.edits_response(), section == "response", "{section} {key}");
        }
    }
}

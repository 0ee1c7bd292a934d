//! `headers`: `customRequestHeaders` and `customResponseHeaders`; an empty value deletes.

use super::{header_name, header_value, HeaderOp};
use crate::config::dynamic;

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
}

//! `embed`: keeps an app served under `/embed/<app>/` inside its prefix by rewriting the
//! upstream's responses: URL-bearing headers (`Location`, `Set-Cookie` paths, ...) and, for
//! HTML and CSS, the body as it streams. The rewriting itself lives in [`crate::embed`]; this
//! file plugs it into the middleware chain.

use std::cell::OnceCell;

use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use pingora::{Error, ErrorType};

use super::{Middleware, MiddlewareCtx, Outcome, RequestCx, RequestState, ResponseCx};
use crate::embed::{shim, EmbedConfig, EmbedRewriter, Origins};

#[derive(Debug)]
pub struct Embed {
    rw: EmbedRewriter,
}

impl Embed {
    pub fn new(cfg: &EmbedConfig) -> Result<Self, String> {
        cfg.compile()
            .map(|rw| Embed { rw })
            .map_err(|e| e.to_string())
    }

    pub fn rewriter(&self) -> &EmbedRewriter {
        &self.rw
    }

    /// Identifies this middleware's body rewriter in the request's [`MiddlewareCtx`].
    fn owner(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }
}

impl Middleware for Embed {
    /// Answers requests for the run-time shim itself, without the upstream. The path is
    /// matched as the browser sent it: a `stripPrefix` earlier in the chain has already cut
    /// the prefix from the state's path.
    fn request(
        &self,
        _st: &mut RequestState<'_>,
        cx: &RequestCx<'_>,
        _mcx: &mut MiddlewareCtx,
    ) -> impl std::future::Future<Output = Outcome> + Send {
        let outcome = match self.rw.shim_path() {
            Some(path) if cx.original.uri.path() == path => {
                Outcome::Respond(shim::answer(&cx.original.method, &cx.original.headers))
            }
            _ => Outcome::Continue,
        };
        std::future::ready(outcome)
    }

    fn response_headers(
        &self,
        resp: &mut http::response::Parts,
        cx: &ResponseCx<'_>,
        mcx: &mut MiddlewareCtx,
    ) {
        // Built only for the responses that need it (a Location to fix, a body to rewrite).
        let origins = OnceCell::new();
        let origins =
            || origins.get_or_init(|| Origins::new(cx.scheme, Some(cx.host), cx.upstream));
        let headers = &mut resp.headers;
        if self.rw.touches_response_headers(headers) {
            self.rw.rewrite_response_headers(headers, origins());
        }
        if mcx.body.is_some() {
            return;
        }
        let req = cx.request;
        if let Some(plan) = self
            .rw
            .plan_body(&req.method, &req.headers, resp.status, headers)
        {
            plan.apply_headers(headers);
            let shim_tag = match plan.kind {
                crate::embed::BodyKind::Html => self.rw.shim_tag_for(headers),
                crate::embed::BodyKind::Css => None,
            };
            let rewriter = plan.start_with_shim(&self.rw, origins(), shim_tag);
            if !cx.downstream_h2 {
                // The rewritten length is unknown until the body ends.
                headers.remove(http::header::CONTENT_LENGTH);
                headers.insert(
                    http::header::TRANSFER_ENCODING,
                    HeaderValue::from_static("chunked"),
                );
            }
            mcx.body = Some((self.owner(), rewriter));
        }
    }

    fn response_body(
        &self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        mcx: &mut MiddlewareCtx,
    ) -> pingora::Result<()> {
        let Some((_, rw)) = mcx.body.as_mut().filter(|(o, _)| *o == self.owner()) else {
            return Ok(());
        };
        // A corrupt compressed body from the upstream cannot be rewritten or passed on whole.
        let failed = |e| Error::because(ErrorType::InvalidHTTPHeader, "embed rewrite", e);
        let mut out = match body.take() {
            Some(chunk) => rw.write(&chunk).map_err(failed)?,
            None => Bytes::new(),
        };
        if end_of_stream {
            let tail = rw.finish().map_err(failed)?;
            if !tail.is_empty() {
                let mut joined = BytesMut::with_capacity(out.len() + tail.len());
                joined.extend_from_slice(&out);
                joined.extend_from_slice(&tail);
                out = joined.freeze();
            }
        }
        *body = Some(out);
        Ok(())
    }

    fn edits_response(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::http::RequestHeader;

    /// Runs the response hooks of `m` on a 200 with this content type, Location and body (sent
    /// in two chunks); returns the Location after, whether the body was rewritten, and the body.
    fn respond(
        m: &Embed,
        other: &Embed,
        content_type: &str,
        location: Option<&str>,
        body: &str,
    ) -> (Option<String>, bool, String) {
        let req = RequestHeader::build("GET", b"/embed/app/", None).expect("req");
        let cx = ResponseCx {
            request: &req,
            scheme: "http",
            host: "bloud.local",
            upstream: Some("127.0.0.1:8085"),
            downstream_h2: false,
        };
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("value"),
        );
        parts
            .headers
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        if let Some(l) = location {
            parts.headers.insert(
                http::header::LOCATION,
                HeaderValue::from_str(l).expect("value"),
            );
        }
        let mut mcx = MiddlewareCtx::default();
        m.response_headers(&mut parts, &cx, &mut mcx);
        other.response_headers(&mut parts, &cx, &mut mcx);
        let rewritten = mcx.rewrites_body();
        if rewritten {
            assert!(parts.headers.get(http::header::CONTENT_LENGTH).is_none());
            assert_eq!(parts.headers[http::header::TRANSFER_ENCODING], "chunked");
        }
        let mut out = Vec::new();
        let (a, b) = body.split_at(body.len() / 2);
        for (chunk, end) in [(a, false), (b, true)] {
            let mut chunk = Some(Bytes::copy_from_slice(chunk.as_bytes()));
            // Both middlewares' body hooks run; only the one that planned the body rewrites.
            other
                .response_body(&mut chunk, end, &mut mcx)
                .expect("rewrite");
            m.response_body(&mut chunk, end, &mut mcx).expect("rewrite");
            out.extend_from_slice(&chunk.unwrap_or_default());
        }
        let location = parts
            .headers
            .get(http::header::LOCATION)
            .map(|v| v.to_str().unwrap_or("?").to_string());
        (
            location,
            rewritten,
            String::from_utf8_lossy(&out).into_owned(),
        )
    }

    #[test]
    fn table() {
        let m = Embed::new(&EmbedConfig::new("/embed/app")).expect("valid");
        // A second embed in the same chain, whose hooks run after `m` planned the body: it must
        // not plan another one, nor feed `m`'s rewriter a second time.
        let other = Embed::new(&EmbedConfig {
            location: false,
            ..EmbedConfig::new("/embed/other")
        })
        .expect("valid");
        // (Content-Type, Location, upstream body, Location after, rewritten, body after)
        let cases = [
            (
                "text/html",
                None,
                r#"<a href="/login">in</a>"#,
                None,
                true,
                r#"<a href="/embed/app/login">in</a>"#,
            ),
            (
                "text/css",
                None,
                "a{background:url(/img.png)}",
                None,
                true,
                "a{background:url(/embed/app/img.png)}",
            ),
            (
                "application/json",
                None,
                r#"{"next":"/login"}"#,
                None,
                false,
                r#"{"next":"/login"}"#,
            ),
            (
                "text/plain",
                Some("/login"),
                "moved",
                Some("/embed/app/login"),
                false,
                "moved",
            ),
            (
                "text/plain",
                Some("http://127.0.0.1:8085/x"),
                "",
                Some("http://bloud.local/embed/app/x"),
                false,
                "",
            ),
        ];
        for (content_type, location, body, want_location, want_rewritten, want_body) in cases {
            let (got_location, rewritten, got_body) =
                respond(&m, &other, content_type, location, body);
            assert_eq!(
                got_location.as_deref(),
                want_location,
                "{content_type} {location:?}"
            );
            assert_eq!(rewritten, want_rewritten, "{content_type}");
            assert_eq!(got_body, want_body, "{content_type}");
        }
        assert!(m.edits_response());
    }

    /// The request hook answers the shim's own path (as the browser sent it, before
    /// stripPrefix) and lets everything else through to the upstream.
    #[test]
    fn serves_the_shim_at_its_path_only() {
        let on = Embed::new(&EmbedConfig::new("/embed/app")).expect("valid");
        let off = Embed::new(&EmbedConfig {
            shim: false,
            ..EmbedConfig::new("/embed/app")
        })
        .expect("valid");
        let file = &crate::embed::shim::SHIM.file;
        let shim_path = format!("/embed/app/__bloud__/{file}");
        // (middleware, method, original path, status or "continue")
        let cases = [
            (&on, "GET", shim_path.clone(), "200"),
            (&on, "HEAD", shim_path.clone(), "200"),
            (&on, "PUT", shim_path.clone(), "405"),
            (
                &on,
                "GET",
                "/embed/app/__bloud__/shim.0000000000.js".into(),
                "continue",
            ),
            (
                &on,
                "GET",
                format!("/embed/other/__bloud__/{file}"),
                "continue",
            ),
            (&on, "GET", format!("/__bloud__/{file}"), "continue"),
            (&on, "GET", "/embed/app/".into(), "continue"),
            (&off, "GET", shim_path.clone(), "continue"),
        ];
        let connector = pingora::connectors::http::Connector::new(None);
        for (m, method, path, want) in cases {
            let original = RequestHeader::build(method, path.as_bytes(), None).expect("req");
            // What the state holds after the route's stripPrefix.
            let stripped = path.strip_prefix("/embed/app").unwrap_or(&path).to_string();
            let mut st = crate::middleware::RequestState {
                method,
                scheme: "http",
                host: "bloud.local",
                path: stripped.into(),
                query: None,
                header_ops: Vec::new(),
            };
            let cx = RequestCx {
                original: &original,
                client_ip: None,
                connector: &connector,
            };
            let outcome =
                crate::middleware::ready(m.request(&mut st, &cx, &mut MiddlewareCtx::default()));
            assert_eq!(
                crate::middleware::describe(&outcome),
                want,
                "{method} {path}"
            );
            if let Some(Outcome::Respond(r)) = outcome {
                if r.status == 200 {
                    assert_eq!(r.body, crate::embed::shim::SHIM.body);
                }
            }
        }
    }

    /// A document of a response with its own CSP gets the tag that CSP allows; the policy
    /// is adapted on the way out.
    #[test]
    fn csp_of_the_response_is_adapted() {
        let m = Embed::new(&EmbedConfig::new("/embed/app")).expect("valid");
        let req = RequestHeader::build("GET", b"/embed/app/", None).expect("req");
        let cx = ResponseCx {
            request: &req,
            scheme: "http",
            host: "bloud.local",
            upstream: Some("127.0.0.1:8085"),
            downstream_h2: false,
        };
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/html"),
        );
        parts.headers.insert(
            http::header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; script-src 'strict-dynamic'"),
        );
        let mut mcx = MiddlewareCtx::default();
        m.response_headers(&mut parts, &cx, &mut mcx);
        let sri = &crate::embed::shim::SHIM.sri;
        assert_eq!(
            parts.headers[http::header::CONTENT_SECURITY_POLICY],
            format!("default-src 'none'; script-src 'strict-dynamic' '{sri}'").as_str()
        );
        let mut body = Some(Bytes::from_static(b"<!doctype html><head><title>t</title>"));
        m.response_body(&mut body, true, &mut mcx).expect("rewrite");
        let out = String::from_utf8(body.unwrap_or_default().to_vec()).expect("utf-8");
        assert!(
            out.contains(&format!(" integrity=\"{sri}\"></script><title>")),
            "{out}"
        );
    }
}

//! Responses the proxy writes itself: error pages, its internal endpoints, and whatever a
//! middleware or a check in `request_filter` decided to answer.

use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

use super::request::Answer;
use super::{EntryProxy, RequestCtx};
use crate::error_page;
use crate::middleware::LocalResponse;
use crate::service::Internal;

impl EntryProxy {
    pub(super) async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        answer: Answer,
    ) -> Result<()> {
        match answer {
            Answer::Page {
                status,
                detail,
                close,
            } => {
                if close {
                    session.set_keepalive(None);
                }
                let name = ctx.router_name();
                self.respond_page(session, ctx, status, name.as_deref(), detail)
                    .await
            }
            Answer::Local(resp) => self.respond(session, ctx, resp).await,
            Answer::Internal(internal) => self.serve_internal(session, ctx, internal).await,
        }
    }

    async fn serve_internal(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        internal: Internal,
    ) -> Result<()> {
        let req = session.req_header();
        let read_only = req.method == http::Method::GET || req.method == http::Method::HEAD;
        let resp = match internal {
            Internal::Ping if !read_only => LocalResponse::text(405, "Method Not Allowed\n"),
            Internal::Ping if self.shared.is_shutting_down() => {
                LocalResponse::text(503, "Service Unavailable")
            }
            Internal::Ping => LocalResponse::text(200, "OK"),
            Internal::Noop => LocalResponse::text(200, ""),
            Internal::Prometheus => {
                let mut r = LocalResponse::text(200, &self.shared.metrics.render());
                r.headers[0].1 =
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
                r
            }
            Internal::Api => {
                let report = self.shared.reload_report();
                let json = ctx
                    .table
                    .as_deref()
                    .and_then(|table| crate::admin::api(table, &report, req.uri.path()));
                match json {
                    Some(json) => {
                        let mut r = LocalResponse::text(200, &json);
                        r.headers[0].1 = HeaderValue::from_static("application/json");
                        r
                    }
                    None => {
                        let body = error_page::page(404, ctx.router_name().as_deref(), "Unknown API path; bloud-proxy has no dashboard. Try /api/http/routers, /api/http/middlewares, /api/http/services or /api/reload.");
                        let mut r = LocalResponse::text(404, "");
                        r.headers[0].1 = HeaderValue::from_static("text/html; charset=utf-8");
                        r.body = body;
                        r
                    }
                }
            }
        };
        self.respond(session, ctx, resp).await
    }

    pub(super) async fn respond_page(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        status: u16,
        router: Option<&str>,
        detail: &str,
    ) -> Result<()> {
        let resp = LocalResponse {
            status,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body: error_page::page(status, router, detail),
        };
        self.respond(session, ctx, resp).await
    }

    async fn respond(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        resp: LocalResponse,
    ) -> Result<()> {
        ctx.local_status = Some(resp.status);
        let mut header = ResponseHeader::build(resp.status, Some(resp.headers.len() + 2))?;
        for (name, value) in resp.headers {
            header.append_header(name, value)?;
        }
        // A 304 has no body; its Content-Length would have to be the full response's.
        if resp.status != 304 {
            header.insert_header(http::header::CONTENT_LENGTH, resp.body.len().to_string())?;
        }
        // The proxy's own answers are not cached, unless one says otherwise (the embed shim).
        if !header.headers.contains_key(http::header::CACHE_CONTROL) {
            header.insert_header(http::header::CACHE_CONTROL, "no-store")?;
        }
        let head = session.req_header().method == http::Method::HEAD;
        let body = if head || resp.body.is_empty() {
            None
        } else {
            Some(resp.body)
        };
        session
            .write_response_header(Box::new(header), body.is_none())
            .await?;
        if let Some(b) = body {
            session.write_response_body(Some(b), true).await?;
        }
        Ok(())
    }
}

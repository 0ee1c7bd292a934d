//! The Pingora `ProxyHttp` implementation: one instance per entry point. Phases appear in the
//! order Pingora calls them; `request_filter`'s steps are in `request`, the answers the proxy
//! writes itself in `local`, the forwarding headers in `forwarded`.

mod disconnect;
mod forwarded;
mod local;
mod request;

use request::keep_upgrades_open;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use http::{HeaderValue, Uri};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};

use crate::edge::Trust;
use crate::limits::{EntryLimits, ResponseHeaderTimer};
use crate::metrics::OpenGuard;
use crate::middleware::{self, MiddlewareCtx, ResponseCx};
use crate::service::Service;
use crate::state::Shared;
use crate::table::{CompiledRouter, RouteTable};

/// Per-request state. Pingora requires it to be `Send + Sync`.
pub struct RequestCtx {
    start: Instant,
    _open: OpenGuard,
    /// The route snapshot this request uses from start to end.
    table: Option<Arc<RouteTable>>,
    router: Option<usize>,
    server: usize,
    /// Connection attempts made so far (addresses and servers are tried in turn).
    attempts: usize,
    client_ip: Option<IpAddr>,
    trusted: bool,
    /// Host header as received (a shared copy of the client's value, not a new string);
    /// empty when there is none or it is not text.
    host: HeaderValue,
    /// New request target for the upstream, when middlewares changed it. Shared bytes: a retry
    /// on another server parses it again without a copy.
    upstream_uri: Option<bytes::Bytes>,
    /// Status of a response the proxy wrote itself (for logs when nothing reached the wire).
    local_status: Option<u16>,
    upstream_addr: Option<std::net::SocketAddr>,
    /// The client's `User-Agent` and `Referer` for the access log, taken before the header edits
    /// of `request_filter` change the request (only when an access log is written).
    logged_headers: Option<LoggedHeaders>,
    /// What the router's middlewares keep between phases.
    mw: MiddlewareCtx,
    /// The wait for the upstream's response header (`responseHeaderTimeout`).
    header_timer: ResponseHeaderTimer,
}

impl RequestCtx {
    fn router<'a>(&self, table: &'a RouteTable) -> Option<&'a CompiledRouter> {
        self.router.and_then(|id| table.router_by_id(id))
    }

    fn host(&self) -> &str {
        self.host.to_str().unwrap_or_default()
    }

    fn router_name(&self) -> Option<Arc<str>> {
        let table = self.table.as_ref()?;
        self.router(table).map(|r| r.name.clone())
    }
}

/// Request headers the access log reports as the client sent them.
struct LoggedHeaders {
    user_agent: Option<HeaderValue>,
    referer: Option<HeaderValue>,
}

/// The proxy for one entry point.
pub struct EntryProxy {
    pub shared: Arc<Shared>,
    pub entry_point: Arc<str>,
    pub trust: Trust,
    pub limits: EntryLimits,
    /// The entry point serves HTTPS: the scheme middlewares see and `X-Forwarded-Proto`/`-Port`.
    pub tls: bool,
}

impl EntryProxy {
    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

#[async_trait]
impl ProxyHttp for EntryProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            start: Instant::now(),
            _open: OpenGuard::new(self.shared.metrics.clone()),
            table: None,
            router: None,
            server: 0,
            attempts: 0,
            client_ip: None,
            trusted: false,
            host: HeaderValue::from_static(""),
            upstream_uri: None,
            local_status: None,
            upstream_addr: None,
            logged_headers: None,
            mw: MiddlewareCtx::default(),
            header_timer: ResponseHeaderTimer::default(),
        }
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        crate::limits::header_complete();
        let l = &self.limits;
        // Pingora turns an HTTP/1.1 connection's keep-alive timer off after the first request;
        // `None` here means the client asked to close.
        if l.idle.is_some() && session.get_keepalive().is_some() {
            session.set_keepalive(Some(l.keepalive_secs()));
        }
        session.set_read_timeout(l.read);
        session.set_write_timeout(l.write);
        // Requests pipelined behind this one are answered in turn (RFC 9112 §9.3.2); without
        // this, Pingora closes the connection after the first answer and drops them.
        session.set_pipelining_enabled(true);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if crate::limits::header_bytes(session.req_header()) > self.limits.max_header_bytes {
            self.shared.metrics.refused_header_size.inc();
            let answer = request::Answer::Page {
                status: 431,
                detail: "The request header is larger than this proxy accepts.",
                close: true,
            };
            self.answer(session, ctx, answer).await?;
            return Ok(true);
        }
        let table = self.take_snapshot(session, ctx);
        self.drop_spoofed_headers(session, ctx);
        self.keep_logged_headers(session, ctx);
        keep_upgrades_open(session);
        match self.prepare_upstream_request(session, ctx, &table).await {
            Ok(()) => Ok(false),
            Err(answer) => {
                self.answer(session, ctx, answer).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let table = ctx
            .table
            .clone()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no route snapshot"))?;
        let router = ctx
            .router(&table)
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no router"))?;
        let Service::LoadBalancer(lb) = &*router.service else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "internal service has no peer",
            ));
        };
        let server = lb
            .servers
            .get(ctx.server)
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "server index"))?;
        let addr = *server
            .addrs
            .get(ctx.attempts % server.addrs.len().max(1))
            .ok_or_else(|| Error::explain(ErrorType::ConnectNoRoute, "upstream has no address"))?;
        ctx.upstream_addr = Some(addr);
        let mut peer = HttpPeer::new(addr, false, String::new());
        let t = self.shared.timeouts;
        peer.options.connection_timeout = Some(t.dial);
        peer.options.idle_timeout = t.idle;
        // No per-read limit: the response header has its own deadline (`header_timer`), and
        // the body may pause as long as the app likes (SSE, WebSockets).
        peer.options.read_timeout = None;
        Ok(Box::new(peer))
    }

    async fn connected_to_upstream(
        &self,
        session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora::protocols::Digest>,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let body_done = session.as_downstream_mut().is_body_done();
        ctx.header_timer
            .connected(fd, body_done, self.shared.timeouts.response_header);
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if end_of_stream {
            ctx.header_timer.request_body_done();
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // Switching protocols the client did not ask for would hand it a raw byte stream.
        if upstream_response.status == http::StatusCode::SWITCHING_PROTOCOLS
            && !session.is_upgrade_req()
        {
            return Err(Error::explain(
                ErrorType::HTTPStatus(502),
                "the upstream answered 101 to a request without Upgrade",
            ));
        }
        answer_in_client_version(upstream_response, session.req_header().version);
        // A `100 Continue` is not the answer yet.
        if upstream_response.status != http::StatusCode::CONTINUE {
            ctx.header_timer.stop();
        }
        Ok(())
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        // Pingora's default policy, plus: a late upstream is not asked again.
        let mut e = e.more_context(format!("Peer: {peer}"));
        if ctx.header_timer.fired()
            || !session.req_header().method.is_idempotent()
            || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        self.shared.metrics.upstream_connect_failures.inc();
        ctx.attempts += 1;
        // Nothing was sent yet, so trying the server's other addresses (e.g. ::1 after
        // 127.0.0.1) and then the other servers is safe for any method.
        if let Some(table) = ctx.table.clone() {
            if let Some(Service::LoadBalancer(lb)) = ctx.router(&table).map(|r| &*r.service) {
                let addrs = lb.servers.get(ctx.server).map_or(0, |s| s.addrs.len());
                let total: usize = lb.servers.iter().map(|s| s.addrs.len()).sum();
                if ctx.attempts < total {
                    if ctx.attempts.is_multiple_of(addrs.max(1)) {
                        if let Some(next) = lb.pick() {
                            ctx.server = next;
                        }
                    }
                    e.set_retry(true);
                }
            }
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let table = ctx.table.clone();
        let router = table.as_deref().and_then(|t| ctx.router(t));
        let lb = router.and_then(|r| match &*r.service {
            Service::LoadBalancer(lb) => Some(lb),
            Service::Internal(_) => None,
        });
        let server = lb.and_then(|lb| lb.servers.get(ctx.server));

        // Request target: middleware result, the server URL's base path, always origin-form.
        let base = server.map_or("", |s| s.base_path.as_str());
        let target = match &ctx.upstream_uri {
            Some(t) if base.is_empty() => Some(t.clone()),
            Some(t) => Some(joined(base.as_bytes(), t)),
            None if !base.is_empty() || !upstream.raw_path().starts_with(b"/") => Some(joined(
                base.as_bytes(),
                upstream
                    .uri
                    .path_and_query()
                    .map_or(b"/".as_slice(), |p| p.as_str().as_bytes()),
            )),
            None => None,
        };
        if let Some(t) = target {
            let uri = Uri::from_maybe_shared(t)
                .map_err(|e| Error::because(ErrorType::InvalidHTTPHeader, "rewritten path", e))?;
            upstream.set_uri(uri);
        }
        if let Some(s) = server.filter(|_| lb.is_some_and(|lb| !lb.pass_host_header)) {
            // No spelling map on this copy (dropped with the header edits in `request_filter`),
            // so Pingora's insert only touches the header map.
            upstream.insert_header(http::header::HOST, s.host_header.clone())?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // Field by field: the middlewares' context is borrowed mutably next to the rest.
        let Some(router) = ctx.table.as_deref().and_then(|t| ctx.router(t)) else {
            return Ok(());
        };
        if !router.edits_response && !ctx.mw.response_pending() {
            return Ok(());
        }
        let upstream = match &*router.service {
            Service::LoadBalancer(lb) => lb.servers.get(ctx.server).map(|s| s.authority.as_str()),
            Service::Internal(_) => None,
        };
        let cx = ResponseCx {
            request: session.req_header(),
            scheme: self.scheme(),
            host: ctx.host.to_str().unwrap_or_default(),
            upstream,
            downstream_h2: session.as_downstream().is_http2(),
        };
        let mw = &mut ctx.mw;
        crate::header_edit::edit_response(upstream_response, |parts| {
            middleware::run_response_headers(&router.middlewares, parts, &cx, mw)
        });
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        if !ctx.mw.rewrites_body() {
            return Ok(None);
        }
        let router = ctx
            .table
            .as_deref()
            .and_then(|t| ctx.router.and_then(|id| t.router_by_id(id)));
        if let Some(router) = router {
            let result = middleware::run_response_body(
                &router.middlewares,
                body,
                end_of_stream,
                &mut ctx.mw,
            );
            if let Err(e) = result {
                let bomb = matches!(
                    e.root_cause().downcast_ref::<crate::embed::EmbedError>(),
                    Some(crate::embed::EmbedError::TooLarge { .. })
                );
                if !bomb {
                    return Err(e);
                }
                self.shared.metrics.embed_decompression_aborted.inc();
                tracing::warn!(router = %router.name, "{}", e.root_cause());
                // The upstream's fault: 502 if nothing was sent yet, else the response is cut.
                return Err(Error::because(
                    ErrorType::HTTPStatus(502),
                    "embed: decoded body over the cap",
                    e,
                ));
            }
        }
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let late = ctx.header_timer.fired();
        let code = match e.etype() {
            _ if late => 504,
            ErrorType::HTTPStatus(code) => *code,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
                if e.esource() == &ErrorSource::Upstream =>
            {
                504
            }
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code > 0 && session.response_written().is_none() {
            // The downstream connection is closed after this answer (its request body may be
            // half read); say so, or clients reuse it and see a reset.
            session.set_keepalive(None);
            let detail = match code {
                502 => "The upstream server refused the connection or failed.",
                504 => "The upstream server did not answer in time.",
                400 => "The request could not be read.",
                _ => "The request failed.",
            };
            let name = ctx.router_name();
            if let Err(err) = self
                .respond_page(session, ctx, code, name.as_deref(), detail)
                .await
            {
                tracing::debug!(error = %err, "cannot send the error page");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, session: &Session, _ctx: &RequestCtx, e: &Error) -> bool {
        if !disconnect::client_went_away(e) {
            return false;
        }
        tracing::debug!(
            uri = %String::from_utf8_lossy(session.req_header().raw_path()),
            "client closed the connection before the response ended: {e}"
        );
        true
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        ctx.header_timer.stop();
        crate::limits::response_done(self.limits.idle);
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .or(ctx.local_status)
            .unwrap_or(0);
        let elapsed = ctx.start.elapsed();
        let req = session.req_header();
        let router = ctx.table.as_deref().and_then(|t| ctx.router(t));
        match router {
            Some(r) => r.metrics.observe(req.method.as_str(), status, elapsed),
            None => self
                .shared
                .unrouted
                .observe(req.method.as_str(), status, elapsed),
        }
        if let Some(log) = &self.shared.access_log {
            // As the client sent them; a request that never reached the header edits of
            // `request_filter` has no snapshot and is unchanged.
            let (user_agent, referer) = match &ctx.logged_headers {
                Some(h) => (h.user_agent.as_ref(), h.referer.as_ref()),
                None => (
                    req.headers.get(http::header::USER_AGENT),
                    req.headers.get(http::header::REFERER),
                ),
            };
            log.record(crate::access_log::Entry {
                client: ctx.client_ip,
                method: req.method.as_str(),
                uri: &String::from_utf8_lossy(req.raw_path()),
                version: req.version,
                status,
                bytes: session.body_bytes_sent(),
                router: router.map(|r| &*r.name),
                upstream: ctx.upstream_addr,
                host: ctx.host(),
                duration: elapsed,
                user_agent: user_agent.and_then(|v| v.to_str().ok()),
                referer: referer.and_then(|v| v.to_str().ok()),
            });
        }
    }
}

fn joined(a: &[u8], b: &[u8]) -> bytes::Bytes {
    let mut out = Vec::with_capacity(a.len() + b.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out.into()
}

#[allow(dead_code)]
fn assert_ctx_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<RequestCtx>();
}

/// The response goes out in the client's HTTP/1.1, not in the upstream's HTTP/1.0 (Python's
/// `wsgiref`, `http.server`): HTTP/1.0 has no chunked coding, so a rewritten body (its length
/// unknown, sent chunked) would reach the browser undecodable. Like nginx, which answers in its
/// own version whatever the upstream spoke.
fn answer_in_client_version(resp: &mut ResponseHeader, client: http::Version) {
    if resp.version == http::Version::HTTP_10 && client == http::Version::HTTP_11 {
        resp.set_version(http::Version::HTTP_11);
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;
    use http::Version;

    #[test]
    fn the_response_takes_the_clients_http1_version() {
        let cases = [
            // (upstream, client, sent)
            (Version::HTTP_10, Version::HTTP_11, Version::HTTP_11),
            (Version::HTTP_10, Version::HTTP_10, Version::HTTP_10),
            (Version::HTTP_11, Version::HTTP_11, Version::HTTP_11),
            (Version::HTTP_11, Version::HTTP_10, Version::HTTP_11),
        ];
        for (upstream, client, sent) in cases {
            let mut resp = ResponseHeader::build(200, None).expect("valid status");
            resp.set_version(upstream);
            answer_in_client_version(&mut resp, client);
            assert_eq!(
                resp.version, sent,
                "upstream {upstream:?}, client {client:?}"
            );
        }
    }
}

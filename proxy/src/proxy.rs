//! The Pingora `ProxyHttp` implementation: one instance per entry point. Phases appear in the
//! order Pingora calls them.

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

use crate::edge::{self, Trust};
use crate::error_page;
use crate::metrics::OpenGuard;
use crate::middleware::forward_auth::Decision;
use crate::middleware::{apply_ops, LocalResponse, Middleware, Outcome, RequestState};
use crate::rules::RequestView;
use crate::service::{Internal, Service};
use crate::state::Shared;
use crate::table::RouteTable;

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
    /// `Set-Cookie` values a forwardAuth answer asked to add to the final response.
    auth_cookies: Vec<HeaderValue>,
    /// Streaming body rewriter of an `embed` middleware, when the response is rewritten.
    body_rewriter: Option<crate::embed::BodyRewriter>,
}

impl RequestCtx {
    fn router<'a>(&self, table: &'a RouteTable) -> Option<&'a crate::table::CompiledRouter> {
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
            auth_cookies: Vec::new(),
            body_rewriter: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let table = self.shared.table.load_full();
        ctx.table = Some(table.clone());
        ctx.client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        ctx.trusted = self.trust.trusts(ctx.client_ip);
        if !ctx.trusted {
            // One pass over the few headers a request has, instead of a lookup per spoofable
            // name; removal only for what is there.
            let mut found: Vec<http::HeaderName> = Vec::new();
            for name in session.req_header().headers.keys() {
                if edge::is_spoofable(name.as_str()) {
                    found.push(name.clone());
                }
            }
            let req = session.req_header_mut();
            for name in &found {
                req.remove_header(name);
            }
        }
        if self.shared.access_log.is_some() {
            let headers = &session.req_header().headers;
            ctx.logged_headers = Some(LoggedHeaders {
                user_agent: headers.get(http::header::USER_AGENT).cloned(),
                referer: headers.get(http::header::REFERER).cloned(),
            });
        }
        if session.is_upgrade_req() {
            // WebSockets may idle far longer than Pingora's 60 s default downstream read timeout.
            session.set_read_timeout(None);
        }

        // Borrowed from the client's request for routing and the middlewares; copied only
        // where later phases need them (the host) or a middleware changes them (the path).
        let req = session.req_header();
        let path = req.uri.path();
        let query = req.uri.query();
        let host_header = req.headers.get(http::header::HOST);
        let host = match host_header.map(|h| (h, h.to_str())) {
            Some((h, Ok(text))) => {
                ctx.host = h.clone();
                text
            }
            _ => {
                let authority = req.uri.authority().map_or("", |a| a.as_str());
                ctx.host = HeaderValue::from_str(authority)
                    .unwrap_or_else(|_| HeaderValue::from_static(""));
                authority
            }
        };
        if req.headers.contains_key(http::header::TRANSFER_ENCODING) && sent_content_length(session)
        {
            // Both framings at once is the classic smuggling shape (RFC 9112 §6.1): refuse it
            // and close, rather than guess which one the sender meant.
            session.set_keepalive(None);
            self.respond_page(
                session,
                ctx,
                400,
                None,
                "Content-Length and Transfer-Encoding together are not allowed.",
            )
            .await?;
            return Ok(true);
        }
        if !path.starts_with('/') || edge::has_dot_segments(path) {
            self.respond_page(session, ctx, 400, None, "The request path is not allowed.")
                .await?;
            return Ok(true);
        }
        if crate::embed::refuse_root_service_worker(path, &req.headers) {
            let mut resp = LocalResponse::text(
                crate::embed::service_worker::REFUSED_STATUS,
                crate::embed::service_worker::REFUSED_BODY,
            );
            resp.headers[0].1 = HeaderValue::from_static("text/plain; charset=utf-8");
            self.respond(session, ctx, resp).await?;
            return Ok(true);
        }
        let method = req.method.as_str();
        let view = RequestView {
            method,
            host: edge::strip_port(host),
            path,
            query,
            headers: &req.headers,
        };
        let Some((id, router)) = table
            .route_id(&self.entry_point, &view)
            .and_then(|id| table.router_by_id(id).map(|r| (id, r)))
        else {
            self.respond_page(session, ctx, 404, None, "No route matches this request.")
                .await?;
            return Ok(true);
        };
        ctx.router = Some(id);

        if let Service::Internal(internal) = &*router.service {
            let path = path.to_string();
            self.serve_internal(session, ctx, *internal, &table, &path)
                .await?;
            return Ok(true);
        }

        let mut st = RequestState {
            method,
            scheme: "http",
            host,
            path: path.into(),
            query,
            header_ops: Vec::new(),
        };
        for m in &router.middlewares {
            if let Middleware::ForwardAuth(fa) = &**m {
                let decision = fa
                    .check(
                        &self.shared.auth_connector,
                        session.req_header(),
                        &st,
                        ctx.client_ip,
                    )
                    .await;
                match decision {
                    Ok(Decision::Allow { ops, cookies }) => {
                        st.header_ops.extend(ops);
                        ctx.auth_cookies.extend(cookies);
                    }
                    Ok(Decision::Deny(resp)) => {
                        self.respond(session, ctx, resp).await?;
                        return Ok(true);
                    }
                    Err(e) => {
                        // Never fail open: no answer from the auth server means no access.
                        tracing::warn!(router = %router.name, error = %e, "forwardAuth failed");
                        let name = router.name.clone();
                        self.respond_page(
                            session,
                            ctx,
                            500,
                            Some(&name),
                            "The authentication server could not be reached.",
                        )
                        .await?;
                        return Ok(true);
                    }
                }
                continue;
            }
            if let Outcome::Respond(resp) = m.on_request(&mut st) {
                self.respond(session, ctx, resp).await?;
                return Ok(true);
            }
        }
        if st.path != path {
            ctx.upstream_uri = Some(st.request_uri().into());
        }
        let ops = st.header_ops;

        if let Service::LoadBalancer(lb) = &*router.service {
            match lb.pick() {
                Some(i) if !lb.servers[i].addrs.is_empty() => ctx.server = i,
                Some(_) => {
                    let name = router.name.clone();
                    self.respond_page(
                        session,
                        ctx,
                        502,
                        Some(&name),
                        "The upstream host name cannot be resolved.",
                    )
                    .await?;
                    return Ok(true);
                }
                None => {
                    let name = router.name.clone();
                    self.respond_page(
                        session,
                        ctx,
                        502,
                        Some(&name),
                        "No healthy upstream server is available.",
                    )
                    .await?;
                    return Ok(true);
                }
            }
        }

        // The upstream request's headers: the proxy's forwarding headers, then the
        // middlewares' edits. Done here, once, on the client's request, which Pingora copies for
        // each connection attempt: a retry on another server gets the same headers, and the
        // copy carries no header spelling map (see `header_edit`). What depends on the chosen
        // server (target base path, Host for passHostHeader=false) is set per attempt in
        // `upstream_request_filter`.
        let overrides = router.forwarded_overrides;
        crate::header_edit::edit_request(session.req_header_mut(), |parts| {
            let headers = &mut parts.headers;
            headers.reserve(6 + ops.len());
            self.set_forwarded_headers(headers, ctx, overrides);
            apply_ops(headers, &ops);
        });
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
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
        peer.options.read_timeout = if session.is_upgrade_req() {
            None
        } else {
            t.read
        };
        Ok(Box::new(peer))
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
        let table = ctx.table.clone();
        let router = table.as_deref().and_then(|t| ctx.router(t));
        if !router.is_some_and(|r| r.edits_response) && ctx.auth_cookies.is_empty() {
            return Ok(());
        }
        crate::header_edit::edit_response(upstream_response, |parts| {
            if let Some(router) = router {
                // Traefik nests middlewares: the first listed modifies the response last.
                for m in router.middlewares.iter().rev() {
                    match &**m {
                        Middleware::Embed(rw) => {
                            self.embed_response(session, parts, ctx, rw, router)
                        }
                        other => apply_ops(&mut parts.headers, other.response_ops()),
                    }
                }
            }
            for cookie in std::mem::take(&mut ctx.auth_cookies) {
                parts.headers.append(http::header::SET_COOKIE, cookie);
            }
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
        let Some(rw) = ctx.body_rewriter.as_mut() else {
            return Ok(None);
        };
        let mut out = match body.take() {
            Some(chunk) => rw
                .write(&chunk)
                .map_err(|e| Error::because(ErrorType::InvalidHTTPHeader, "embed rewrite", e))?,
            None => bytes::Bytes::new(),
        };
        if end_of_stream {
            let tail = rw
                .finish()
                .map_err(|e| Error::because(ErrorType::InvalidHTTPHeader, "embed rewrite", e))?;
            if !tail.is_empty() {
                let mut joined = bytes::BytesMut::with_capacity(out.len() + tail.len());
                joined.extend_from_slice(&out);
                joined.extend_from_slice(&tail);
                out = joined.freeze();
            }
        }
        *body = Some(out);
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = match e.etype() {
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

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
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

impl EntryProxy {
    /// Header rewriting and, when applicable, the body plan of an `embed` middleware.
    fn embed_response(
        &self,
        session: &Session,
        resp: &mut http::response::Parts,
        ctx: &mut RequestCtx,
        rw: &crate::embed::EmbedRewriter,
        router: &crate::table::CompiledRouter,
    ) {
        let upstream = match &*router.service {
            Service::LoadBalancer(lb) => lb.servers.get(ctx.server).map(|s| s.authority.as_str()),
            Service::Internal(_) => None,
        };
        // Built only for the responses that need it (a Location to fix, a body to rewrite).
        let origins = std::cell::OnceCell::new();
        let origins = || {
            origins.get_or_init(|| crate::embed::Origins::new("http", Some(ctx.host()), upstream))
        };
        let headers = &mut resp.headers;
        if rw.touches_response_headers(headers) {
            rw.rewrite_response_headers(headers, origins());
        }
        let req = session.req_header();
        if ctx.body_rewriter.is_none() {
            if let Some(plan) = rw.plan_body(&req.method, &req.headers, resp.status, headers) {
                plan.apply_headers(headers);
                let rewriter = plan.start(rw, origins());
                if !session.as_downstream().is_http2() {
                    headers.remove(http::header::CONTENT_LENGTH);
                    headers.insert(
                        http::header::TRANSFER_ENCODING,
                        HeaderValue::from_static("chunked"),
                    );
                }
                ctx.body_rewriter = Some(rewriter);
            }
        }
    }

    /// The headers every proxied request gets (DESIGN.md "Edge policy"). Client-sent copies
    /// are only kept from trusted peers; untrusted ones were removed in `request_filter`.
    /// Headers the router's middlewares set or remove right after are skipped (`overrides`).
    fn set_forwarded_headers(
        &self,
        headers: &mut http::HeaderMap,
        ctx: &RequestCtx,
        overrides: edge::ForwardedOverrides,
    ) {
        let keep =
            |name: &http::HeaderName, h: &http::HeaderMap| ctx.trusted && h.contains_key(name);
        if let Some(ip) = ctx.client_ip {
            let ip_v = edge::client_ip_value(ip);
            if !overrides.forwarded_for {
                let xff = match headers.get(edge::X_FORWARDED_FOR) {
                    Some(prev) if ctx.trusted => {
                        let mut joined = Vec::with_capacity(prev.len() + 2 + ip_v.len());
                        joined.extend_from_slice(prev.as_bytes());
                        joined.extend_from_slice(b", ");
                        joined.extend_from_slice(ip_v.as_bytes());
                        HeaderValue::from_bytes(&joined).unwrap_or_else(|_| ip_v.clone())
                    }
                    _ => ip_v.clone(),
                };
                headers.insert(edge::X_FORWARDED_FOR, xff);
            }
            if !overrides.real_ip && !keep(&edge::X_REAL_IP, headers) {
                headers.insert(edge::X_REAL_IP, ip_v);
            }
        }
        if !overrides.proto && !keep(&edge::X_FORWARDED_PROTO, headers) {
            headers.insert(edge::X_FORWARDED_PROTO, edge::HTTP);
        }
        if !overrides.host && !keep(&edge::X_FORWARDED_HOST, headers) && !ctx.host.is_empty() {
            headers.insert(edge::X_FORWARDED_HOST, ctx.host.clone());
        }
        if !overrides.port && !keep(&edge::X_FORWARDED_PORT, headers) {
            let port = match edge::host_port(ctx.host()) {
                None | Some("80") => Some(edge::PORT_80),
                Some(p) => HeaderValue::from_str(p).ok(),
            };
            if let Some(p) = port {
                headers.insert(edge::X_FORWARDED_PORT, p);
            }
        }
        if !overrides.server {
            headers.insert(edge::X_FORWARDED_SERVER, self.shared.hostname.clone());
        }
    }

    async fn serve_internal(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        internal: Internal,
        table: &RouteTable,
        path: &str,
    ) -> Result<()> {
        let method = session.req_header().method.clone();
        let read_only = method == http::Method::GET || method == http::Method::HEAD;
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
            Internal::Api => match crate::admin::api(table, &self.shared.reload_report(), path) {
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
            },
        };
        self.respond(session, ctx, resp).await
    }

    async fn respond_page(
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
        header.insert_header(http::header::CONTENT_LENGTH, resp.body.len().to_string())?;
        header.insert_header(http::header::CACHE_CONTROL, "no-store")?;
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

fn joined(a: &[u8], b: &[u8]) -> bytes::Bytes {
    let mut out = Vec::with_capacity(a.len() + b.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out.into()
}

/// Whether the client sent a Content-Length header. Pingora drops it from the parsed header
/// when Transfer-Encoding is also present, so look at the raw HTTP/1 head.
fn sent_content_length(session: &Session) -> bool {
    if session
        .req_header()
        .headers
        .contains_key(http::header::CONTENT_LENGTH)
    {
        return true;
    }
    let Some(h1) = session.as_downstream().as_http1() else {
        return false;
    };
    let raw = h1.get_headers_raw_bytes();
    raw.split(|b| *b == b'\n').skip(1).any(|line| {
        let line = line.strip_prefix(b" ").unwrap_or(line);
        line.len() >= 15 && line[..15].eq_ignore_ascii_case(b"content-length:")
    })
}

#[allow(dead_code)]
fn assert_ctx_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<RequestCtx>();
}

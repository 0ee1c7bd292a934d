//! The steps of `request_filter`: from the client's request to either an answer the proxy
//! writes itself ([`Answer`]) or an upstream request ready to send.

use std::sync::Arc;

use http::HeaderValue;
use pingora::http::RequestHeader;
use pingora::proxy::Session;

use super::{EntryProxy, LoggedHeaders, RequestCtx};
use crate::edge;
use crate::embed::service_worker;
use crate::middleware::{self, HeaderOp, LocalResponse, Outcome, RequestCx, RequestState};
use crate::rules::RequestView;
use crate::service::{Internal, Service};
use crate::table::{CompiledRouter, RouteTable};

/// Why the proxy answers a request itself instead of sending it upstream.
pub(super) enum Answer {
    /// An error page, naming the matched router if there is one.
    Page {
        status: u16,
        detail: &'static str,
        /// Close the connection afterwards: the request's framing cannot be trusted.
        close: bool,
    },
    /// A response a middleware (or a global check) built.
    Local(LocalResponse),
    /// One of the proxy's own endpoints.
    Internal(Internal),
}

impl Answer {
    const fn page(status: u16, detail: &'static str) -> Answer {
        Answer::Page {
            status,
            detail,
            close: false,
        }
    }
}

impl EntryProxy {
    /// The route table this request uses from start to end, and who sent it.
    pub(super) fn take_snapshot(&self, session: &Session, ctx: &mut RequestCtx) -> Arc<RouteTable> {
        let table = self.shared.table.load_full();
        ctx.table = Some(table.clone());
        ctx.client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        ctx.trusted = self.trust.trusts(ctx.client_ip);
        table
    }

    /// Forwarding headers are only believed from trusted peers; from anyone else they go.
    pub(super) fn drop_spoofed_headers(&self, session: &mut Session, ctx: &RequestCtx) {
        if ctx.trusted {
            return;
        }
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

    /// The access log reports `User-Agent` and `Referer` as the client sent them, before the
    /// middlewares' edits.
    pub(super) fn keep_logged_headers(&self, session: &Session, ctx: &mut RequestCtx) {
        if self.shared.access_log.is_none() {
            return;
        }
        let headers = &session.req_header().headers;
        ctx.logged_headers = Some(LoggedHeaders {
            user_agent: headers.get(http::header::USER_AGENT).cloned(),
            referer: headers.get(http::header::REFERER).cloned(),
        });
    }

    /// Everything between the checks on the raw request and the upstream request's headers.
    /// `Err` is the answer the client gets instead.
    pub(super) async fn prepare_upstream_request(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        table: &RouteTable,
    ) -> Result<(), Answer> {
        strip_connection_nominated(session.req_header_mut())?;
        // Borrowed from the client's request for routing and the middlewares; copied only
        // where later phases need them (the host) or a middleware changes them (the path).
        let req = session.req_header();
        refuse_bad_host(req)?;
        let host = note_host(req, ctx);
        refuse_smuggling(session)?;
        refuse_bad_path(req)?;
        refuse_root_service_worker(req)?;
        let router = self.route(table, req, host, ctx)?;
        serve_internal(router)?;
        let ops = self.run_middlewares(req, host, router, ctx).await?;
        pick_server(router, ctx)?;
        self.set_upstream_headers(session, ctx, router.forwarded_overrides, &ops);
        Ok(())
    }

    fn route<'t>(
        &self,
        table: &'t RouteTable,
        req: &RequestHeader,
        host: &str,
        ctx: &mut RequestCtx,
    ) -> Result<&'t CompiledRouter, Answer> {
        let view = RequestView {
            method: req.method.as_str(),
            host: edge::strip_port(host),
            path: req.uri.path(),
            query: req.uri.query(),
            headers: &req.headers,
        };
        let (id, router) = table
            .route_id(&self.entry_point, &view)
            .and_then(|id| table.router_by_id(id).map(|r| (id, r)))
            .ok_or(Answer::page(404, "No route matches this request."))?;
        ctx.router = Some(id);
        Ok(router)
    }

    /// The router's middlewares in order; returns the edits for the upstream request's headers.
    async fn run_middlewares(
        &self,
        req: &RequestHeader,
        host: &str,
        router: &CompiledRouter,
        ctx: &mut RequestCtx,
    ) -> Result<Vec<HeaderOp>, Answer> {
        let path = req.uri.path();
        let mut st = RequestState {
            method: req.method.as_str(),
            scheme: self.scheme(),
            host,
            path: path.into(),
            query: req.uri.query(),
            header_ops: Vec::new(),
        };
        let cx = RequestCx {
            original: req,
            client_ip: ctx.client_ip,
            connector: &self.shared.auth_connector,
        };
        match middleware::run_request(&router.middlewares, &mut st, &cx, &mut ctx.mw).await {
            Outcome::Continue => {}
            Outcome::Respond(resp) => return Err(Answer::Local(resp)),
            Outcome::Fail { error, detail } => {
                tracing::warn!(router = %router.name, error = %error, "middleware failed");
                return Err(Answer::page(500, detail));
            }
        }
        if st.path != path {
            ctx.upstream_uri = Some(st.request_uri().into());
        }
        Ok(st.header_ops)
    }
}

/// WebSockets may idle far longer than Pingora's 60 s default downstream read timeout.
pub(super) fn keep_upgrades_open(session: &mut Session) {
    if session.is_upgrade_req() {
        session.set_read_timeout(None);
    }
}

/// RFC 9112 §3.2: an HTTP/1.1 request must carry exactly one `Host`, any request at most one.
/// Otherwise the proxy would route on one name and the upstream might read another (or none).
fn refuse_bad_host(req: &RequestHeader) -> Result<(), Answer> {
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    let (first, second) = (hosts.next(), hosts.next());
    let missing = first.is_none() && req.version == http::Version::HTTP_11;
    if missing || second.is_some() {
        return Err(Answer::Page {
            status: 400,
            detail: "An HTTP/1.1 request needs exactly one Host header.",
            close: true,
        });
    }
    Ok(())
}

/// Keeps the Host the client sent (a shared copy of its value, not a new string) for later
/// phases, and returns it as text: the Host header, else the request target's authority.
fn note_host<'r>(req: &'r RequestHeader, ctx: &mut RequestCtx) -> &'r str {
    match req.headers.get(http::header::HOST).map(|h| (h, h.to_str())) {
        Some((h, Ok(text))) => {
            ctx.host = h.clone();
            text
        }
        _ => {
            let authority = req.uri.authority().map_or("", |a| a.as_str());
            ctx.host =
                HeaderValue::from_str(authority).unwrap_or_else(|_| HeaderValue::from_static(""));
            authority
        }
    }
}

/// More options than any client needs; past this the request is refused rather than scanned.
const MAX_CONNECTION_OPTIONS: usize = 16;

/// Headers the client names in `Connection` are hop-by-hop (RFC 9110 §7.6.1): the client's
/// copies are removed here, and the names leave the `Connection` header with them. Otherwise
/// Pingora, which removes nominated headers from the upstream request after every filter ran,
/// would remove the ones the proxy and the middlewares set (`X-Real-Ip`, `X-Forwarded-Prefix`,
/// a `headers` middleware's value: the class of Traefik's CVE-2024-45410). Only `close`,
/// `keep-alive` and `upgrade` stay, which name no header the proxy sets.
fn strip_connection_nominated(req: &mut RequestHeader) -> Result<(), Answer> {
    let Some(first) = req.headers.get(http::header::CONNECTION) else {
        return Ok(());
    };
    // Fast path: the usual `keep-alive`, `close` or `Upgrade` alone.
    if req.headers.get_all(http::header::CONNECTION).iter().count() == 1
        && connection_options(first).all(is_connection_management)
    {
        return Ok(());
    }
    let malformed = || Answer::Page {
        status: 400,
        detail: "The Connection header is not allowed.",
        close: true,
    };
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut nominated: Vec<http::HeaderName> = Vec::new();
    for value in req.headers.get_all(http::header::CONNECTION) {
        for option in connection_options(value) {
            if kept.len() + nominated.len() >= MAX_CONNECTION_OPTIONS {
                return Err(malformed());
            }
            if is_connection_management(option) {
                kept.push(option);
                continue;
            }
            let name = http::HeaderName::from_bytes(option).map_err(|_| malformed())?;
            // Framing and routing are end to end; a client asking to drop them is up to no good.
            if matches!(
                name.as_str(),
                "host" | "content-length" | "transfer-encoding"
            ) {
                return Err(malformed());
            }
            nominated.push(name);
        }
    }
    let rewritten = HeaderValue::from_bytes(&kept.join(&b", "[..])).map_err(|_| malformed())?;
    for name in &nominated {
        req.remove_header(name);
    }
    req.remove_header(&http::header::CONNECTION);
    if !rewritten.is_empty() {
        req.insert_header(http::header::CONNECTION, rewritten)
            .map_err(|_| malformed())?;
    }
    Ok(())
}

fn connection_options(value: &HeaderValue) -> impl Iterator<Item = &[u8]> {
    value
        .as_bytes()
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

fn is_connection_management(option: &[u8]) -> bool {
    [&b"close"[..], b"keep-alive", b"upgrade"]
        .iter()
        .any(|o| option.eq_ignore_ascii_case(o))
}

/// Both framings at once is the classic smuggling shape (RFC 9112 §6.1): refuse it and close,
/// rather than guess which one the sender meant.
fn refuse_smuggling(session: &Session) -> Result<(), Answer> {
    let chunked = session
        .req_header()
        .headers
        .contains_key(http::header::TRANSFER_ENCODING);
    if chunked && sent_content_length(session) {
        return Err(Answer::Page {
            status: 400,
            detail: "Content-Length and Transfer-Encoding together are not allowed.",
            close: true,
        });
    }
    // `Content-Length: 35, 35` is one length to Pingora but went upstream as the list, which an
    // upstream may read differently (RFC 9110 §8.6 lets us refuse it; nginx does).
    let listed = session
        .req_header()
        .headers
        .get_all(http::header::CONTENT_LENGTH)
        .iter()
        .any(|v| !v.as_bytes().iter().all(u8::is_ascii_digit));
    if listed {
        return Err(Answer::Page {
            status: 400,
            detail: "Content-Length must be one decimal number.",
            close: true,
        });
    }
    Ok(())
}

/// A path that is not origin-form, or that normalisation would change, could reach another
/// route upstream than the one matched here; a control character (raw or encoded) is in no
/// legitimate path and is how log and header injection start.
/// The target is checked as the client sent it: `GET api/x` parses into a `Uri` whose path is
/// `/`, which a catch-all route would otherwise forward as `GET /`. Absolute-form
/// (`GET http://host/x`) stays allowed, as RFC 9112 §3.2.2 asks of servers.
fn refuse_bad_path(req: &RequestHeader) -> Result<(), Answer> {
    let origin_form = req.raw_path().first() == Some(&b'/');
    let absolute_form = req.uri.scheme().is_some() && req.uri.authority().is_some();
    let path = req.uri.path();
    if !(origin_form || absolute_form)
        || !path.starts_with('/')
        || edge::has_dot_segments(path)
        || edge::has_encoded_control(path)
    {
        return Err(Answer::page(400, "The request path is not allowed."));
    }
    Ok(())
}

/// An embedded app must not register a service worker for the whole origin (any route).
fn refuse_root_service_worker(req: &RequestHeader) -> Result<(), Answer> {
    if !crate::embed::refuse_root_service_worker(req.uri.path(), &req.headers) {
        return Ok(());
    }
    let mut resp =
        LocalResponse::text(service_worker::REFUSED_STATUS, service_worker::REFUSED_BODY);
    resp.headers[0].1 = HeaderValue::from_static("text/plain; charset=utf-8");
    Err(Answer::Local(resp))
}

/// Internal services (ping, metrics, API) are answered here, without middlewares.
fn serve_internal(router: &CompiledRouter) -> Result<(), Answer> {
    match &*router.service {
        Service::Internal(internal) => Err(Answer::Internal(*internal)),
        Service::LoadBalancer(_) => Ok(()),
    }
}

/// Chooses the first server to try; retries move on in `fail_to_connect`.
fn pick_server(router: &CompiledRouter, ctx: &mut RequestCtx) -> Result<(), Answer> {
    let Service::LoadBalancer(lb) = &*router.service else {
        return Ok(());
    };
    match lb.pick() {
        Some(i) if lb.servers.get(i).is_some_and(|s| !s.addrs.is_empty()) => {
            ctx.server = i;
            Ok(())
        }
        Some(_) => Err(Answer::page(
            502,
            "The upstream host name cannot be resolved.",
        )),
        None => Err(Answer::page(
            502,
            "No healthy upstream server is available.",
        )),
    }
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

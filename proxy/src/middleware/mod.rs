//! Middlewares, one file per kind, all behind one interface, [`Middleware`]. Each is compiled
//! once from its config into a [`Compiled`]; a router holds the flattened chain. Per request the
//! proxy runs the chain's request hooks in order, the response-header hooks last to first (as
//! Traefik nests them: the first listed sees the response last) and the body hooks while a
//! middleware rewrites the body. What a middleware carries from one phase to a later one lives in
//! the request's [`MiddlewareCtx`].

pub(crate) mod add_prefix;
pub(crate) mod chain;
pub(crate) mod embed;
pub(crate) mod forward_auth;
pub(crate) mod headers;
pub(crate) mod redirect_regex;
pub(crate) mod redirect_scheme;
pub(crate) mod replace_path;
pub(crate) mod replace_path_regex;
pub(crate) mod shell_cookies;
pub(crate) mod strip_prefix;
pub(crate) mod strip_prefix_regex;

use std::borrow::Cow;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;

use crate::config::dynamic::MiddlewareConfig;
use crate::edge::ForwardedOverrides;

/// The interface every middleware implements. Only the request hook may wait (forwardAuth asks
/// the auth server); the response hooks run inside Pingora's synchronous filters.
pub trait Middleware {
    /// Runs before the request goes upstream, in chain order. A middleware without I/O returns a
    /// future that is ready on its first poll; one that only edits responses keeps this default.
    fn request(
        &self,
        _st: &mut RequestState<'_>,
        _cx: &RequestCx<'_>,
        _mcx: &mut MiddlewareCtx,
    ) -> impl Future<Output = Outcome> + Send {
        std::future::ready(Outcome::Continue)
    }

    /// Edits the upstream response's head, last middleware first.
    fn response_headers(
        &self,
        _resp: &mut http::response::Parts,
        _cx: &ResponseCx<'_>,
        _mcx: &mut MiddlewareCtx,
    ) {
    }

    /// Rewrites a chunk of the response body; runs only while [`MiddlewareCtx::rewrites_body`].
    fn response_body(
        &self,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        _mcx: &mut MiddlewareCtx,
    ) -> pingora::Result<()> {
        Ok(())
    }

    /// Whether `response_headers` edits every response, decided when the table is built so
    /// the response phase of other routers does nothing. A middleware that only sometimes has
    /// work says so per request with [`MiddlewareCtx::response_pending`].
    fn edits_response(&self) -> bool {
        false
    }

    /// Records the proxy's forwarding headers this middleware sets or removes itself.
    fn note_overrides(&self, _overrides: &mut ForwardedOverrides) {}
}

/// What a request hook can read besides the [`RequestState`] it edits.
pub struct RequestCx<'a> {
    /// The client's request as received (untrusted forwarding headers already removed).
    pub original: &'a RequestHeader,
    pub client_ip: Option<IpAddr>,
    /// Connection pool for middlewares that call other servers.
    pub connector: &'a Connector,
}

/// What a response hook can read besides the response it edits.
pub struct ResponseCx<'a> {
    /// The client's request (method and headers decide how a body may be rewritten).
    pub request: &'a RequestHeader,
    /// `http` or `https`, as the client reached us.
    pub scheme: &'static str,
    /// Host header as the client sent it.
    pub host: &'a str,
    /// `host:port` of the upstream server that answered, when there is one.
    pub upstream: Option<&'a str>,
    /// An HTTP/2 client has no `Transfer-Encoding`; a body of unknown length needs none there.
    pub downstream_h2: bool,
}

/// Per-request state the chain carries from the request phase to the response phases. Empty
/// (and allocation-free) for a request whose middlewares keep nothing.
#[derive(Default)]
pub struct MiddlewareCtx {
    /// `Set-Cookie` values a forwardAuth answer asked to add to the final response.
    auth_cookies: Vec<HeaderValue>,
    /// The body rewriter of the `embed` middleware that planned one, with that middleware's
    /// address: a chain with two `embed`s must not run the rewriter twice.
    body: Option<(usize, crate::embed::BodyRewriter)>,
}

impl MiddlewareCtx {
    /// Whether a request hook left work for the response-header hooks of this request.
    pub fn response_pending(&self) -> bool {
        !self.auth_cookies.is_empty()
    }

    /// Whether a middleware rewrites this response's body.
    pub fn rewrites_body(&self) -> bool {
        self.body.is_some()
    }
}

/// Runs the request hooks in chain order, stopping at the first that answers or fails.
pub async fn run_request(
    chain: &[Arc<Compiled>],
    st: &mut RequestState<'_>,
    cx: &RequestCx<'_>,
    mcx: &mut MiddlewareCtx,
) -> Outcome {
    for m in chain {
        match m.request(st, cx, mcx).await {
            Outcome::Continue => {}
            done => return done,
        }
    }
    Outcome::Continue
}

/// Runs the response-header hooks, last middleware first.
pub fn run_response_headers(
    chain: &[Arc<Compiled>],
    resp: &mut http::response::Parts,
    cx: &ResponseCx<'_>,
    mcx: &mut MiddlewareCtx,
) {
    for m in chain.iter().rev() {
        m.response_headers(resp, cx, mcx);
    }
}

/// Runs the body hooks, last middleware first (the order their header hooks ran).
pub fn run_response_body(
    chain: &[Arc<Compiled>],
    body: &mut Option<Bytes>,
    end_of_stream: bool,
    mcx: &mut MiddlewareCtx,
) -> pingora::Result<()> {
    for m in chain.iter().rev() {
        m.response_body(body, end_of_stream, mcx)?;
    }
    Ok(())
}

/// Polls a request hook once: its result when it needs no I/O, `None` when it would wait.
/// For callers without a runtime (benchmarks, tests).
pub fn ready<F: Future>(hook: F) -> Option<F::Output> {
    let hook = std::pin::pin!(hook);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match hook.poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

/// A header edit, applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderOp {
    Set(HeaderName, HeaderValue),
    Append(HeaderName, HeaderValue),
    Remove(HeaderName),
}

/// Applies `ops` in order. The proxy edits Pingora's headers as plain maps (see
/// `header_edit`), so this is the one place header edits happen.
pub fn apply_ops(headers: &mut http::HeaderMap, ops: &[HeaderOp]) {
    for op in ops {
        match op {
            HeaderOp::Set(n, v) => {
                headers.insert(n.clone(), v.clone());
            }
            HeaderOp::Append(n, v) => {
                headers.append(n.clone(), v.clone());
            }
            HeaderOp::Remove(n) => {
                headers.remove(n);
            }
        }
    }
}

/// The request as middlewares see and change it. It borrows from the client's request, so
/// a chain that leaves the path alone, or only cuts a prefix off it, copies nothing.
#[derive(Debug, Clone)]
pub struct RequestState<'a> {
    pub method: &'a str,
    /// `http` or `https`, as the client reached us.
    pub scheme: &'static str,
    /// Host header as sent (with port, if any).
    pub host: &'a str,
    /// Current path (raw, percent-encoding preserved).
    pub path: Cow<'a, str>,
    pub query: Option<&'a str>,
    /// Edits for the upstream request, in order.
    pub header_ops: Vec<HeaderOp>,
}

impl RequestState<'_> {
    pub fn request_uri(&self) -> String {
        match self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone().into_owned(),
        }
    }
}

/// A response produced by the proxy itself (redirects, errors, auth answers).
#[derive(Debug, Clone)]
pub struct LocalResponse {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl LocalResponse {
    pub fn text(status: u16, body: &str) -> Self {
        LocalResponse {
            status,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }
}

/// What a request hook decided.
#[derive(Debug)]
pub enum Outcome {
    Continue,
    /// Answer the client with this response instead of going upstream.
    Respond(LocalResponse),
    /// The middleware could not decide; the client gets a 500 page (never the upstream: a
    /// failed check must not let the request through).
    Fail {
        /// For the log.
        error: String,
        /// For the client's error page.
        detail: &'static str,
    },
}

/// A compiled middleware (chains are flattened away at compile time). Implements
/// [`Middleware`] by forwarding to the kind: static dispatch, no boxed futures.
#[derive(Debug)]
pub enum Compiled {
    StripPrefix(strip_prefix::StripPrefix),
    StripPrefixRegex(strip_prefix_regex::StripPrefixRegex),
    AddPrefix(add_prefix::AddPrefix),
    ReplacePath(replace_path::ReplacePath),
    ReplacePathRegex(replace_path_regex::ReplacePathRegex),
    RedirectRegex(redirect_regex::RedirectRegex),
    RedirectScheme(redirect_scheme::RedirectScheme),
    Headers(headers::Headers),
    ForwardAuth(forward_auth::ForwardAuth),
    Embed(embed::Embed),
    ShellCookies(shell_cookies::ShellCookies),
}

/// Calls `$call` on the middleware inside whichever variant `$self` is.
macro_rules! each_kind {
    ($self:expr, $m:ident => $call:expr) => {
        match $self {
            Compiled::StripPrefix($m) => $call,
            Compiled::StripPrefixRegex($m) => $call,
            Compiled::AddPrefix($m) => $call,
            Compiled::ReplacePath($m) => $call,
            Compiled::ReplacePathRegex($m) => $call,
            Compiled::RedirectRegex($m) => $call,
            Compiled::RedirectScheme($m) => $call,
            Compiled::Headers($m) => $call,
            Compiled::ForwardAuth($m) => $call,
            Compiled::Embed($m) => $call,
            Compiled::ShellCookies($m) => $call,
        }
    };
}

impl Middleware for Compiled {
    async fn request(
        &self,
        st: &mut RequestState<'_>,
        cx: &RequestCx<'_>,
        mcx: &mut MiddlewareCtx,
    ) -> Outcome {
        each_kind!(self, m => m.request(st, cx, mcx).await)
    }

    fn response_headers(
        &self,
        resp: &mut http::response::Parts,
        cx: &ResponseCx<'_>,
        mcx: &mut MiddlewareCtx,
    ) {
        each_kind!(self, m => m.response_headers(resp, cx, mcx))
    }

    fn response_body(
        &self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        mcx: &mut MiddlewareCtx,
    ) -> pingora::Result<()> {
        each_kind!(self, m => m.response_body(body, end_of_stream, mcx))
    }

    fn edits_response(&self) -> bool {
        each_kind!(self, m => m.edits_response())
    }

    fn note_overrides(&self, overrides: &mut ForwardedOverrides) {
        each_kind!(self, m => m.note_overrides(overrides))
    }
}

/// Implements [`Middleware`] for a kind that only rewrites the request, without I/O, through
/// its `apply(&self, &mut RequestState) -> Outcome`.
macro_rules! request_only {
    ($($kind:ty),* $(,)?) => {$(
        impl Middleware for $kind {
            async fn request(
                &self,
                st: &mut RequestState<'_>,
                _cx: &RequestCx<'_>,
                _mcx: &mut MiddlewareCtx,
            ) -> Outcome {
                self.apply(st)
            }
        }
    )*};
}

request_only!(
    strip_prefix::StripPrefix,
    strip_prefix_regex::StripPrefixRegex,
    add_prefix::AddPrefix,
    replace_path::ReplacePath,
    replace_path_regex::ReplacePathRegex,
    redirect_regex::RedirectRegex,
    redirect_scheme::RedirectScheme,
);

/// The kind of a middleware config, or an error when none or several are set.
pub fn single_kind(cfg: &MiddlewareConfig) -> Result<&'static str, String> {
    let kinds = cfg.kinds();
    match kinds.as_slice() {
        [one] => Ok(one),
        [] => Err("no middleware type given (e.g. stripPrefix, headers, chain)".into()),
        many => Err(format!(
            "several middleware types in one middleware ({}); define one per name",
            many.join(", ")
        )),
    }
}

/// Compiles a non-chain middleware. `chain` is resolved by the table builder.
pub fn compile(cfg: &MiddlewareConfig) -> Result<Compiled, String> {
    if let Some(c) = &cfg.strip_prefix {
        return strip_prefix::StripPrefix::new(c).map(Compiled::StripPrefix);
    }
    if let Some(c) = &cfg.strip_prefix_regex {
        return strip_prefix_regex::StripPrefixRegex::new(c).map(Compiled::StripPrefixRegex);
    }
    if let Some(c) = &cfg.add_prefix {
        return add_prefix::AddPrefix::new(c).map(Compiled::AddPrefix);
    }
    if let Some(c) = &cfg.replace_path {
        return replace_path::ReplacePath::new(c).map(Compiled::ReplacePath);
    }
    if let Some(c) = &cfg.replace_path_regex {
        return replace_path_regex::ReplacePathRegex::new(c).map(Compiled::ReplacePathRegex);
    }
    if let Some(c) = &cfg.redirect_regex {
        return redirect_regex::RedirectRegex::new(c).map(Compiled::RedirectRegex);
    }
    if let Some(c) = &cfg.redirect_scheme {
        return redirect_scheme::RedirectScheme::new(c).map(Compiled::RedirectScheme);
    }
    if let Some(c) = &cfg.headers {
        return headers::Headers::new(c).map(Compiled::Headers);
    }
    if let Some(c) = &cfg.forward_auth {
        return forward_auth::ForwardAuth::new(c).map(Compiled::ForwardAuth);
    }
    if let Some(c) = &cfg.embed {
        return embed::Embed::new(c).map(Compiled::Embed);
    }
    if let Some(c) = &cfg.shell_cookies {
        return shell_cookies::ShellCookies::new(c).map(Compiled::ShellCookies);
    }
    Err("chain must be resolved by the table builder".into())
}

/// Parses a header name from config, naming the offending key.
pub(crate) fn header_name(key: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(key.as_bytes())
        .map_err(|_| format!("{key:?} is not a valid header name"))
}

pub(crate) fn header_value(key: &str, value: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value)
        .map_err(|_| format!("{key}: {value:?} is not a valid header value"))
}

#[cfg(test)]
pub(crate) fn state<'a>(path: &'a str, query: Option<&'a str>) -> RequestState<'a> {
    RequestState {
        method: "GET",
        scheme: "http",
        host: "bloud.local",
        path: path.into(),
        query,
        header_ops: Vec::new(),
    }
}

/// Runs one middleware's request hook on a GET of `path?query`, as the proxy would, and
/// returns what it decided and the request as it leaves the hook. For the table tests.
#[cfg(test)]
pub(crate) fn run_hook<'a>(
    m: &impl Middleware,
    path: &'a str,
    query: Option<&'a str>,
) -> (Option<Outcome>, RequestState<'a>) {
    run_hook_on(m, state(path, query))
}

/// [`run_hook`] on a prepared request.
#[cfg(test)]
pub(crate) fn run_hook_on<'a>(
    m: &impl Middleware,
    mut st: RequestState<'a>,
) -> (Option<Outcome>, RequestState<'a>) {
    let original =
        RequestHeader::build(st.method, st.request_uri().as_bytes(), None).expect("request");
    let connector = Connector::new(None);
    let cx = RequestCx {
        original: &original,
        client_ip: None,
        connector: &connector,
    };
    let outcome = ready(m.request(&mut st, &cx, &mut MiddlewareCtx::default()));
    (outcome, st)
}

/// The `Location` of a redirect, the status of any other answer, for the table tests.
#[cfg(test)]
pub(crate) fn describe(outcome: &Option<Outcome>) -> String {
    match outcome {
        Some(Outcome::Continue) => "continue".into(),
        Some(Outcome::Respond(r)) => {
            match r.headers.iter().find(|(n, _)| n == http::header::LOCATION) {
                Some((_, v)) => format!("{} {}", r.status, v.to_str().unwrap_or("?")),
                None => r.status.to_string(),
            }
        }
        Some(Outcome::Fail { detail, .. }) => format!("fail: {detail}"),
        None => "pending".into(),
    }
}

//! Middlewares, one file per kind. Each is compiled once from its config; at request time the
//! path/header middlewares edit a [`RequestState`], and response-header middlewares return
//! header operations applied to the upstream response (last middleware first, as in Traefik).

pub mod add_prefix;
pub mod chain;
pub mod forward_auth;
pub mod headers;
pub mod redirect_regex;
pub mod redirect_scheme;
pub mod replace_path;
pub mod replace_path_regex;
pub mod strip_prefix;
pub mod strip_prefix_regex;

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use crate::config::dynamic::MiddlewareConfig;

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

/// What a request-phase middleware decided.
#[derive(Debug)]
pub enum Outcome {
    Continue,
    Respond(LocalResponse),
}

/// A compiled middleware (chains are flattened away at compile time).
#[derive(Debug)]
pub enum Middleware {
    StripPrefix(strip_prefix::StripPrefix),
    StripPrefixRegex(strip_prefix_regex::StripPrefixRegex),
    AddPrefix(add_prefix::AddPrefix),
    ReplacePath(replace_path::ReplacePath),
    ReplacePathRegex(replace_path_regex::ReplacePathRegex),
    RedirectRegex(redirect_regex::RedirectRegex),
    RedirectScheme(redirect_scheme::RedirectScheme),
    Headers(headers::Headers),
    /// Asynchronous: run by the proxy (it needs the network).
    ForwardAuth(forward_auth::ForwardAuth),
    /// Response rewriting for an embedded app; applied in the response phases.
    Embed(crate::embed::EmbedRewriter),
}

impl Middleware {
    /// Request phase; runs in chain order.
    pub fn on_request(&self, st: &mut RequestState) -> Outcome {
        match self {
            Middleware::StripPrefix(m) => m.apply(st),
            Middleware::StripPrefixRegex(m) => m.apply(st),
            Middleware::AddPrefix(m) => m.apply(st),
            Middleware::ReplacePath(m) => m.apply(st),
            Middleware::ReplacePathRegex(m) => m.apply(st),
            Middleware::RedirectRegex(m) => m.apply(st),
            Middleware::RedirectScheme(m) => m.apply(st),
            Middleware::Headers(m) => {
                st.header_ops.extend_from_slice(m.request_ops());
                Outcome::Continue
            }
            Middleware::ForwardAuth(_) | Middleware::Embed(_) => Outcome::Continue,
        }
    }

    /// Response-header edits of this middleware (applied last-to-first along the chain).
    pub fn response_ops(&self) -> &[HeaderOp] {
        match self {
            Middleware::Headers(m) => m.response_ops(),
            _ => &[],
        }
    }
}

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
pub fn compile(cfg: &MiddlewareConfig) -> Result<Middleware, String> {
    if let Some(c) = &cfg.strip_prefix {
        return strip_prefix::StripPrefix::new(c).map(Middleware::StripPrefix);
    }
    if let Some(c) = &cfg.strip_prefix_regex {
        return strip_prefix_regex::StripPrefixRegex::new(c).map(Middleware::StripPrefixRegex);
    }
    if let Some(c) = &cfg.add_prefix {
        return add_prefix::AddPrefix::new(c).map(Middleware::AddPrefix);
    }
    if let Some(c) = &cfg.replace_path {
        return replace_path::ReplacePath::new(c).map(Middleware::ReplacePath);
    }
    if let Some(c) = &cfg.replace_path_regex {
        return replace_path_regex::ReplacePathRegex::new(c).map(Middleware::ReplacePathRegex);
    }
    if let Some(c) = &cfg.redirect_regex {
        return redirect_regex::RedirectRegex::new(c).map(Middleware::RedirectRegex);
    }
    if let Some(c) = &cfg.redirect_scheme {
        return redirect_scheme::RedirectScheme::new(c).map(Middleware::RedirectScheme);
    }
    if let Some(c) = &cfg.headers {
        return headers::Headers::new(c).map(Middleware::Headers);
    }
    if let Some(c) = &cfg.forward_auth {
        return forward_auth::ForwardAuth::new(c).map(Middleware::ForwardAuth);
    }
    if let Some(c) = &cfg.embed {
        return c
            .compile()
            .map(Middleware::Embed)
            .map_err(|e| e.to_string());
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

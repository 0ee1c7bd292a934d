//! Server-side rewriting of embedded apps' responses; `middleware::embed` puts it in a chain.
//!
//! An app served under `/embed/<app>/` with its prefix stripped still writes root-absolute
//! URLs (`/login`, `/static/app.js`). This module prefixes them on the way out, so the
//! browser stays inside `/embed/<app>/` without depending on the service worker's state.
//! Everything here is plain functions over `&str`, [`bytes::Bytes`] and [`http::HeaderMap`]:
//! no Pingora types, no I/O, no async.
//!
//! # How a proxy calls it
//!
//! **Config load.** Deserialize the middleware's map into [`EmbedConfig`] (unknown keys are
//! errors) and [`EmbedConfig::compile`] it once into an [`EmbedRewriter`] (cheap to clone, an
//! `Arc` inside). Put it in the route table.
//!
//! **`request_filter`** (before routing to the upstream): if
//! [`refuse_root_service_worker`]`(path, req_headers)` answer [`service_worker::REFUSED_STATUS`]
//! with [`service_worker::REFUSED_BODY`] as `text/plain`. This check is global, not per route.
//!
//! **`response_filter`**, for responses of a route whose chain has an `embed` middleware:
//! 1. Build [`Origins`] once: `Origins::new(scheme, Some(public_host), Some(upstream_addr))`
//!    with the scheme and `Host` the browser used and the upstream's `host:port`.
//! 2. `rw.rewrite_response_headers(&mut resp_headers, &origins)`: `Location`,
//!    `Content-Location`, `Refresh`, `Link` (if `location`) and `Set-Cookie` (if
//!    `cookiePath`). Never call it for forward-auth responses: those come from Authentik.
//! 3. `if let Some(plan) = rw.plan_body(&method, &req_headers, status, &resp_headers)`:
//!    call `plan.apply_headers(&mut resp_headers)` (drops `Content-Length`, sets
//!    `Content-Encoding`, weakens `ETag`) and store `plan.start(&rw, &origins)` (a
//!    [`BodyRewriter`], `Send + Sync`) in the CTX. For HTTP/1.1 downstreams also set
//!    `Transfer-Encoding: chunked` (the length is unknown). No plan: the body streams as is.
//!
//! **`response_body_filter`** (only when the CTX holds a [`BodyRewriter`]): replace each
//! `body` chunk with `rewriter.write(&chunk)?`, and at `end_of_stream` append
//! `rewriter.finish()?`. Output appears as soon as input arrives; the rewriter holds at most
//! [`html::MAX_HELD`] bytes of unfinished markup plus a few bytes of an undecided URL. An
//! `Err` means the upstream's compressed body is corrupt: abort the response.
//!
//! The lower-level [`HtmlStream`] and [`CssStream`] (identity bodies) and the single-value
//! rewriters ([`EmbedRewriter::rewrite_url`], `rewrite_refresh`, `rewrite_link`,
//! `rewrite_set_cookie`, `rewrite_srcset`) are public for tests and other callers.
//!
//! # What is rewritten
//!
//! A target gets the prefix when it is root-absolute (`/x`), or an `http(s)` URL on the public
//! origin (kept absolute) or on the upstream's own address (moved to the public origin). It
//! stays when it is relative, `//host`, another host, `data:`, already under the prefix
//! (segment-exact: `/embed/app/x`, not `/embed/apple`), in `exclude`, or in Authentik's
//! namespace (`/outpost.goauthentik.io`, `/application/`, `/if/`, `/flows/`, `/-/`).

/// ASCII whitespace as the HTML, URL and CSS standards define it (TAB, LF, FF, CR, SPACE):
/// what browsers skip around attribute URLs, between srcset candidates and in CSS.
pub(crate) const fn is_ascii_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

pub(crate) mod config;
pub(crate) mod cookie;
pub(crate) mod csp;
pub(crate) mod css;
pub(crate) mod encoding;
pub(crate) mod html;
pub(crate) mod location;
pub(crate) mod service_worker;
pub mod shim;

pub use config::{EmbedConfig, EmbedConfigError, EmbedRewriter, InjectConfig};
pub use css::CssStream;
pub use encoding::{BodyKind, BodyPlan, BodyRewriter, Coding};
pub use html::HtmlStream;
pub use location::Origins;
pub use service_worker::refuse_root_service_worker;

/// A body that cannot be decoded or re-encoded; the response cannot continue.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embed: upstream body is not valid {coding} (Content-Encoding says so): {source}")]
    Decode {
        coding: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("embed: re-encoding the rewritten body as {coding} failed: {source}")]
    Encode {
        coding: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A decompression bomb, or a body too large to rewrite: the response is cut.
    #[error("embed: the upstream {coding} body decodes to more than {decoded} bytes from {received} received (limits: {max} bytes, {ratio}:1 past {floor} bytes); response cut")]
    TooLarge {
        coding: &'static str,
        decoded: u64,
        received: u64,
        max: u64,
        ratio: u64,
        floor: u64,
    },
}

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod shim_tests;

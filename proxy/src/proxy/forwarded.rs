//! The forwarding headers of the upstream request (docs/proxy.md "Edge policy").

use http::HeaderValue;
use pingora::proxy::Session;

use super::{EntryProxy, RequestCtx};
use crate::edge;
use crate::middleware::{apply_ops, HeaderOp};

impl EntryProxy {
    /// The upstream request's headers: the proxy's forwarding headers, then the
    /// middlewares' edits. Done once, on the client's request, which Pingora copies for
    /// each connection attempt: a retry on another server gets the same headers, and the
    /// copy carries no header spelling map (see `header_edit`). What depends on the chosen
    /// server (target base path, Host for passHostHeader=false) is set per attempt in
    /// `upstream_request_filter`.
    pub(super) fn set_upstream_headers(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
        overrides: edge::ForwardedOverrides,
        ops: &[HeaderOp],
    ) {
        crate::header_edit::edit_request(session.req_header_mut(), |parts| {
            let headers = &mut parts.headers;
            headers.reserve(6 + ops.len());
            self.set_forwarded_headers(headers, ctx, overrides);
            apply_ops(headers, ops);
        });
    }

    /// The headers every proxied request gets (docs/proxy.md "Edge policy"). Client-sent copies
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
            let proto = if self.tls { edge::HTTPS } else { edge::HTTP };
            headers.insert(edge::X_FORWARDED_PROTO, proto);
        }
        if !overrides.host && !keep(&edge::X_FORWARDED_HOST, headers) && !ctx.host.is_empty() {
            headers.insert(edge::X_FORWARDED_HOST, ctx.host.clone());
        }
        if !overrides.port && !keep(&edge::X_FORWARDED_PORT, headers) {
            let port = match edge::host_port(ctx.host()) {
                None if self.tls => Some(edge::PORT_443),
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
}

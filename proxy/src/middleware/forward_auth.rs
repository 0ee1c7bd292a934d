//! `forwardAuth` with Traefik's semantics: before the request goes on, ask an auth server
//! (Authentik's outpost) with the client's headers plus `X-Forwarded-Method/Proto/Host/Uri/Port/
//! For`. A 2xx lets the request through with the `authResponseHeaders` copied in (the client's
//! own copies are always deleted first, so they cannot be spoofed); anything else is returned to
//! the client as is (status, headers, body), with a relative `Location` resolved against the
//! auth server unless `preserveLocationHeader`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use regex::Regex;

use super::{
    header_name, HeaderOp, LocalResponse, Middleware, MiddlewareCtx, Outcome, RequestCx,
    RequestState, ResponseCx,
};
use crate::config::dynamic;
use crate::edge;

/// Traefik's client timeout for the auth call.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest auth response body relayed to the client when none is configured.
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 1 << 20;

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
];

#[derive(Debug)]
pub struct ForwardAuth {
    address: String,
    addrs: Vec<SocketAddr>,
    authority: String,
    path_and_query: String,
    trust_forward_header: bool,
    response_headers: Vec<HeaderName>,
    response_headers_regex: Option<Regex>,
    request_headers: Vec<HeaderName>,
    auth_cookies: Vec<String>,
    preserve_location_header: bool,
    preserve_request_method: bool,
    max_response_body: usize,
    signin_url: Option<String>,
}

/// Result of asking the auth server.
#[derive(Debug)]
pub enum Decision {
    /// Continue with these upstream request edits and these `Set-Cookie` values for the response.
    Allow {
        ops: Vec<HeaderOp>,
        cookies: Vec<HeaderValue>,
    },
    /// Answer the client with the auth server's response.
    Deny(LocalResponse),
}

impl ForwardAuth {
    pub fn new(cfg: &dynamic::ForwardAuth) -> Result<Self, String> {
        if cfg.forward_body {
            return Err("forwardAuth.forwardBody: not supported by bloud-proxy".into());
        }
        let rest = cfg.address.strip_prefix("http://").ok_or_else(|| {
            format!(
                "forwardAuth.address: {:?} must be an http:// URL (this build has no TLS)",
                cfg.address
            )
        })?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        let with_port = if edge::host_port(authority).is_some() {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let mut addrs: Vec<SocketAddr> = match with_port.to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => {
                tracing::warn!(address = %cfg.address, error = %e, "forwardAuth: cannot resolve the auth server; requests get 502");
                Vec::new()
            }
        };
        addrs.sort_by_key(|a| !a.is_ipv4());
        let names = |list: &[String], key: &str| {
            list.iter()
                .map(|n| header_name(n).map_err(|e| format!("forwardAuth.{key}: {e}")))
                .collect::<Result<Vec<_>, _>>()
        };
        let response_headers_regex = cfg
            .auth_response_headers_regex
            .as_deref()
            .map(|r| {
                Regex::new(&format!("(?i){r}"))
                    .map_err(|e| format!("forwardAuth.authResponseHeadersRegex {r:?}: {e}"))
            })
            .transpose()?;
        Ok(ForwardAuth {
            address: cfg.address.clone(),
            addrs,
            authority: authority.to_string(),
            path_and_query: path,
            trust_forward_header: cfg.trust_forward_header,
            response_headers: names(&cfg.auth_response_headers, "authResponseHeaders")?,
            response_headers_regex,
            request_headers: names(&cfg.auth_request_headers, "authRequestHeaders")?,
            auth_cookies: cfg.add_auth_cookies_to_response.clone(),
            preserve_location_header: cfg.preserve_location_header,
            preserve_request_method: cfg.preserve_request_method,
            max_response_body: cfg
                .max_response_body_size
                .filter(|n| *n >= 0)
                .map(|n| n as usize)
                .unwrap_or(DEFAULT_MAX_RESPONSE_BODY),
            signin_url: cfg.auth_signin_url.clone(),
        })
    }

    /// Builds the request sent to the auth server.
    pub fn auth_request(
        &self,
        original: &RequestHeader,
        st: &RequestState,
        client_ip: Option<IpAddr>,
    ) -> Result<RequestHeader, String> {
        let method = if self.preserve_request_method {
            original.method.as_str()
        } else {
            "GET"
        };
        let mut req = RequestHeader::build(method, self.path_and_query.as_bytes(), None)
            .map_err(|e| format!("forwardAuth request: {e}"))?;
        let nominated: Vec<String> = original
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        for (name, value) in original.headers.iter() {
            let n = name.as_str();
            if HOP_BY_HOP.contains(&n)
                || nominated.iter().any(|x| x == n)
                || name == http::header::HOST
                || name == http::header::CONTENT_LENGTH
            {
                continue;
            }
            if !self.request_headers.is_empty() && !self.request_headers.contains(name) {
                continue;
            }
            let _ = req.append_header(name.clone(), value.clone());
        }
        let _ = req.insert_header(http::header::HOST, self.authority.as_str());
        let keep = |n: &str| self.trust_forward_header && original.headers.contains_key(n);
        let mut set = |n: &'static str, v: &str| {
            if !keep(n) {
                if let Ok(v) = HeaderValue::from_str(v) {
                    let _ = req.insert_header(n, v);
                }
            }
        };
        set("x-forwarded-method", original.method.as_str());
        set("x-forwarded-proto", st.scheme);
        set("x-forwarded-host", st.host);
        // The URI the client asked for, even when a stripPrefix listed before this middleware
        // already changed `st` (the auth server decides on the public `/embed/<app>/…` path).
        let uri = original
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_else(|| st.request_uri());
        set("x-forwarded-uri", &uri);
        set("x-forwarded-port", edge::host_port(st.host).unwrap_or("80"));
        if let Some(ip) = client_ip {
            let xff = match original
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
            {
                Some(prev) if self.trust_forward_header => format!("{prev}, {ip}"),
                _ => ip.to_string(),
            };
            if let Ok(v) = HeaderValue::from_str(&xff) {
                let _ = req.insert_header("x-forwarded-for", v);
            }
        }
        Ok(req)
    }

    /// Asks the auth server and decides. Network failures are errors (the caller answers 500
    /// like Traefik does, never letting the request through).
    pub async fn check(
        &self,
        connector: &Connector,
        original: &RequestHeader,
        st: &RequestState<'_>,
        client_ip: Option<IpAddr>,
    ) -> Result<Decision, String> {
        let addr = *self
            .addrs
            .first()
            .ok_or_else(|| format!("forwardAuth: cannot resolve {}", self.address))?;
        let req = self.auth_request(original, st, client_ip)?;
        let call = async {
            let mut peer = HttpPeer::new(addr, false, String::new());
            peer.options.connection_timeout = Some(Duration::from_secs(5));
            peer.options.read_timeout = Some(AUTH_TIMEOUT);
            let (mut session, _) = connector
                .get_http_session(&peer)
                .await
                .map_err(|e| format!("forwardAuth: cannot connect to {}: {e}", self.address))?;
            session
                .write_request_header(Box::new(req))
                .await
                .map_err(|e| format!("forwardAuth: sending to {}: {e}", self.address))?;
            session
                .finish_request_body()
                .await
                .map_err(|e| format!("forwardAuth: sending to {}: {e}", self.address))?;
            session
                .read_response_header()
                .await
                .map_err(|e| format!("forwardAuth: reading from {}: {e}", self.address))?;
            let head = session
                .response_header()
                .cloned()
                .ok_or_else(|| format!("forwardAuth: no response from {}", self.address))?;
            let mut body = BytesMut::new();
            let mut complete = true;
            loop {
                match session.read_response_body().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > self.max_response_body {
                            complete = false;
                            break;
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Err(format!("forwardAuth: reading from {}: {e}", self.address))
                    }
                }
            }
            if complete {
                connector
                    .release_http_session(session, &peer, Some(Duration::from_secs(60)))
                    .await;
            }
            if !complete {
                return Err(format!(
                    "forwardAuth: response body from {} is larger than {} bytes",
                    self.address, self.max_response_body
                ));
            }
            Ok((head, body.freeze()))
        };
        let (head, body) = tokio::time::timeout(AUTH_TIMEOUT, call)
            .await
            .map_err(|_| format!("forwardAuth: {} did not answer in time", self.address))??;
        Ok(self.decide(&head.status, &head.headers, body))
    }

    /// Turns the auth server's answer into a decision (pure; separated for tests).
    pub fn decide(
        &self,
        status: &http::StatusCode,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> Decision {
        if status.is_success() {
            let mut ops = Vec::new();
            for name in &self.response_headers {
                ops.push(HeaderOp::Remove(name.clone()));
                for v in headers.get_all(name) {
                    ops.push(HeaderOp::Append(name.clone(), v.clone()));
                }
            }
            if let Some(re) = &self.response_headers_regex {
                for name in headers.keys() {
                    if re.is_match(name.as_str()) {
                        ops.push(HeaderOp::Remove(name.clone()));
                        for v in headers.get_all(name) {
                            ops.push(HeaderOp::Append(name.clone(), v.clone()));
                        }
                    }
                }
            }
            let cookies = headers
                .get_all(http::header::SET_COOKIE)
                .iter()
                .filter(|v| {
                    let name = v
                        .to_str()
                        .ok()
                        .and_then(|s| s.split('=').next())
                        .map(str::trim)
                        .unwrap_or("");
                    self.auth_cookies.iter().any(|c| c == name)
                })
                .cloned()
                .collect();
            return Decision::Allow { ops, cookies };
        }
        if status.as_u16() == 401 {
            if let Some(url) = &self.signin_url {
                return Decision::Deny(super::redirect_regex::redirect(url, "GET", false));
            }
        }
        let mut resp = LocalResponse {
            status: status.as_u16(),
            headers: Vec::new(),
            body,
        };
        for (name, value) in headers {
            if HOP_BY_HOP.contains(&name.as_str()) || name == http::header::CONTENT_LENGTH {
                continue;
            }
            let mut value = value.clone();
            if name == http::header::LOCATION && !self.preserve_location_header {
                if let Some(abs) = value.to_str().ok().and_then(|l| self.resolve(l)) {
                    if let Ok(v) = HeaderValue::from_str(&abs) {
                        value = v;
                    }
                }
            }
            resp.headers.push((name.clone(), value));
        }
        Decision::Deny(resp)
    }

    /// Resolves a relative Location against the auth address (Go's `Response.Location`).
    fn resolve(&self, location: &str) -> Option<String> {
        if location.contains("://") || location.starts_with("//") {
            return None;
        }
        let origin = format!("http://{}", self.authority);
        if location.starts_with('/') {
            return Some(format!("{origin}{location}"));
        }
        let path = self.path_and_query.split('?').next().unwrap_or("/");
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        Some(format!("{origin}{dir}{location}"))
    }
}

impl Middleware for ForwardAuth {
    async fn request(
        &self,
        st: &mut RequestState<'_>,
        cx: &RequestCx<'_>,
        mcx: &mut MiddlewareCtx,
    ) -> Outcome {
        match self
            .check(cx.connector, cx.original, st, cx.client_ip)
            .await
        {
            Ok(Decision::Allow { ops, cookies }) => {
                st.header_ops.extend(ops);
                mcx.auth_cookies.extend(cookies);
                Outcome::Continue
            }
            Ok(Decision::Deny(resp)) => Outcome::Respond(resp),
            Err(error) => Outcome::Fail {
                error,
                detail: "The authentication server could not be reached.",
            },
        }
    }

    /// The auth server's cookies go on whatever response the client finally gets.
    fn response_headers(
        &self,
        resp: &mut http::response::Parts,
        _cx: &ResponseCx<'_>,
        mcx: &mut MiddlewareCtx,
    ) {
        for cookie in std::mem::take(&mut mcx.auth_cookies) {
            resp.headers.append(http::header::SET_COOKIE, cookie);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::state;

    fn fa(extra: impl FnOnce(&mut dynamic::ForwardAuth)) -> ForwardAuth {
        let mut cfg = dynamic::ForwardAuth {
            address: "http://127.0.0.1:9001/outpost.goauthentik.io/auth/traefik".into(),
            trust_forward_header: true,
            auth_response_headers: vec!["X-authentik-username".into(), "X-authentik-groups".into()],
            ..Default::default()
        };
        extra(&mut cfg);
        ForwardAuth::new(&cfg).expect("valid")
    }

    #[test]
    fn auth_request_carries_original_request_facts() {
        let f = fa(|_| {});
        let mut orig = RequestHeader::build("POST", b"/embed/radarr/api?x=1", None).expect("req");
        orig.insert_header("host", "bloud.local").expect("h");
        orig.insert_header("cookie", "authentik_proxy=abc")
            .expect("h");
        orig.insert_header("connection", "keep-alive, x-secret")
            .expect("h");
        orig.insert_header("x-secret", "1").expect("h");
        orig.insert_header("content-length", "5").expect("h");
        let st = RequestState {
            method: "POST",
            ..state("/embed/radarr/api", Some("x=1"))
        };
        let req = f
            .auth_request(&orig, &st, "10.0.0.9".parse().ok())
            .expect("build");
        assert_eq!(req.method, "GET");
        assert_eq!(req.uri.path(), "/outpost.goauthentik.io/auth/traefik");
        assert_eq!(req.headers["host"], "127.0.0.1:9001");
        assert_eq!(req.headers["cookie"], "authentik_proxy=abc");
        assert!(
            req.headers.get("x-secret").is_none(),
            "connection-nominated header dropped"
        );
        assert!(req.headers.get("content-length").is_none());
        assert_eq!(req.headers["x-forwarded-method"], "POST");
        assert_eq!(req.headers["x-forwarded-uri"], "/embed/radarr/api?x=1");
        assert_eq!(req.headers["x-forwarded-host"], "bloud.local");
        assert_eq!(req.headers["x-forwarded-proto"], "http");
        assert_eq!(req.headers["x-forwarded-for"], "10.0.0.9");
    }

    #[test]
    fn allow_copies_listed_headers_and_always_deletes_client_copies() {
        let f = fa(|c| c.add_auth_cookies_to_response = vec!["sess".into()]);
        let mut h = http::HeaderMap::new();
        h.insert("x-authentik-username", HeaderValue::from_static("alice"));
        h.insert("x-other", HeaderValue::from_static("no"));
        h.append("set-cookie", HeaderValue::from_static("sess=1; Path=/"));
        h.append("set-cookie", HeaderValue::from_static("other=2"));
        match f.decide(&http::StatusCode::OK, &h, Bytes::new()) {
            Decision::Allow { ops, cookies } => {
                let user = HeaderName::from_static("x-authentik-username");
                let groups = HeaderName::from_static("x-authentik-groups");
                assert_eq!(
                    ops,
                    vec![
                        HeaderOp::Remove(user.clone()),
                        HeaderOp::Append(user, HeaderValue::from_static("alice")),
                        HeaderOp::Remove(groups),
                    ]
                );
                assert_eq!(cookies, vec![HeaderValue::from_static("sess=1; Path=/")]);
            }
            Decision::Deny(_) => panic!("2xx must allow"),
        }
    }

    #[test]
    fn deny_relays_answer_and_resolves_relative_location() {
        let f = fa(|_| {});
        let mut h = http::HeaderMap::new();
        h.insert(
            "location",
            HeaderValue::from_static("/application/o/authorize/?x"),
        );
        h.insert(
            "set-cookie",
            HeaderValue::from_static("authentik_proxy_x=1"),
        );
        h.insert("connection", HeaderValue::from_static("close"));
        match f.decide(&http::StatusCode::FOUND, &h, Bytes::from_static(b"go")) {
            Decision::Deny(r) => {
                assert_eq!(r.status, 302);
                let get = |n: &str| {
                    r.headers
                        .iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.clone())
                };
                assert_eq!(
                    get("location").expect("location"),
                    "http://127.0.0.1:9001/application/o/authorize/?x"
                );
                assert!(get("set-cookie").is_some());
                assert!(get("connection").is_none());
                assert_eq!(r.body, Bytes::from_static(b"go"));
            }
            Decision::Allow { .. } => panic!("302 must deny"),
        }
        let keep = fa(|c| c.preserve_location_header = true);
        match keep.decide(&http::StatusCode::FOUND, &h, Bytes::new()) {
            Decision::Deny(r) => assert!(r
                .headers
                .iter()
                .any(|(k, v)| k == "location" && v == "/application/o/authorize/?x")),
            Decision::Allow { .. } => panic!("must deny"),
        }
    }

    #[test]
    fn config_errors() {
        let bad = dynamic::ForwardAuth {
            address: "https://x/auth".into(),
            ..Default::default()
        };
        assert!(ForwardAuth::new(&bad).is_err());
        let body = dynamic::ForwardAuth {
            address: "http://x/a".into(),
            forward_body: true,
            ..Default::default()
        };
        assert!(ForwardAuth::new(&body).is_err());
    }

    #[test]
    fn decide_table() {
        let signin = fa(|c| c.auth_signin_url = Some("http://bloud.local/signin".into()));
        let plain = fa(|_| {});
        // (middleware, auth status, auth Location, decision)
        let cases = [
            (&plain, 200, None, "allow"),
            (&plain, 204, None, "allow"),
            (
                &plain,
                302,
                Some("/flow"),
                "deny 302 http://127.0.0.1:9001/flow",
            ),
            (
                &plain,
                302,
                Some("http://sso.local/x"),
                "deny 302 http://sso.local/x",
            ),
            (&plain, 401, None, "deny 401"),
            (&signin, 401, None, "deny 302 http://bloud.local/signin"),
            (&plain, 403, None, "deny 403"),
        ];
        for (m, status, location, want) in cases {
            let mut h = http::HeaderMap::new();
            if let Some(l) = location {
                h.insert("location", HeaderValue::from_static(l));
            }
            let status = http::StatusCode::from_u16(status).expect("status");
            let got = match m.decide(&status, &h, Bytes::new()) {
                Decision::Allow { .. } => "allow".to_string(),
                Decision::Deny(r) => match r.headers.iter().find(|(n, _)| n == "location") {
                    Some((_, l)) => format!("deny {} {}", r.status, l.to_str().unwrap_or("?")),
                    None => format!("deny {}", r.status),
                },
            };
            assert_eq!(got, want, "{status} {location:?}");
        }
    }

    #[tokio::test]
    async fn unreachable_auth_server_fails_closed() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let m = ForwardAuth::new(&dynamic::ForwardAuth {
            address: "http://127.0.0.1:1/auth".into(),
            ..Default::default()
        })
        .expect("valid");
        let original = RequestHeader::build("GET", b"/app", None).expect("req");
        let connector = Connector::new(None);
        let cx = RequestCx {
            original: &original,
            client_ip: None,
            connector: &connector,
        };
        let mut st = state("/app", None);
        let outcome = m.request(&mut st, &cx, &mut MiddlewareCtx::default()).await;
        assert!(
            matches!(outcome, Outcome::Fail { .. }),
            "{}",
            crate::middleware::describe(&Some(outcome))
        );
    }

    #[test]
    fn allowed_cookies_reach_the_response_once() {
        let m = fa(|_| {});
        let mut mcx = MiddlewareCtx::default();
        mcx.auth_cookies
            .push(HeaderValue::from_static("sess=1; Path=/"));
        assert!(mcx.response_pending());
        let req = RequestHeader::build("GET", b"/", None).expect("req");
        let cx = ResponseCx {
            request: &req,
            scheme: "http",
            host: "bloud.local",
            upstream: None,
            downstream_h2: false,
        };
        let (mut parts, ()) = http::Response::new(()).into_parts();
        m.response_headers(&mut parts, &cx, &mut mcx);
        m.response_headers(&mut parts, &cx, &mut mcx);
        let cookies: Vec<_> = parts.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, vec!["sess=1; Path=/"]);
        assert!(!mcx.response_pending());
    }
}

//! `GET /api/oidc/authorize`: the authorization code flow's first leg. The user's shell session
//! is the login (none: the shell's login page, which comes back here); catalog apps need no
//! consent. A request whose client or `redirect_uri` cannot be trusted gets an error page, never
//! a redirect; every other error goes back to the client's `redirect_uri` (RFC 6749 4.1.2.1).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::claims::has_scope;
use super::*;
use crate::db::{random_hex, token_digest, CodeGrant};

/// Parses a query; a repeated parameter is refused (RFC 6749 3.1).
pub(crate) fn parse_params(raw: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("`{k}` given more than once"));
        }
    }
    Ok(out)
}

fn page(status: StatusCode, message: &str) -> Response {
    no_store(
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("Sign-in request refused: {message}\n"),
        )
            .into_response(),
    )
}

fn redirect(location: &str) -> Response {
    let mut resp = no_store(StatusCode::FOUND.into_response());
    match HeaderValue::from_str(location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
            resp
        }
        Err(_) => page(StatusCode::BAD_REQUEST, "the redirect address is invalid"),
    }
}

pub async fn authorize(
    State(p): State<Arc<Provider>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let raw = raw.unwrap_or_default();
    let params = match parse_params(raw.as_bytes()) {
        Ok(p) => p,
        Err(m) => return page(StatusCode::BAD_REQUEST, &m),
    };
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());

    // Who asks and where the answer goes: checked before anything is sent there.
    let Some(client_id) = get("client_id") else {
        return page(StatusCode::BAD_REQUEST, "client_id is missing");
    };
    let client = match p.db().oidc_client(client_id) {
        Ok(Some(c)) => c,
        Ok(None) => return page(StatusCode::BAD_REQUEST, "unknown client_id"),
        Err(e) => return server_error(e),
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return page(StatusCode::BAD_REQUEST, "redirect_uri is missing");
    };
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return page(
            StatusCode::BAD_REQUEST,
            "redirect_uri is not registered for this client",
        );
    }
    let state = get("state");
    let back = |error: &str, description: &str| {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        pairs.push(("iss", p.issuer.as_str()));
        redirect(&with_query(redirect_uri, &pairs))
    };

    if get("response_type") != Some("code") {
        return back(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    let scope = get("scope").unwrap_or("");
    if !has_scope(scope, "openid") {
        return back("invalid_scope", "the scope must include openid");
    }
    let Some(challenge) = get("code_challenge") else {
        return back(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        );
    };
    if get("code_challenge_method") != Some("S256") {
        return back(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)",
        );
    }
    if !pkce::valid_challenge(challenge) {
        return back(
            "invalid_request",
            "code_challenge must be a base64url SHA-256",
        );
    }
    if params.contains_key("request") || params.contains_key("request_uri") {
        return back("request_not_supported", "request objects are not supported");
    }

    // The login: the shell's session.
    let session = crate::auth::session_token(&headers);
    let user = match &session {
        Some(token) => match p.db().session_user(token) {
            Ok(u) => u,
            Err(e) => return server_error(e),
        },
        None => None,
    };
    let (Some(user), Some(token)) = (user, session) else {
        if get("prompt").is_some_and(|v| v.split(' ').any(|x| x == "none")) {
            return back("login_required", "no Bloud session");
        }
        let here = format!("{AUTHORIZE_PATH}?{raw}");
        return redirect(&with_query("/login", &[("next", &here)]));
    };

    match super::clients::may_sign_in(p.db(), &client, &user) {
        Ok(true) => {}
        Ok(false) => {
            return back(
                "access_denied",
                "this Bloud account may not open this app; ask an admin",
            )
        }
        Err(e) => return server_error(e),
    }

    let code = random_hex(32);
    let grant = CodeGrant {
        client_id: client.client_id.clone(),
        session_id: token_digest(&token),
        user_id: user.id.clone(),
        redirect_uri: redirect_uri.to_string(),
        code_challenge: challenge.to_string(),
        nonce: get("nonce").map(str::to_string),
        scope: scope.to_string(),
        expires_at: p.clock.now() + CODE_TTL.as_secs() as i64,
    };
    if let Err(e) = p.db().insert_oidc_code(&token_digest(&code), &grant) {
        return server_error(e);
    }
    tracing::info!(client = %client.client_id, user = %user.username, "OIDC authorization code issued");
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", p.issuer.as_str()));
    redirect(&with_query(redirect_uri, &pairs))
}

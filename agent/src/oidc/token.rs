//! `POST /api/oidc/token`: codes and refresh tokens for tokens. Clients authenticate with
//! `client_secret_basic` or `client_secret_post`; the secret's digest is compared in constant
//! time. Codes are single-use (a replay revokes what the first use got) and live 60 s; refresh
//! tokens are rotated (a replay of a spent one revokes its whole family).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::authorize::parse_params;
use super::claims::user_claims;
use super::*;
use crate::db::{random_hex, token_digest, NewToken, OidcClient, Taken, User, ACCESS, REFRESH};

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn invalid_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

/// 401 `invalid_client`; a client that tried Basic is told to use it again (RFC 6749 5.2).
fn invalid_client(basic: bool) -> Response {
    let mut resp = oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    );
    if basic {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"bloud\""),
        );
    }
    resp
}

/// One form-encoded value (`client_secret_basic` encodes id and secret so, RFC 6749 2.3.1).
fn form_decode(s: &str) -> String {
    form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `(client_id, secret)` from `Authorization: Basic`, if sent; `Err` when it is malformed.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(());
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| ())?;
    let text = String::from_utf8(decoded).map_err(|_| ())?;
    let (id, secret) = text.split_once(':').ok_or(())?;
    Ok(Some((form_decode(id), form_decode(secret))))
}

/// Digest compared when the client id is unknown, so the answer takes as long either way.
const NO_CLIENT: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The authenticated client, or the response refusing it.
fn authenticate(
    p: &Provider,
    headers: &HeaderMap,
    form: &std::collections::HashMap<String, String>,
) -> Result<OidcClient, Response> {
    let basic = basic_credentials(headers).map_err(|()| invalid_client(true))?;
    let posted = form.get("client_secret");
    let (id, secret, used_basic) = match (basic, posted) {
        (Some(_), Some(_)) => {
            return Err(invalid_request(
                "use one client authentication method, not two",
            ))
        }
        (Some((id, secret)), None) => (id, secret, true),
        (None, Some(secret)) => match form.get("client_id") {
            Some(id) => (id.clone(), secret.clone(), false),
            None => return Err(invalid_client(false)),
        },
        (None, None) => return Err(invalid_client(false)),
    };
    if let (true, Some(form_id)) = (used_basic, form.get("client_id")) {
        if *form_id != id {
            return Err(invalid_request("client_id does not match the credentials"));
        }
    }
    let client = p.db().oidc_client(&id).map_err(server_error)?;
    let stored = client
        .as_ref()
        .map(|c| c.secret_digest.as_str())
        .unwrap_or(NO_CLIENT);
    let matches: bool = token_digest(&secret)
        .as_bytes()
        .ct_eq(stored.as_bytes())
        .into();
    match client {
        Some(c) if matches => Ok(c),
        _ => {
            tracing::info!(client = %id, "OIDC client authentication failed");
            Err(invalid_client(used_basic))
        }
    }
}

pub async fn token(State(p): State<Arc<Provider>>, headers: HeaderMap, body: Bytes) -> Response {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return invalid_request("send application/x-www-form-urlencoded");
    }
    let form = match parse_params(&body) {
        Ok(f) => f,
        Err(m) => return invalid_request(&m),
    };
    let client = match authenticate(&p, &headers, &form) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let get = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    match get("grant_type") {
        Some("authorization_code") => code_grant(&p, &client, &get),
        Some("refresh_token") => refresh_grant(&p, &client, &get),
        Some(_) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
        None => invalid_request("grant_type is missing"),
    }
}

fn code_grant<'a>(
    p: &Provider,
    client: &OidcClient,
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Response {
    let Some(code) = get("code") else {
        return invalid_request("code is missing");
    };
    let family = token_digest(code);
    let grant = match p.db().take_oidc_code(&family) {
        Ok(Taken::Fresh(g)) => g,
        Ok(Taken::Replayed) => {
            tracing::warn!(client = %client.client_id, "OIDC code replayed; its tokens are revoked");
            return invalid_grant("the code was already used; tokens issued from it are revoked");
        }
        Ok(Taken::Unknown) => return invalid_grant("unknown code"),
        Err(e) => return server_error(e),
    };
    let now = p.clock.now();
    if grant.client_id != client.client_id {
        return invalid_grant("the code was issued to another client");
    }
    if now >= grant.expires_at {
        return invalid_grant("the code has expired");
    }
    if get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return invalid_grant("redirect_uri differs from the authorization request's");
    }
    let Some(verifier) = get("code_verifier") else {
        return invalid_grant("code_verifier is missing (PKCE is required)");
    };
    if !pkce::verify(verifier, &grant.code_challenge) {
        return invalid_grant("code_verifier does not match the code_challenge");
    }
    let user = match p.db().session_user_by_digest(&grant.session_id, now) {
        Ok(Some(u)) if u.id == grant.user_id => u,
        Ok(_) => return invalid_grant("the Bloud session that granted the code has ended"),
        Err(e) => return server_error(e),
    };
    issue(
        p,
        &Issue {
            client_id: &client.client_id,
            session_id: &grant.session_id,
            user: &user,
            scope: &grant.scope,
            family: &family,
            nonce: grant.nonce.as_deref(),
            now,
        },
    )
}

fn refresh_grant<'a>(
    p: &Provider,
    client: &OidcClient,
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Response {
    let Some(token) = get("refresh_token") else {
        return invalid_request("refresh_token is missing");
    };
    let grant = match p.db().take_refresh_token(&token_digest(token)) {
        Ok(Taken::Fresh(g)) => g,
        Ok(Taken::Replayed) => {
            tracing::warn!(client = %client.client_id, "OIDC refresh token replayed; its family is revoked");
            return invalid_grant("the refresh token was already used; its tokens are revoked");
        }
        Ok(Taken::Unknown) => return invalid_grant("unknown refresh token"),
        Err(e) => return server_error(e),
    };
    let now = p.clock.now();
    if grant.client_id != client.client_id {
        return invalid_grant("the refresh token was issued to another client");
    }
    if now >= grant.expires_at {
        return invalid_grant("the refresh token has expired");
    }
    let user = match p.db().session_user_by_digest(&grant.session_id, now) {
        Ok(Some(u)) if u.id == grant.user_id => u,
        Ok(_) => return invalid_grant("the Bloud session has ended"),
        Err(e) => return server_error(e),
    };
    // Access to the app may have been taken away since the login.
    match super::clients::may_sign_in(p.db(), client, &user) {
        Ok(true) => {}
        Ok(false) => return invalid_grant("this Bloud account may no longer open this app"),
        Err(e) => return server_error(e),
    }
    issue(
        p,
        &Issue {
            client_id: &client.client_id,
            session_id: &grant.session_id,
            user: &user,
            scope: &grant.scope,
            family: &grant.family,
            nonce: None,
            now,
        },
    )
}

struct Issue<'a> {
    client_id: &'a str,
    session_id: &'a str,
    user: &'a User,
    scope: &'a str,
    family: &'a str,
    nonce: Option<&'a str>,
    now: i64,
}

/// New access, refresh and ID tokens.
fn issue(p: &Provider, i: &Issue<'_>) -> Response {
    let access = random_hex(32);
    let refresh = random_hex(32);
    for (token, kind, ttl) in [
        (&access, ACCESS, ACCESS_TOKEN_TTL),
        (&refresh, REFRESH, REFRESH_TOKEN_TTL),
    ] {
        let row = NewToken {
            digest: &token_digest(token),
            kind,
            client_id: i.client_id,
            session_id: i.session_id,
            user_id: &i.user.id,
            scope: i.scope,
            family: i.family,
            expires_at: i.now + ttl.as_secs() as i64,
        };
        if let Err(e) = p.db().insert_oidc_token(&row) {
            return server_error(e);
        }
    }
    let mut claims = user_claims(i.user, i.scope);
    claims.insert("iss".into(), p.issuer.clone().into());
    claims.insert("aud".into(), i.client_id.into());
    claims.insert("iat".into(), i.now.into());
    claims.insert("exp".into(), (i.now + ID_TOKEN_TTL.as_secs() as i64).into());
    if let Some(nonce) = i.nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    let id_token = match p.keys.sign(&claims) {
        Ok(t) => t,
        Err(e) => return server_error(e),
    };
    no_store(
        Json(serde_json::json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL.as_secs(),
            "refresh_token": refresh,
            "id_token": id_token,
            "scope": i.scope,
        }))
        .into_response(),
    )
}

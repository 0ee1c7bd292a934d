//! The sign-in of a demo app whose catalog entry is native OIDC: a real relying party of the
//! box's provider, like the app it stands in for. The demo rebuild hands it the client the
//! agent registered at install (`BLOUD_OIDC_*`, the secret read from the app's secret file);
//! `/oidc/login` sends the browser to the authorization endpoint (code flow, PKCE S256, state
//! bound to a cookie, nonce), the callback exchanges the code at the token endpoint from the
//! server with `client_secret_basic`, verifies the ID token against the published JWKS
//! (signature, issuer, audience, expiry, nonce) and keeps the user in an in-memory session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::db::random_hex;

/// Path (after the app's base) that starts a sign-in.
pub const LOGIN_PATH: &str = "/oidc/login";
pub const STATE_COOKIE: &str = "demo_rp_state";
pub const SESSION_COOKIE: &str = "demo_rp_session";
/// A sign-in not finished by then is forgotten.
const PENDING_TTL: Duration = Duration::from_secs(600);

struct Pending {
    verifier: String,
    nonce: String,
    started: Instant,
}

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    id_token: String,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

/// Who signed in to this demo app.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: String,
    pub groups: Vec<String>,
}

pub struct RelyingParty {
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    /// Where the callback arrives, relative to the app's base.
    pub callback_path: String,
    http: reqwest::Client,
    pending: Mutex<HashMap<String, Pending>>,
    sessions: Mutex<HashMap<String, SignedIn>>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl RelyingParty {
    /// The client the demo rebuild passed, if any: all of `BLOUD_OIDC_ISSUER`, `_CLIENT_ID`,
    /// `_CLIENT_SECRET`, `_REDIRECT_URI` and `_CALLBACK_PATH`.
    pub fn from_env() -> anyhow::Result<Option<RelyingParty>> {
        let Some(client_secret) = env("BLOUD_OIDC_CLIENT_SECRET") else {
            return Ok(None);
        };
        let need = |n: &str| env(n).with_context(|| format!("{n} is not set"));
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .context("building the HTTP client")?;
        Ok(Some(RelyingParty {
            issuer: need("BLOUD_OIDC_ISSUER")?.trim_end_matches('/').to_string(),
            client_id: need("BLOUD_OIDC_CLIENT_ID")?,
            client_secret,
            redirect_uri: need("BLOUD_OIDC_REDIRECT_URI")?,
            callback_path: need("BLOUD_OIDC_CALLBACK_PATH")?,
            http,
            pending: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }))
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    async fn discovery(&self) -> anyhow::Result<Discovery> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let d: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("GET {url}"))?
            .json()
            .await
            .with_context(|| format!("{url}: not a discovery document"))?;
        ensure!(
            d.issuer.trim_end_matches('/') == self.issuer,
            "discovery names issuer {}, expected {}",
            d.issuer,
            self.issuer
        );
        Ok(d)
    }

    /// Who holds the session cookie of `headers`, if anyone.
    pub fn signed_in(&self, headers: &HeaderMap) -> Option<SignedIn> {
        let id = cookie(headers, SESSION_COOKIE)?;
        lock(&self.sessions).get(&id).cloned()
    }

    /// `GET <base>/oidc/login`: off to the provider.
    pub async fn login(&self, base: &str) -> Response {
        let endpoints = match self.discovery().await {
            Ok(d) => d,
            Err(e) => return failure(&e),
        };
        let state = random_hex(16);
        let nonce = random_hex(16);
        let verifier = random_hex(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        {
            let mut pending = lock(&self.pending);
            pending.retain(|_, p| p.started.elapsed() < PENDING_TTL);
            pending.insert(
                state.clone(),
                Pending {
                    verifier,
                    nonce: nonce.clone(),
                    started: Instant::now(),
                },
            );
        }
        let target = crate::oidc::with_query(
            &endpoints.authorization_endpoint,
            &[
                ("response_type", "code"),
                ("client_id", &self.client_id),
                ("redirect_uri", &self.redirect_uri),
                ("scope", "openid profile"),
                ("state", &state),
                ("nonce", &nonce),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response();
        set_cookie(&mut resp, STATE_COOKIE, &state, base, 600);
        resp
    }

    /// The redirect back from the provider: code for tokens, ID token checked, session made.
    pub async fn callback(&self, base: &str, headers: &HeaderMap, query: &str) -> Response {
        match self.finish(headers, query).await {
            Ok(who) => {
                let id = random_hex(32);
                lock(&self.sessions).insert(id.clone(), who);
                let mut resp = (
                    StatusCode::SEE_OTHER,
                    [(header::LOCATION, format!("{base}/"))],
                )
                    .into_response();
                set_cookie(&mut resp, SESSION_COOKIE, &id, base, 86_400);
                set_cookie(&mut resp, STATE_COOKIE, "", base, 0);
                resp
            }
            Err(e) => failure(&e),
        }
    }

    async fn finish(&self, headers: &HeaderMap, query: &str) -> anyhow::Result<SignedIn> {
        let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        if let Some(err) = params.get("error") {
            anyhow::bail!("the provider refused: {err}");
        }
        let state = params.get("state").context("no state in the callback")?;
        // The state must be the one this browser was given: a code from someone else's
        // sign-in (login CSRF) is refused.
        ensure!(
            cookie(headers, STATE_COOKIE).as_deref() == Some(state.as_str()),
            "state does not match this browser's sign-in"
        );
        let pending = lock(&self.pending)
            .remove(state)
            .context("unknown or used state")?;
        let code = params.get("code").context("no code in the callback")?;
        let endpoints = self.discovery().await?;
        let tokens: TokenResponse = self
            .http
            .post(&endpoints.token_endpoint)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("code_verifier", pending.verifier.as_str()),
            ])
            .send()
            .await
            .context("token request")?
            .error_for_status()
            .context("token endpoint")?
            .json()
            .await
            .context("token response")?;
        let kid = jsonwebtoken::decode_header(&tokens.id_token)
            .context("ID token header")?
            .kid
            .context("ID token without kid")?;
        let jwks: JwkSet = self
            .http
            .get(&endpoints.jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .context("JWKS")?
            .json()
            .await
            .context("JWKS document")?;
        let key = DecodingKey::from_jwk(jwks.find(&kid).context("ID token key not in the JWKS")?)
            .context("JWKS key")?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.client_id]);
        let claims = jsonwebtoken::decode::<IdClaims>(&tokens.id_token, &key, &validation)
            .context("ID token")?
            .claims;
        ensure!(
            claims.nonce.as_deref() == Some(pending.nonce.as_str()),
            "ID token nonce does not match"
        );
        Ok(SignedIn {
            user: claims.preferred_username.unwrap_or(claims.sub),
            groups: claims.groups,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn failure(e: &anyhow::Error) -> Response {
    println!("sign-in failed: {e:#}");
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html><title>Sign-in failed</title><h1>Sign-in failed</h1><p>{}</p>",
            crate::demo::escape(&format!("{e:#}"))
        ),
    )
        .into_response()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(resp: &mut Response, name: &str, value: &str, base: &str, max_age: u32) {
    let line = format!("{name}={value}; Path={base}/; Max-Age={max_age}; HttpOnly; SameSite=Lax");
    if let Ok(v) = HeaderValue::from_str(&line) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

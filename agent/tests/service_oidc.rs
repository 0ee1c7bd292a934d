//! The OpenID Connect provider, conformance-style, against an in-process agent over real HTTP:
//! what a relying party sees at each step of the authorization code flow (discovery, PKCE,
//! redirect_uri matching, single-use and short-lived codes, ID tokens verified with the
//! published JWKS by jsonwebtoken, nonce/state, refresh rotation, userinfo after the Bloud
//! session or the user is gone, client authentication, sign-out, key rotation).

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bloud_agent::oidc::{CODE_TTL, ID_TOKEN_TTL};
use common::*;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const ISSUER: &str = "http://bloud.test";
const REDIRECT: &str = "https://notes.example/auth/callback";
const LOGOUT_DONE: &str = "https://notes.example/signed-out";
const VERIFIER: &str = "a-long-enough-code-verifier-0123456789-abcdefghijklmnop";

struct Box_ {
    _dirs: Dirs,
    running: bloud_agent::server::Running,
    base: String,
}

async fn start() -> Box_ {
    let dirs = Dirs::new();
    std::fs::write(dirs.path("web/index.html"), "<html>shell</html>").unwrap();
    write_catalog(
        &dirs.path("apps"),
        &[TestApp {
            name: "notes",
            port: None,
            extra: "",
        }],
    );
    let running = bloud_agent::server::start(config(&dirs, &["true"], Duration::from_millis(50)))
        .await
        .unwrap();
    let base = base_of(&running);
    Box_ {
        _dirs: dirs,
        running,
        base,
    }
}

/// A client that shows redirects instead of following them, as a relying party's code does.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn cookie_of(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("bloud_session="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string()
}

/// The first user (an admin), signed in: `bloud_session=<token>`.
async fn first_user(base: &str) -> String {
    let r = client()
        .post(format!("{base}/api/setup/create-user"))
        .json(&json!({"username": "alice", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    cookie_of(&r)
}

async fn login(base: &str, username: &str, password: &str) -> String {
    let r = client()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    cookie_of(&r)
}

struct Rp {
    id: String,
    secret: String,
}

async fn register(base: &str) -> Rp {
    let r = admin(base)
        .post(format!("{base}/api/oidc/clients"))
        .json(&json!({
            "client_id": "notes",
            "name": "Notes",
            "redirect_uris": [REDIRECT],
            "post_logout_redirect_uris": [LOGOUT_DONE],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    Rp {
        id: v["client_id"].as_str().unwrap().into(),
        secret: v["client_secret"].as_str().unwrap().into(),
    }
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn authorize_url(base: &str, extra: &[(&str, &str)]) -> String {
    let c = challenge(VERIFIER);
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", "notes"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile"),
        ("state", "st-42"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", &c),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        match pairs.iter_mut().find(|(pk, _)| pk == k) {
            Some(p) => p.1 = v,
            None => pairs.push((k, v)),
        }
    }
    let pairs: Vec<_> = pairs.into_iter().filter(|(_, v)| *v != "-").collect();
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    format!("{base}/api/oidc/authorize?{}", ser.finish())
}

/// The authorization endpoint's answer: status and `Location`.
async fn authorize(base: &str, cookie: Option<&str>, extra: &[(&str, &str)]) -> (u16, String) {
    let mut req = http().get(authorize_url(base, extra));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status().as_u16(), loc)
}

/// Query parameters of a redirect back to the client, checked to go to `REDIRECT`.
fn callback(location: &str) -> std::collections::HashMap<String, String> {
    let (target, query) = location.split_once('?').unwrap();
    assert_eq!(target, REDIRECT, "{location}");
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn code(base: &str, cookie: &str) -> String {
    let (status, loc) = authorize(base, Some(cookie), &[]).await;
    assert_eq!(status, 302);
    let q = callback(&loc);
    assert_eq!(q["state"], "st-42");
    assert_eq!(q["iss"], ISSUER);
    q["code"].clone()
}

/// A token request with `client_secret_basic`.
async fn token(base: &str, rp: &Rp, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(format!("{base}/api/oidc/token"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn exchange(base: &str, rp: &Rp, code: &str) -> (u16, Value) {
    token(
        base,
        rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

async fn refresh(base: &str, rp: &Rp, refresh_token: &str) -> (u16, Value) {
    token(
        base,
        rp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn userinfo(base: &str, access: &str) -> (u16, Value) {
    let r = http()
        .get(format!("{base}/api/oidc/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status == 401 {
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn jwks(base: &str) -> JwkSet {
    http()
        .get(format!("{base}/api/oidc/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Verifies an ID token as a relying party does: the key named by its `kid` in the published
/// JWKS, RS256, this issuer, this audience, not expired.
async fn verify(base: &str, id_token: &str, aud: &str) -> Result<Value, String> {
    let kid = jsonwebtoken::decode_header(id_token)
        .map_err(|e| e.to_string())?
        .kid
        .ok_or("no kid")?;
    let set = jwks(base).await;
    let jwk = set.find(&kid).ok_or(format!("kid {kid} not published"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[aud]);
    jsonwebtoken::decode::<Value>(id_token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn discovery_names_the_endpoints_and_what_is_supported() {
    let b = start().await;
    let r = http()
        .get(format!("{}/.well-known/openid-configuration", b.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["issuer"], ISSUER);
    for (k, path) in [
        ("authorization_endpoint", "/api/oidc/authorize"),
        ("token_endpoint", "/api/oidc/token"),
        ("userinfo_endpoint", "/api/oidc/userinfo"),
        ("jwks_uri", "/api/oidc/jwks"),
        ("end_session_endpoint", "/api/oidc/end_session"),
    ] {
        assert_eq!(d[k], format!("{ISSUER}{path}"), "{k}");
    }
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(d["subject_types_supported"], json!(["public"]));
    let set = jwks(&b.base).await;
    assert_eq!(set.keys.len(), 1);
    assert!(set.keys[0].common.key_id.is_some());
    // The key outlives a restart: tokens signed before it still verify.
    let kid = set.keys[0].common.key_id.clone();
    let dirs = b._dirs;
    b.running.shutdown().await;
    let again = bloud_agent::server::start(config(&dirs, &["true"], Duration::from_millis(50)))
        .await
        .unwrap();
    let base = base_of(&again);
    assert_eq!(jwks(&base).await.keys[0].common.key_id, kid);
    again.shutdown().await;
}

#[tokio::test]
async fn code_flow_gives_a_verifiable_id_token_with_nonce_state_and_claims() {
    let b = start().await;
    let cookie = first_user(&b.base).await;
    let rp = register(&b.base).await;
    let code = code(&b.base, &cookie).await;
    let (status, t) = exchange(&b.base, &rp, &code).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    let claims = verify(&b.base, t["id_token"].as_str().unwrap(), "notes")
        .await
        .unwrap();
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["groups"], json!(["admin"]));
    // Not for another client, and tampering breaks the signature.
    assert!(verify(&b.base, t["id_token"].as_str().unwrap(), "other")
        .await
        .is_err());
    let mut forged = t["id_token"].as_str().unwrap().to_string();
    let dot = forged.rfind('.').unwrap();
    forged.replace_range(dot + 1..dot + 5, "AAAA");
    assert!(verify(&b.base, &forged, "notes").await.is_err());

    let me: Value = client()
        .get(format!("{}/api/auth/me", b.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(claims["sub"], me["id"]);
    let (status, info) = userinfo(&b.base, t["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(info["sub"], me["id"]);
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["groups"], json!(["admin"]));

    // client_secret_post works the same.
    let code2 = self::code(&b.base, &cookie).await;
    let r = http()
        .post(format!("{}/api/oidc/token", b.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code2),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", &rp.id),
            ("client_secret", &rp.secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    b.running.shutdown().await;
}

#[tokio::test]
async fn pkce_is_required_s256_only_and_verified() {
    let b = start().await;
    let cookie = first_user(&b.base).await;
    let rp = register(&b.base).await;
    let plain = VERIFIER.to_string();
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "no challenge",
            &[("code_challenge", "-"), ("code_challenge_method", "-")],
        ),
        (
            "no method (plain by default)",
            &[("code_challenge_method", "-")],
        ),
        (
            "plain",
            &[
                ("code_challenge", &plain),
                ("code_challenge_method", "plain"),
            ],
        ),
    ];
    for (name, extra) in cases {
        let (status, loc) = authorize(&b.base, Some(&cookie), extra).await;
        assert_eq!(status, 302, "{name}");
        let q = callback(&loc);
        assert_eq!(q["error"], "invalid_request", "{name}");
        assert_eq!(q["state"], "st-42", "{name}");
        assert!(!q.contains_key("code"), "{name}");
    }
    for (name, verifier) in [
        (
            "wrong verifier",
            Some("another-verifier-of-enough-length-0123456789-abcdefgh"),
        ),
        ("missing verifier", None),
    ] {
        let code = code(&b.base, &cookie).await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let (status, t) = token(&b.base, &rp, &form).await;
        assert_eq!(status, 400, "{name}");
        assert_eq!(error_of(&t), "invalid_grant", "{name}");
        assert!(t.get("id_token").is_none(), "{name}");
    }
    b.running.shutdown().await;
}

#[tokio::test]
async fn redirect_uri_must_match_exactly() {
    let b = start().await;
    let cookie = first_user(&b.base).await;
    let rp = register(&b.base).await;
    for uri in [
        "-",
        "https://notes.example/auth/callback/",
        "https://notes.example/auth/callback?next=/",
        "https://notes.example/auth/callbackx",
        "https://evil.example/auth/callback",
        "http://notes.example/auth/callback",
    ] {
        let (status, loc) = authorize(&b.base, Some(&cookie), &[("redirect_uri", uri)]).await;
        // An error page, never a redirect to an unregistered address.
        assert_eq!(status, 400, "{uri}");
        assert_eq!(loc, "", "{uri}");
    }
    let code = code(&b.base, &cookie).await;
    let (status, t) = token(
        &b.base,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://notes.example/other"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error_of(&t), "invalid_grant");
    b.running.shutdown().await;
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_its_tokens() {
    let b = start().await;
    let cookie = first_user(&b.base).await;
    let rp = register(&b.base).await;
    let code = code(&b.base, &cookie).await;
    let (status, t) = exchange(&b.base, &rp, &code).await;
    assert_eq!(status, 200);
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&b.base, access).await.0, 200);
    let (status, again) = exchange(&b.base, &rp, &code).await;
    assert_eq!(status, 400);
    assert_eq!(error_of(&again), "invalid_grant");
    assert_eq!(userinfo(&b.base, access).await.0, 401);
    let (status, r) = refresh(&b.base, &rp, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, error_of(&r)), (400, "invalid_grant"));
    b.running.shutdown().await;
}

#[tokio::test]
async fn codes_expire_after_sixty_seconds() {
    let b = start().await;
    let cookie = first_user(&b.base).await;
    let rp = register(&b.base).await;
    let clock = &b.running.service.oidc.clock;
    let fresh = code(&b.base, &cookie).await;
    clock.advance(CODE_TTL - Duration::from_secs(2));
    assert_eq!(exchange(&b.base, &rp, &fresh).await.0, 200);
    let stale = code(&b.base, &cookie).await;
    clock.advance(CODE_TTL + Duration::from_secs(1));
    let (status, t) = exchange(&b.base, &rp, &stale).await;
    assert_eq!((status, error_of(&t)), (400, "invalid_grant"));
    b.running.shutdown().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replay_revokes_the_family() {
    let b = start().await;
    let cookie = first_user(&b.base).await;
    let rp = register(&b.base).await;
    let (_, t) = exchange(&b.base, &rp, &code(&b.base, &cookie).await).await;
    let r1 = t["refresh_token"].as_str().unwrap().to_string();
    let (status, t2) = refresh(&b.base, &rp, &r1).await;
    assert_eq!(status, 200, "{t2}");
    let r2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    let a2 = t2["access_token"].as_str().unwrap().to_string();
    assert_eq!(userinfo(&b.base, &a2).await.0, 200);
    assert!(verify(&b.base, t2["id_token"].as_str().unwrap(), "notes")
        .await
        .is_ok());
    // The spent token again: refused, and everything from this login is revoked.
    let (status, e) = refresh(&b.base, &rp, &r1).await;
    assert_eq!((status, error_of(&e)), (400, "invalid_grant"));
    assert_eq!(refresh(&b.base, &rp, &r2).await.0, 400);
    assert_eq!(userinfo(&b.base, &a2).await.0, 401);
    // A refresh token only works for its own client.
    let other = admin(&b.base)
        .post(format!("{}/api/oidc/clients", b.base))
        .json(&json!({"client_id": "other", "redirect_uris": ["https://other.example/cb"]}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let other = Rp {
        id: "other".into(),
        secret: other["client_secret"].as_str().unwrap().into(),
    };
    let (_, t3) = exchange(&b.base, &rp, &code(&b.base, &cookie).await).await;
    let (status, _) = refresh(&b.base, &other, t3["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400);
    b.running.shutdown().await;
}

#[tokio::test]
async fn userinfo_refuses_tokens_once_the_session_or_the_user_is_gone() {
    let b = start().await;
    let admin_cookie = first_user(&b.base).await;
    let rp = register(&b.base).await;
    // Signing out of Bloud signs the app's tokens out too.
    let (_, t) = exchange(&b.base, &rp, &code(&b.base, &admin_cookie).await).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&b.base, access).await.0, 200);
    let r = client()
        .post(format!("{}/api/auth/logout", b.base))
        .header("cookie", &admin_cookie)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(userinfo(&b.base, access).await.0, 401);
    let (status, e) = refresh(&b.base, &rp, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, error_of(&e)), (400, "invalid_grant"));

    // A member: their role shows as the group; deleting them revokes their tokens.
    let r = admin(&b.base)
        .post(format!("{}/api/users", b.base))
        .json(&json!({"username": "bob", "password": "battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let bob: Value = r.json().await.unwrap();
    let bob_cookie = login(&b.base, "bob", "battery staple").await;
    let (_, t) = exchange(&b.base, &rp, &code(&b.base, &bob_cookie).await).await;
    let access = t["access_token"].as_str().unwrap();
    let (status, info) = userinfo(&b.base, access).await;
    assert_eq!(status, 200);
    assert_eq!(info["preferred_username"], "bob");
    assert_eq!(info["groups"], json!(["member"]));
    let r = admin(&b.base)
        .delete(format!(
            "{}/api/users/{}",
            b.base,
            bob["id"].as_str().unwrap()
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(userinfo(&b.base, access).await.0, 401);
    assert_eq!(userinfo(&b.base, "not-a-token").await.0, 401);
    b.running.shutdown().await;
}

#[tokio::test]
async fn wrong_client_credentials_get_401() {
    let b = start().await;
    let cookie = first_user(&b.base).await;
    let rp = register(&b.base).await;
    let code = code(&b.base, &cookie).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let wrong = Rp {
        id: rp.id.clone(),
        secret: format!("{}x", rp.secret),
    };
    let unknown = Rp {
        id: "nobody".into(),
        secret: rp.secret.clone(),
    };
    for (name, who) in [("wrong secret", &wrong), ("unknown client", &unknown)] {
        let (status, t) = token(&b.base, who, &form).await;
        assert_eq!((status, error_of(&t)), (401, "invalid_client"), "{name}");
    }
    let r = http()
        .post(format!("{}/api/oidc/token", b.base))
        .form(
            &[
                &form[..],
                &[("client_id", "notes"), ("client_secret", "guess")],
            ]
            .concat(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http()
        .post(format!("{}/api/oidc/token", b.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The code was never handed out to a failed client: the right one still gets tokens.
    assert_eq!(exchange(&b.base, &rp, &code).await.0, 200);
    b.running.shutdown().await;
}

#[tokio::test]
async fn registering_a_client_takes_an_admin_who_confirms_their_password() {
    let b = start().await;
    let admin_cookie = first_user(&b.base).await;
    let post = |cookie: Option<String>, step_up: Option<String>| {
        let base = b.base.clone();
        async move {
            let mut req = client()
                .post(format!("{base}/api/oidc/clients"))
                .json(&json!({"client_id": "notes", "redirect_uris": [REDIRECT]}));
            if let Some(c) = cookie {
                req = req.header("cookie", c);
            }
            if let Some(t) = step_up {
                req = req.header("x-bloud-step-up", t);
            }
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    assert_eq!(post(None, None).await.0, 401);
    let (status, v) = post(Some(admin_cookie.clone()), None).await;
    assert_eq!((status, &v["stepUpRequired"]), (403, &json!(true)));
    let r = client()
        .post(format!("{}/api/auth/step-up", b.base))
        .header("cookie", &admin_cookie)
        .json(&json!({"password": "correct horse", "action": "oidc.clients.add"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, v) = post(Some(admin_cookie), Some(token)).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["client_id"], "notes");
    assert!(v["client_secret"].as_str().unwrap().len() >= 32);
    // The secret is shown once: the list has no secret.
    let list: Value = admin(&b.base)
        .get(format!("{}/api/oidc/clients", b.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["client_id"], "notes");
    assert!(list[0].get("client_secret").is_none());
    // A member may not.
    admin(&b.base)
        .post(format!("{}/api/users", b.base))
        .json(&json!({"username": "bob", "password": "battery staple"}))
        .send()
        .await
        .unwrap();
    let bob = login(&b.base, "bob", "battery staple").await;
    assert_eq!(post(Some(bob), None).await.0, 403);
    // Removing a client ends its tokens and its sign-ins.
    let alice = login(&b.base, "alice", "correct horse").await;
    let rp = Rp {
        id: "notes".into(),
        secret: v["client_secret"].as_str().unwrap().into(),
    };
    let (_, t) = exchange(&b.base, &rp, &code(&b.base, &alice).await).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&b.base, access).await.0, 200);
    let r = admin(&b.base)
        .delete(format!("{}/api/oidc/clients/notes", b.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(userinfo(&b.base, access).await.0, 401);
    assert_eq!(authorize(&b.base, Some(&alice), &[]).await.0, 400);
    b.running.shutdown().await;
}

#[tokio::test]
async fn without_a_session_authorize_sends_the_browser_to_the_login_page() {
    let b = start().await;
    first_user(&b.base).await;
    register(&b.base).await;
    let (status, loc) = authorize(&b.base, None, &[]).await;
    assert_eq!(status, 302);
    let next = loc.strip_prefix("/login?next=").unwrap();
    let next: String = form_urlencoded::parse(format!("n={next}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    // After logging in, the shell comes back to the same authorization request.
    assert_eq!(format!("{}{next}", b.base), authorize_url(&b.base, &[]));
    let (status, loc) =
        authorize(&b.base, Some("bloud_session=stale"), &[("prompt", "none")]).await;
    assert_eq!(status, 302);
    let q = callback(&loc);
    assert_eq!(q["error"], "login_required");
    assert!(!q.contains_key("code"));
    b.running.shutdown().await;
}

#[tokio::test]
async fn end_session_signs_out_and_returns_only_to_registered_addresses() {
    let b = start().await;
    let cookie = first_user(&b.base).await;
    let rp = register(&b.base).await;
    let (_, t) = exchange(&b.base, &rp, &code(&b.base, &cookie).await).await;
    let hint = t["id_token"].as_str().unwrap();
    let me = |c: String| {
        let base = b.base.clone();
        async move {
            client()
                .get(format!("{base}/api/auth/me"))
                .header("cookie", c)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let end = |q: Vec<(&'static str, String)>| {
        let base = b.base.clone();
        let cookie = cookie.clone();
        async move {
            let r = http()
                .get(format!("{base}/api/oidc/end_session"))
                .query(&q)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            let loc = r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), loc)
        }
    };
    for q in [
        vec![
            ("id_token_hint", hint.to_string()),
            ("post_logout_redirect_uri", "https://evil.example/".into()),
        ],
        vec![("post_logout_redirect_uri", LOGOUT_DONE.into())],
        vec![
            ("id_token_hint", format!("{hint}x")),
            ("post_logout_redirect_uri", LOGOUT_DONE.into()),
        ],
    ] {
        assert_eq!(end(q).await, (400, None));
        assert_eq!(me(cookie.clone()).await, 200);
    }
    let (status, loc) = end(vec![
        ("id_token_hint", hint.to_string()),
        ("post_logout_redirect_uri", LOGOUT_DONE.into()),
        ("state", "bye".into()),
    ])
    .await;
    assert_eq!(status, 302);
    assert_eq!(loc.as_deref(), Some(&*format!("{LOGOUT_DONE}?state=bye")));
    assert_eq!(me(cookie.clone()).await, 401);
    assert_eq!(
        userinfo(&b.base, t["access_token"].as_str().unwrap())
            .await
            .0,
        401
    );
    b.running.shutdown().await;
}

#[tokio::test]
async fn rotated_keys_overlap_until_their_tokens_expire() {
    let b = start().await;
    let cookie = first_user(&b.base).await;
    let rp = register(&b.base).await;
    let (_, t) = exchange(&b.base, &rp, &code(&b.base, &cookie).await).await;
    let old_token = t["id_token"].as_str().unwrap().to_string();
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();
    let r = admin(&b.base)
        .post(format!("{}/api/oidc/keys/rotate", b.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let new_kid = r.json::<Value>().await.unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_kid, old_kid);
    assert_eq!(jwks(&b.base).await.keys.len(), 2);
    assert!(verify(&b.base, &old_token, "notes").await.is_ok());
    let (_, t) = exchange(&b.base, &rp, &code(&b.base, &cookie).await).await;
    let new_token = t["id_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(new_token).unwrap().kid.unwrap(),
        new_kid
    );
    // Once every token the old key signed has expired, it is no longer published.
    b.running
        .service
        .oidc
        .clock
        .advance(ID_TOKEN_TTL + Duration::from_secs(120));
    let set = jwks(&b.base).await;
    assert_eq!(set.keys.len(), 1);
    assert!(set.find(&new_kid).is_some());
    b.running.shutdown().await;
}

#[tokio::test]
async fn a_client_for_an_app_signs_in_only_users_who_may_open_the_app() {
    let b = start().await;
    first_user(&b.base).await;
    let r = admin(&b.base)
        .post(format!("{}/api/oidc/clients", b.base))
        .json(&json!({"client_id": "notes", "app": "notes", "redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let rp = Rp {
        id: "notes".into(),
        secret: v["client_secret"].as_str().unwrap().into(),
    };
    let bob: Value = admin(&b.base)
        .post(format!("{}/api/users", b.base))
        .json(&json!({"username": "bob", "password": "battery staple"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bob_id = bob["id"].as_str().unwrap().to_string();
    let cookie = login(&b.base, "bob", "battery staple").await;
    // A new member may open no app: the app is told access was denied, and gets no code.
    let (status, loc) = authorize(&b.base, Some(&cookie), &[]).await;
    assert_eq!(status, 302);
    let q = callback(&loc);
    assert_eq!(q["error"], "access_denied");
    assert!(!q.contains_key("code"));
    let grant = |apps: Value| {
        let url = format!("{}/api/users/{bob_id}/apps", b.base);
        async move {
            let r = admin(&url)
                .put(&url)
                .json(&json!({ "apps": apps }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    grant(json!(["notes"])).await;
    let (status, t) = exchange(&b.base, &rp, &code(&b.base, &cookie).await).await;
    assert_eq!(status, 200);
    // Taking the access away stops the next refresh.
    grant(json!([])).await;
    let (status, e) = refresh(&b.base, &rp, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, error_of(&e)), (400, "invalid_grant"));
    b.running.shutdown().await;
}

//! A relying party signs a Bloud user in through bloud-proxy (issue 14): the issuer is the
//! proxy's public URL, discovery is found at `/.well-known/openid-configuration` (the shell's
//! catch-all route), the authorization request with the shell's session cookie comes back with
//! a code, the token endpoint takes the relying party's form POST (not blocked by the agent's
//! CSRF rule), the ID token verifies against the JWKS, userinfo names the user; a signed-out
//! browser is sent to the shell's login page and back.

mod support;

use std::time::Duration;

use anyhow::{ensure, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{run_scenario, Client, System};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery";
const SCENARIO_LIMIT: Duration = Duration::from_secs(120);
const REDIRECT: &str = "http://rp.example/callback";
const VERIFIER: &str = "e2e-code-verifier-with-enough-entropy-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relying_party_signs_a_bloud_user_in_through_the_proxy() {
    let sys = match System::start().await {
        Ok(s) => s,
        Err(e) => panic!("starting the system: {e:#}"),
    };
    run_scenario(SCENARIO_LIMIT, scenario(&sys)).await;
}

/// The relying party's own HTTP client: no cookies, no redirects followed.
fn rp_http() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the relying party's client")
}

async fn scenario(sys: &System) -> anyhow::Result<()> {
    let mut browser: Client = sys.client()?;
    let created = browser
        .post_json(
            "/api/setup/create-user",
            &json!({"username": USER, "password": PASSWORD}),
        )
        .await?;
    ensure!(created.status == 200, "create-user: {}", created.describe());
    browser.keep_session(&created)?;

    // The admin registers the app, confirming the password first.
    let step = browser
        .post_json(
            "/api/auth/step-up",
            &json!({"password": PASSWORD, "action": "oidc.clients.add"}),
        )
        .await?;
    ensure!(step.status == 200, "step-up: {}", step.describe());
    let token = step.json()?["token"].as_str().unwrap_or("").to_string();
    let registered = browser
        .send(
            browser
                .request(reqwest::Method::POST, "/api/oidc/clients")
                .header("X-Bloud-Step-Up", token)
                .json(&json!({"client_id": "rp", "redirect_uris": [REDIRECT]})),
        )
        .await?;
    ensure!(
        registered.status == 201,
        "register: {}",
        registered.describe()
    );
    let secret = registered.json()?["client_secret"]
        .as_str()
        .unwrap_or("")
        .to_string();

    // Discovery through the proxy: the issuer is the address the browser uses.
    let rp = rp_http()?;
    let issuer = sys.url("");
    let issuer = issuer.trim_end_matches('/');
    let discovery: Value = rp
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await?
        .json()
        .await
        .context("discovery is not JSON")?;
    ensure!(discovery["issuer"] == issuer, "issuer: {discovery}");
    let endpoint = |k: &str| discovery[k].as_str().unwrap_or("").to_string();
    for k in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        ensure!(endpoint(k).starts_with(issuer), "{k}: {discovery}");
    }

    // The browser, signed in to Bloud, is sent back to the app with a code.
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let query = [
        ("response_type", "code"),
        ("client_id", "rp"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile"),
        ("state", "xyz"),
        ("nonce", "abc"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let authorize = |cookie: Option<String>| {
        let mut req = rp.get(endpoint("authorization_endpoint")).query(&query);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        req.send()
    };
    let signed_out = authorize(None).await?;
    let to_login = signed_out
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    ensure!(
        signed_out.status() == 302
            && to_login.starts_with("/login?next=%2Fapi%2Foidc%2Fauthorize%3F"),
        "signed out: {} {to_login}",
        signed_out.status()
    );
    let answer = authorize(browser.session.clone()).await?;
    let location = answer
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    ensure!(
        answer.status() == 302,
        "authorize: {} {location}",
        answer.status()
    );
    let callback = reqwest::Url::parse(&location).context("callback URL")?;
    ensure!(
        location.starts_with(&format!("{REDIRECT}?")),
        "callback: {location}"
    );
    let param = |k: &str| {
        callback
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    ensure!(param("state") == "xyz", "state: {location}");

    // The app's server redeems it with its secret: a form POST through the proxy.
    let tokens = rp
        .post(endpoint("token_endpoint"))
        .basic_auth("rp", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", param("code").as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await?;
    ensure!(tokens.status() == 200, "token: {}", tokens.status());
    let tokens: Value = tokens.json().await?;
    let id_token = tokens["id_token"].as_str().unwrap_or("");
    let kid = jsonwebtoken::decode_header(id_token)?
        .kid
        .context("no kid")?;
    let jwks: JwkSet = rp.get(endpoint("jwks_uri")).send().await?.json().await?;
    let key = DecodingKey::from_jwk(jwks.find(&kid).context("kid not in the JWKS")?)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&["rp"]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)?.claims;
    ensure!(claims["nonce"] == "abc", "nonce: {claims}");
    ensure!(claims["preferred_username"] == USER, "claims: {claims}");

    let info: Value = rp
        .get(endpoint("userinfo_endpoint"))
        .bearer_auth(tokens["access_token"].as_str().unwrap_or(""))
        .send()
        .await?
        .json()
        .await?;
    let me = browser.get("/api/auth/me").await?.json()?;
    ensure!(
        info["sub"] == me["id"] && info["preferred_username"] == USER,
        "userinfo: {info}, me: {me}"
    );
    Ok(())
}

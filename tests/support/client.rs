//! An HTTP client that talks to the system through the proxy as the shell does: JSON bodies,
//! the `bloud_session` cookie kept after setup or login and sent on every request.

use std::time::Duration;

use anyhow::Context;
use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use reqwest::{Method, RequestBuilder, Response};

pub const SESSION_COOKIE: &str = "bloud_session";

#[derive(Clone)]
pub struct Client {
    pub base: String,
    http: reqwest::Client,
    /// For streams: no overall timeout (an SSE response never ends by itself).
    stream_http: reqwest::Client,
    /// `bloud_session=<token>`, once signed in.
    pub session: Option<String>,
}

/// A response read completely: status, headers and body text.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("HTTP {} body is not JSON: {}", self.status, self.body))
    }

    /// The full `Set-Cookie` line for `name`, if the answer sets it.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    pub fn describe(&self) -> String {
        format!(
            "HTTP {}: {}",
            self.status,
            super::process::tail(&self.body, 2000)
        )
    }
}

impl Client {
    pub fn new(base: String) -> anyhow::Result<Client> {
        let builder = || {
            reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
        };
        Ok(Client {
            base,
            http: builder()
                .timeout(Duration::from_secs(30))
                .build()
                .context("building the test HTTP client")?,
            stream_http: builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .context("building the test streaming client")?,
            session: None,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the session cookie, if any.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match &self.session {
            Some(c) => req.header(COOKIE, c),
            None => req,
        }
    }

    /// A streaming GET (no overall timeout) with the session cookie, if any.
    pub fn stream(&self, path: &str) -> RequestBuilder {
        let req = self.stream_http.get(self.url(path));
        match &self.session {
            Some(c) => req.header(COOKIE, c),
            None => req,
        }
    }

    pub async fn send(&self, req: RequestBuilder) -> anyhow::Result<Answer> {
        let resp: Response = req.send().await.context("request to the proxy failed")?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.context("reading the response body")?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(self.request(Method::GET, path))
            .await
            .with_context(|| format!("GET {path}"))
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<Answer> {
        self.send(self.request(Method::POST, path).json(body))
            .await
            .with_context(|| format!("POST {path}"))
    }

    /// Keeps the session cookie an answer sets (setup, login).
    pub fn keep_session(&mut self, answer: &Answer) -> anyhow::Result<String> {
        let line = answer.set_cookie(SESSION_COOKIE).with_context(|| {
            format!(
                "the answer sets no {SESSION_COOKIE} cookie ({})",
                answer.describe()
            )
        })?;
        let pair = line
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        self.session = Some(pair);
        Ok(line)
    }
}

//! The `embed` middleware's configuration and its compiled, hot-path form.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Paths in Authentik's namespace. Targets there are never prefixed: forward-auth and OIDC
/// redirects must reach Authentik's root routes (upstream commit `3115277`). The service worker
/// reads the same list (web/src/sw/authentik-paths.json) for its own redirect rewriting.
const AUTHENTIK_PATHS: &[&str] = bloud_common::authentik::NEVER_PREFIXED;

fn yes() -> bool {
    true
}

/// `http.middlewares.<name>.embed` as written in a route file.
///
/// ```yaml
/// embed:
///   prefix: /embed/actual-budget
///   exclude: ["/openid-cb"]
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EmbedConfig {
    /// Public path of the app, e.g. `/embed/adguard-home` (starts with `/`, no trailing `/`).
    pub prefix: String,
    /// Rewrite `Location`, `Content-Location`, `Refresh` and `Link` targets (default true).
    #[serde(default = "yes")]
    pub location: bool,
    /// Rewrite root-absolute URLs in `text/html` bodies (default true).
    #[serde(default = "yes")]
    pub html: bool,
    /// Rewrite `url(/x)` and `@import "/x"` in `text/css` bodies (default true).
    #[serde(default = "yes")]
    pub css: bool,
    /// `Set-Cookie`: `Path=/x` becomes `Path=<prefix>/x`, a `Domain` that is not the public
    /// host is dropped (default false: it breaks apps with root-level callbacks).
    #[serde(default)]
    pub cookie_path: bool,
    /// Root paths never prefixed (segment-exact: `/openid-cb` covers `/openid-cb?x` and
    /// `/openid-cb/x`, not `/openid-cbx`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Markup injected at the start of `<head>` of every rewritten HTML page.
    #[serde(default)]
    pub inject: Option<InjectConfig>,
    /// Put the run-time URL shim first in every full HTML document and serve it at
    /// `<prefix>/__bloud__/shim.<hash>.js` (default true; see [`super::shim`]).
    #[serde(default = "yes")]
    pub shim: bool,
}

/// What `inject` puts at the start of `<head>`, in this order: a
/// `<meta name="bloud-intercept-config" content="<JSON>">`, a `<script src>`, an inline
/// `<script>`. In `config` string values, `{{origin}}` becomes the public origin
/// (`http://bloud.local`) and `{{embedUrl}}` becomes origin + prefix.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InjectConfig {
    /// Any JSON/YAML value, rendered into the meta tag's `content`.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// URL of a script loaded synchronously (parser-blocking, so it runs before app code).
    #[serde(default)]
    pub src: Option<String>,
    /// Inline JavaScript source.
    #[serde(default)]
    pub script: Option<String>,
}

/// A validation failure, naming the key under `embed` and what to write instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmbedConfigError {
    #[error("embed.prefix {value:?}: {reason}")]
    Prefix { value: String, reason: &'static str },
    #[error("embed.exclude[{index}] {value:?}: {reason}")]
    Exclude {
        index: usize,
        value: String,
        reason: &'static str,
    },
    #[error("embed.inject: {reason}")]
    Inject { reason: &'static str },
}

impl EmbedConfig {
    /// A config with every default for `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        EmbedConfig {
            prefix: prefix.into(),
            location: true,
            html: true,
            css: true,
            cookie_path: false,
            exclude: Vec::new(),
            inject: None,
            shim: true,
        }
    }

    /// Checks the rules the docs promise; the error names the offending key.
    pub fn validate(&self) -> Result<(), EmbedConfigError> {
        let prefix_err = |reason| EmbedConfigError::Prefix {
            value: self.prefix.clone(),
            reason,
        };
        if !self.prefix.starts_with('/') {
            return Err(prefix_err("must start with `/`, e.g. /embed/my-app"));
        }
        if self.prefix.len() == 1 {
            return Err(prefix_err(
                "must not be `/`: name the app's path, e.g. /embed/my-app",
            ));
        }
        if self.prefix.ends_with('/') {
            return Err(prefix_err(
                "must not end with `/`: write /embed/my-app, not /embed/my-app/",
            ));
        }
        if let Some(reason) = path_problem(&self.prefix) {
            return Err(prefix_err(reason));
        }
        for (index, value) in self.exclude.iter().enumerate() {
            let err = |reason| EmbedConfigError::Exclude {
                index,
                value: value.clone(),
                reason,
            };
            if !value.starts_with('/') {
                return Err(err("must start with `/`, e.g. /openid-cb"));
            }
            if value == "/" {
                return Err(err(
                    "`/` would exclude every path: set location/html/css to false instead",
                ));
            }
            if let Some(reason) = path_problem(value) {
                return Err(err(reason));
            }
        }
        if let Some(inject) = &self.inject {
            if inject.config.is_none() && inject.src.is_none() && inject.script.is_none() {
                return Err(EmbedConfigError::Inject {
                    reason: "give at least one of config, src, script (or write inject: null)",
                });
            }
            if let Some(src) = &inject.src {
                if src.is_empty() || src.bytes().any(|b| b <= b' ' || b == b'"' || b == b'<') {
                    return Err(EmbedConfigError::Inject {
                        reason: "src must be a URL without spaces, quotes or `<`",
                    });
                }
            }
        }
        Ok(())
    }

    /// Validates and precomputes what the per-response code needs.
    pub fn compile(&self) -> Result<EmbedRewriter, EmbedConfigError> {
        self.validate()?;
        let lookahead = std::iter::once(self.prefix.len())
            .chain(self.exclude.iter().map(String::len))
            .chain(AUTHENTIK_PATHS.iter().map(|p| p.len()))
            .max()
            .unwrap_or(0)
            + 2;
        let inject = self.inject.as_ref().map(InjectTemplate::compile);
        let shim = self.shim.then(|| CompiledShim {
            path: super::shim::path_for(&self.prefix),
            tag: super::shim::tag(&self.prefix, &self.exclude, None, false).into(),
        });
        Ok(EmbedRewriter {
            inner: Arc::new(Inner {
                config: self.clone(),
                lookahead,
                inject,
                shim,
            }),
        })
    }
}

fn path_problem(path: &str) -> Option<&'static str> {
    if path
        .bytes()
        .any(|b| b <= b' ' || b == 0x7f || b"?#\\\"'<>`".contains(&b))
    {
        // Quotes and angle brackets too: the prefix is written into HTML attribute values.
        return Some(
            "must be a plain path: no spaces, control characters, quotes, `<`, `>`, `?`, `#` or `\\`",
        );
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Some("must not contain `.` or `..` segments");
    }
    if path.contains("//") {
        return Some("must not contain an empty segment (`//`)");
    }
    None
}

/// A compiled `embed` middleware: cheap to clone, shared by all responses of its routes.
#[derive(Debug, Clone)]
pub struct EmbedRewriter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: EmbedConfig,
    /// Bytes of a root-absolute path that decide whether it needs the prefix: longer than every
    /// pattern compared against it, so a truncated path is judged like the whole one.
    lookahead: usize,
    inject: Option<InjectTemplate>,
    shim: Option<CompiledShim>,
}

/// The shim's served path and its usual tag (no CSP attributes), built once per route.
#[derive(Debug)]
struct CompiledShim {
    path: String,
    tag: Arc<str>,
}

impl EmbedRewriter {
    pub fn config(&self) -> &EmbedConfig {
        &self.inner.config
    }

    pub fn prefix(&self) -> &str {
        &self.inner.config.prefix
    }

    pub(crate) fn lookahead(&self) -> usize {
        self.inner.lookahead
    }

    pub(crate) fn inject(&self) -> Option<&InjectTemplate> {
        self.inner.inject.as_ref()
    }

    /// `<prefix>/__bloud__/shim.<hash>.js` when the route injects the shim.
    pub fn shim_path(&self) -> Option<&str> {
        self.inner.shim.as_ref().map(|s| s.path.as_str())
    }

    /// The shim's tag for a response: the shared one, or one with the nonce or integrity the
    /// response's CSP asks for (the CSP headers are adapted here, see [`super::csp`]). `None`
    /// when the route has `shim: false`.
    pub fn shim_tag_for(&self, response_headers: &mut http::HeaderMap) -> Option<Arc<str>> {
        let shim = self.inner.shim.as_ref()?;
        let attrs = super::csp::adapt(response_headers, &super::shim::SHIM.sri);
        if attrs == super::csp::TagAttrs::default() {
            return Some(shim.tag.clone());
        }
        let cfg = &self.inner.config;
        Some(
            super::shim::tag(
                &cfg.prefix,
                &cfg.exclude,
                attrs.nonce.as_deref(),
                attrs.integrity,
            )
            .into(),
        )
    }

    /// The shared shim tag (no CSP attributes), for streams started without response headers.
    pub(crate) fn shim_tag(&self) -> Option<Arc<str>> {
        self.inner.shim.as_ref().map(|s| s.tag.clone())
    }

    /// Whether the root-absolute target `path` (starting with `/`, may carry `?query` or
    /// `#fragment`, may be cut after [`Self::lookahead`] bytes) must get the prefix.
    pub(crate) fn needs_prefix(&self, target: &[u8]) -> bool {
        if target.first() != Some(&b'/') {
            return false;
        }
        // `//host` and `/\host` both leave the origin (browsers read `\` as `/`).
        if matches!(target.get(1), Some(b'/') | Some(b'\\')) {
            return false;
        }
        let end = memchr::memchr2(b'?', b'#', target).unwrap_or(target.len());
        let path = &target[..end];
        let cfg = &self.inner.config;
        if segment_prefix(path, cfg.prefix.as_bytes()) {
            return false;
        }
        if cfg
            .exclude
            .iter()
            .any(|ex| segment_prefix(path, ex.as_bytes()))
        {
            return false;
        }
        !AUTHENTIK_PATHS
            .iter()
            .any(|p| segment_prefix(path, p.as_bytes()))
    }
}

/// `path` is `pattern` or lies below it on a segment boundary (`/a` covers `/a/b`, not `/ab`).
fn segment_prefix(path: &[u8], pattern: &[u8]) -> bool {
    path.starts_with(pattern)
        && (path.len() == pattern.len()
            || pattern.last() == Some(&b'/')
            || path[pattern.len()] == b'/')
}

/// The injected markup, split where the per-request origin goes.
#[derive(Debug)]
pub(crate) struct InjectTemplate {
    parts: Vec<InjectPart>,
}

#[derive(Debug)]
enum InjectPart {
    Text(String),
    Origin,
    EmbedUrl,
}

impl InjectTemplate {
    fn compile(inject: &InjectConfig) -> Self {
        let mut markup = String::new();
        if let Some(config) = &inject.config {
            // Value's Display is compact JSON and cannot fail.
            let json = config.to_string();
            markup.push_str(r#"<meta name="bloud-intercept-config" content=""#);
            markup.push_str(&escape_attribute(&json));
            markup.push_str("\">");
        }
        if let Some(src) = &inject.src {
            markup.push_str("<script src=\"");
            markup.push_str(&escape_attribute(src));
            markup.push_str("\"></script>");
        }
        if let Some(script) = &inject.script {
            markup.push_str("<script>");
            markup.push_str(&escape_script(script));
            markup.push_str("</script>");
        }
        let mut parts = Vec::new();
        let mut rest = markup.as_str();
        while let Some(at) = rest.find("{{") {
            let (token, part) = if rest[at..].starts_with("{{origin}}") {
                ("{{origin}}", InjectPart::Origin)
            } else if rest[at..].starts_with("{{embedUrl}}") {
                ("{{embedUrl}}", InjectPart::EmbedUrl)
            } else {
                parts.push(InjectPart::Text(rest[..at + 2].to_owned()));
                rest = &rest[at + 2..];
                continue;
            };
            parts.push(InjectPart::Text(rest[..at].to_owned()));
            parts.push(part);
            rest = &rest[at + token.len()..];
        }
        parts.push(InjectPart::Text(rest.to_owned()));
        InjectTemplate { parts }
    }

    /// Renders for one response. `origin` is `scheme://host[:port]` made only of URL-safe
    /// characters (see `Origins`), so it needs no escaping in an attribute or a script.
    pub(crate) fn render(&self, origin: &str, prefix: &str) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                InjectPart::Text(t) => out.push_str(t),
                InjectPart::Origin => out.push_str(origin),
                InjectPart::EmbedUrl => {
                    out.push_str(origin);
                    out.push_str(prefix);
                }
            }
        }
        out
    }
}

pub(crate) fn escape_attribute(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Keeps an inline script from closing its element early or opening a comment state.
fn escape_script(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut last = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'<' {
            let rest = &bytes[i + 1..];
            let closes = rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"/script");
            let comment = rest.starts_with(b"!--");
            if closes || comment {
                out.push_str(&s[last..i]);
                out.push_str("<\\");
                last = i + 1;
            }
        }
        i += 1;
    }
    out.push_str(&s[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<EmbedConfig, crate::config::yaml::YamlError> {
        let doc = crate::config::yaml::parse_document(yaml)?;
        Ok(doc.expect("test documents are not empty"))
    }

    #[test]
    fn defaults_match_the_design_example() {
        let cfg = parse("prefix: /embed/adguard-home").expect("valid yaml");
        assert_eq!(cfg, EmbedConfig::new("/embed/adguard-home"));
        assert!(cfg.location && cfg.html && cfg.css && !cfg.cookie_path);
    }

    #[test]
    fn full_config_parses() {
        let cfg = parse(
            "prefix: /embed/actual-budget\nlocation: true\nhtml: false\ncss: true\ncookiePath: true\n\
             exclude: [/openid-cb]\ninject:\n  config: {server: '{{embedUrl}}'}\n  script: 'x()'\n",
        )
        .expect("valid yaml");
        assert!(!cfg.html && cfg.cookie_path);
        assert_eq!(cfg.exclude, vec!["/openid-cb".to_string()]);
        assert!(cfg.compile().is_ok());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = parse("prefix: /embed/a\ncookiepath: true").expect_err("unknown key");
        assert!(err.to_string().contains("cookiepath"), "{err}");
        assert!(parse("prefix: /embed/a\ninject: {scrpt: x}").is_err());
    }

    #[test]
    fn prefix_rules() {
        for (prefix, needle) in [
            ("embed/a", "start with"),
            ("/embed/a/", "end with"),
            ("/", "must not be `/`"),
            ("/embed/a b", "plain path"),
            ("/embed/a\"b", "quotes"),
            ("/embed/a>b", "plain path"),
            ("/embed/../a", "segments"),
            ("/embed//a", "empty segment"),
        ] {
            let err = EmbedConfig::new(prefix).validate().expect_err(prefix);
            assert!(err.to_string().contains(needle), "{prefix}: {err}");
            assert!(err.to_string().starts_with("embed.prefix"), "{err}");
        }
    }

    #[test]
    fn exclude_rules_name_the_index() {
        let mut cfg = EmbedConfig::new("/embed/a");
        cfg.exclude = vec!["/ok".into(), "openid-cb".into()];
        let err = cfg.validate().expect_err("relative exclude");
        assert!(err.to_string().starts_with("embed.exclude[1]"), "{err}");
        cfg.exclude = vec!["/".into()];
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn empty_inject_is_an_error() {
        let cfg = parse("prefix: /embed/a\ninject: {}").expect("valid yaml");
        assert!(matches!(
            cfg.validate(),
            Err(EmbedConfigError::Inject { .. })
        ));
    }

    #[test]
    fn prefix_decision() {
        let mut cfg = EmbedConfig::new("/embed/app");
        cfg.exclude = vec!["/openid-cb".into(), "/raw/".into()];
        let rw = cfg.compile().expect("valid");
        let yes = [
            "/",
            "/x",
            "/embed/apple",
            "/embed",
            "/openid-cbx",
            "/raw",
            "/ifx",
        ];
        let no = [
            "//host/x",
            "/\\host",
            "/embed/app",
            "/embed/app/x",
            "/embed/app?q",
            "/embed/app#f",
            "/openid-cb",
            "/openid-cb?token=1",
            "/openid-cb/more",
            "/raw/x",
            "/outpost.goauthentik.io/start",
            "/application/o/authorize/",
            "/if/flow/login/",
            "x",
            "",
        ];
        for p in yes {
            assert!(rw.needs_prefix(p.as_bytes()), "{p} should get the prefix");
        }
        for p in no {
            assert!(!rw.needs_prefix(p.as_bytes()), "{p} should stay");
        }
    }

    /// The table the service worker's tests check too (web/test/sw-authentik-paths.test.ts): an
    /// app's link or redirect to one of these paths is prefixed by both sides or by neither.
    #[test]
    fn authentik_paths_are_prefixed_as_the_service_worker_rewrites_them() {
        let text = include_str!("../../../web/test/fixtures/authentik-path-examples.json");
        let doc: serde_json::Value = serde_json::from_str(text).expect("examples are JSON");
        let examples = doc["examples"].as_array().expect("an examples array");
        assert!(examples.len() > 10, "{examples:?}");
        let rw = EmbedConfig::new("/embed/app").compile().expect("valid");
        for ex in examples {
            let path = ex["path"].as_str().expect("path");
            let prefixed = ex["prefixed"].as_bool().expect("prefixed");
            assert_eq!(rw.needs_prefix(path.as_bytes()), prefixed, "{path}");
        }
        // A known entry of the shared list, and the one that apps share with Authentik.
        assert!(!rw.needs_prefix(b"/application/saml/app/sso/"));
        assert!(rw.needs_prefix(b"/static/app.js"));
    }

    #[test]
    fn inject_template_renders_origin_and_escapes() {
        let inject = InjectConfig {
            config: Some(serde_json::json!({"url": "{{embedUrl}}", "q": "a\"<b>"})),
            src: Some("/embed/a/shim.js".into()),
            script: Some("if (a</script>b) {} <!-- x".into()),
        };
        let t = InjectTemplate::compile(&inject);
        let html = t.render("http://bloud.local", "/embed/a");
        assert!(html.starts_with(r#"<meta name="bloud-intercept-config" content="{&quot;q&quot;:&quot;a\&quot;&lt;b&gt;&quot;,&quot;url&quot;:&quot;http://bloud.local/embed/a&quot;}">"#), "{html}");
        assert!(html.contains(r#"<script src="/embed/a/shim.js"></script>"#));
        assert!(
            html.ends_with(r"<script>if (a<\/script>b) {} <\!-- x</script>"),
            "{html}"
        );
    }
}

//! The `metadata.yaml` schema: upstream's fields plus our `routing.embed` block.
//!
//! Field names follow upstream's YAML keys (camelCase). `Serialize` produces the JSON shape that
//! upstream's `/api/apps` returns for a catalog entry: every upstream field is present (empty
//! strings, zeros and `null` where the metadata leaves it out), `routing` and `bootstrap` only
//! when set, and `traefikConfig` never (upstream's API model drops it too).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

/// One catalog entry (`apps/<name>/metadata.yaml`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppMeta {
    /// Identifier: directory name, route `/embed/<name>`, Nix option `bloud.apps.<name>`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    /// `productivity`, `media`, `security`, `network`, `infrastructure` (hidden from the store).
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub icon: String,
    #[serde(default)]
    pub screenshots: Option<Vec<String>>,
    #[serde(default)]
    pub version: String,
    /// Host port the app listens on (health checks and the proxy's service target).
    #[serde(default, serialize_with = "port_or_zero")]
    pub port: Option<u16>,
    #[serde(default)]
    pub is_system: bool,
    #[serde(default)]
    pub dependencies: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub resources: Resources,
    #[serde(default, deserialize_with = "null_default")]
    pub integrations: BTreeMap<String, Integration>,
    #[serde(default, deserialize_with = "null_default")]
    pub sso: Sso,
    #[serde(default)]
    pub default_config: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, deserialize_with = "null_default")]
    pub health_check: HealthCheck,
    #[serde(default, deserialize_with = "null_default")]
    pub docs: Docs,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<Bootstrap>,
    /// Raw proxy routes of a system app (Authentik's root-level routes). Kept for the NixOS
    /// layer, which writes them to their own route file; never part of the API.
    #[serde(default, skip_serializing)]
    pub traefik_config: Option<serde_json::Value>,
}

/// An explicit `null` (a key whose children are all commented out) counts as absent, as it
/// does for upstream's Go parser.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

fn port_or_zero<S: Serializer>(port: &Option<u16>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(port.unwrap_or(0))
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// MB.
    #[serde(default)]
    pub min_ram: u64,
    /// GB.
    #[serde(default)]
    pub min_disk: u64,
    #[serde(default)]
    pub gpu: bool,
}

/// A slot this app can fill with another app (`database`, `sso`, `downloadClient` …).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Integration {
    #[serde(default)]
    pub required: bool,
    /// Several installed providers may be used at once.
    #[serde(default)]
    pub multi: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub compatible: Vec<CompatibleApp>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct CompatibleApp {
    pub app: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub category: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How the app signs users in through Authentik.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoStrategy {
    None,
    NativeOidc,
    ForwardAuth,
    Ldap,
}

impl SsoStrategy {
    /// Parses upstream's strategy strings; `""` and `none` mean no SSO.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "" | "none" => Some(Self::None),
            "native-oidc" => Some(Self::NativeOidc),
            "forward-auth" => Some(Self::ForwardAuth),
            "ldap" => Some(Self::Ldap),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Sso {
    /// `native-oidc`, `forward-auth`, `ldap`, `none` or empty. Validated at load.
    #[serde(default)]
    pub strategy: String,
    #[serde(default)]
    pub callback_path: String,
    #[serde(default)]
    pub provider_name: String,
    #[serde(default)]
    pub user_creation: bool,
    /// Names of the container env vars that receive each SSO value.
    #[serde(default, deserialize_with = "null_default")]
    pub env: SsoEnv,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SsoEnv {
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    #[serde(default)]
    pub discovery_url: String,
    #[serde(default)]
    pub redirect_url: String,
    #[serde(default)]
    pub server_hostname: String,
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub provider_name: String,
    #[serde(default)]
    pub user_creation: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct HealthCheck {
    /// Polled at `http://127.0.0.1:<port><path>`; empty means no check.
    #[serde(default)]
    pub path: String,
    /// Seconds; 0 means the default (2).
    #[serde(default)]
    pub interval: u32,
    /// Seconds; 0 means the default (60).
    #[serde(default)]
    pub timeout: u32,
}

impl HealthCheck {
    pub const DEFAULT_INTERVAL_SECS: u32 = 2;
    pub const DEFAULT_TIMEOUT_SECS: u32 = 60;

    /// Interval in seconds with upstream's default applied.
    pub fn interval_secs(&self) -> u32 {
        if self.interval == 0 {
            Self::DEFAULT_INTERVAL_SECS
        } else {
            self.interval
        }
    }

    /// Timeout in seconds with upstream's default applied.
    pub fn timeout_secs(&self) -> u32 {
        if self.timeout == 0 {
            Self::DEFAULT_TIMEOUT_SECS
        } else {
            self.timeout
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Docs {
    #[serde(default)]
    pub homepage: String,
    #[serde(default)]
    pub source: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Routing {
    /// Response headers set on the app's routes (middleware `<app>-headers`).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub headers: BTreeMap<String, String>,
    /// Strip `/embed/<app>` before forwarding; absent means true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<bool>,
    /// Extra root-level routers for URLs the app insists on serving at the root.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub absolute_paths: Vec<AbsolutePath>,
    /// Bloud extension: settings of the proxy's `embed` rewriting for this app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed: Option<EmbedSettings>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct AbsolutePath {
    /// Proxy rule, copied verbatim (e.g. ``PathPrefix(`/openid`)``).
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub priority: u32,
    /// Response headers for this route only (replace the app's headers there).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub headers: BTreeMap<String, String>,
}

/// `routing.embed`: how bloud-proxy rewrites this app's responses so it stays inside
/// `/embed/<app>/`. Only used when the prefix is stripped. Every key is optional; absent keys take
/// the defaults below.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EmbedSettings {
    /// `false` turns server-side rewriting off for the app (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Rewrite Location, Content-Location, Refresh and Link targets (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<bool>,
    /// Rewrite root-absolute URLs in HTML (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<bool>,
    /// Rewrite `url(/x)` and `@import` in CSS (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub css: Option<bool>,
    /// Scope `Set-Cookie: Path=/…` to the prefix (default true: an app cookie at `Path=/` or
    /// `Path=/api` would otherwise be sent to the shell and every other app).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_path: Option<bool>,
    /// Root paths that must never get the prefix (e.g. Actual Budget's `/openid-cb`).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exclude: Vec<String>,
    /// Markup injected at the start of `<head>` of the app's HTML documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject: Option<EmbedInject>,
}

/// `routing.embed.inject`, passed to the proxy's `embed.inject` as is: a
/// `<meta name="bloud-intercept-config">` carrying `config` (`{{origin}}` and `{{embedUrl}}` are
/// filled in by the proxy), a `<script src>`, an inline `<script>`; each optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct EmbedInject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

impl EmbedSettings {
    pub fn enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }
    pub fn location(&self) -> bool {
        self.location.unwrap_or(true)
    }
    pub fn html(&self) -> bool {
        self.html.unwrap_or(true)
    }
    pub fn css(&self) -> bool {
        self.css.unwrap_or(true)
    }
    pub fn cookie_path(&self) -> bool {
        self.cookie_path.unwrap_or(true)
    }
}

/// Client-side pre-configuration consumed by the shell and its service worker.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrap {
    #[serde(default, rename = "indexedDB", skip_serializing_if = "Option::is_none")]
    pub indexed_db: Option<IndexedDb>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_storage: Option<LocalStorage>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct IndexedDb {
    #[serde(default)]
    pub database: String,
    /// Values returned on read (the app cannot overwrite them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intercepts: Vec<IndexedDbEntry>,
    /// Values written before the iframe loads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<IndexedDbEntry>,
    /// Legacy name for `writes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<IndexedDbEntry>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct IndexedDbEntry {
    #[serde(default)]
    pub store: String,
    #[serde(default)]
    pub key: String,
    /// Template: `{{embedUrl}}`, `{{origin}}`, `{{<app field>}}`.
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct LocalStorage {
    #[serde(default)]
    pub intercepts: Vec<LocalStorageIntercept>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalStorageIntercept {
    #[serde(default)]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_patch: Option<BTreeMap<String, serde_json::Value>>,
}

impl AppMeta {
    /// Parsed SSO strategy; an unrecognised string (rejected at load) counts as none.
    pub fn sso_strategy(&self) -> SsoStrategy {
        SsoStrategy::parse(&self.sso.strategy).unwrap_or(SsoStrategy::None)
    }

    /// Whether the proxy strips `/embed/<name>` before forwarding (default true).
    pub fn strip_prefix(&self) -> bool {
        self.routing
            .as_ref()
            .and_then(|r| r.strip_prefix)
            .unwrap_or(true)
    }

    /// The app's own response headers (`routing.headers`), empty when none.
    pub fn routing_headers(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.routing.as_ref().map(|r| &r.headers).unwrap_or(&EMPTY)
    }

    pub fn absolute_paths(&self) -> &[AbsolutePath] {
        self.routing
            .as_ref()
            .map(|r| r.absolute_paths.as_slice())
            .unwrap_or(&[])
    }

    /// Embed settings to emit, or `None` when the app gets no `embed` middleware: the prefix is
    /// kept (the app serves under `/embed/<name>` itself) or rewriting is switched off.
    pub fn embed_settings(&self) -> Option<EmbedSettings> {
        if !self.strip_prefix() {
            return None;
        }
        let settings = self
            .routing
            .as_ref()
            .and_then(|r| r.embed.clone())
            .unwrap_or_default();
        settings.enabled().then_some(settings)
    }

    /// Gets a route under `/embed/<name>`: not a system app and has a port.
    pub fn is_routable(&self) -> bool {
        !self.is_system && self.port.is_some_and(|p| p > 0)
    }
}

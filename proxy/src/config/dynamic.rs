//! Typed model of one dynamic (route) file: `http.routers`, `http.middlewares`, `http.services`.
//!
//! Only shape is checked here; references between items and rule syntax are checked when the
//! route table is compiled (`crate::table`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::yaml::Named;
use super::YamlDuration;

/// One route file. `K` is the type of item names: [`Named`] to keep each name's line for later
/// errors, or `String` when a parse error needs the full key path (serde_path_to_error cannot
/// name a key read through a span wrapper).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "K: Deserialize<'de> + ItemName"))]
pub struct DynamicFile<K = Named> {
    pub http: Option<HttpConfig<K>>,
    pub tls: Option<TlsConfig>,
}

impl<K> Default for DynamicFile<K> {
    fn default() -> Self {
        DynamicFile {
            http: None,
            tls: None,
        }
    }
}

/// Traefik's dynamic `tls` section: certificates for the TLS entry points.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsConfig {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub certificates: Vec<CertificateFiles>,
    pub stores: Option<TlsStores>,
}

/// `tls.certificates[]` and `defaultCertificate`: PEM files. A relative path is taken from the
/// directory of the file that names it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CertificateFiles {
    pub cert_file: String,
    pub key_file: String,
    /// Traefik's per-certificate store list; only `default` exists here.
    pub stores: Option<Vec<String>>,
}

/// `tls.stores`: only the `default` store exists (as in Traefik).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsStores {
    pub default: Option<TlsStore>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsStore {
    pub default_certificate: Option<CertificateFiles>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "K: Deserialize<'de> + ItemName"))]
pub struct HttpConfig<K = Named> {
    pub routers: Option<Section<K, RouterConfig>>,
    pub middlewares: Option<Section<K, MiddlewareConfig>>,
    pub services: Option<Section<K, ServiceConfig>>,
}

/// What a section's keys are: a plain name or a [`Named`] one.
pub trait ItemName {
    fn name(&self) -> &str;
}

impl ItemName for String {
    fn name(&self) -> &str {
        self
    }
}

impl ItemName for Named {
    fn name(&self) -> &str {
        &self.name
    }
}

/// The named items of one section in file order. A name written twice keeps only its last
/// definition, as serde_yaml's maps did.
#[derive(Debug, Clone)]
pub struct Section<K, T>(pub Vec<(K, T)>);

impl<'de, K, T> Deserialize<'de> for Section<K, T>
where
    K: Deserialize<'de> + ItemName,
    T: Deserialize<'de>,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<K, T>(std::marker::PhantomData<(K, T)>);
        impl<'de, K, T> serde::de::Visitor<'de> for Visit<K, T>
        where
            K: Deserialize<'de> + ItemName,
            T: Deserialize<'de>,
        {
            type Value = Section<K, T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of names")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items: Vec<(K, T)> = Vec::new();
                // Name → index, so a file of N routers loads in O(N log N), not O(N²).
                let mut seen: BTreeMap<String, usize> = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<K, T>()? {
                    match seen.get(k.name()) {
                        Some(&i) => items[i] = (k, v),
                        None => {
                            seen.insert(k.name().to_string(), items.len());
                            items.push((k, v));
                        }
                    }
                }
                Ok(Section(items))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouterConfig {
    pub rule: String,
    pub priority: Option<i64>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub middlewares: Vec<String>,
    pub service: String,
    pub entry_points: Option<Vec<String>>,
}

/// One middleware: exactly one of the fields must be set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MiddlewareConfig {
    pub strip_prefix: Option<StripPrefix>,
    pub strip_prefix_regex: Option<StripPrefixRegex>,
    pub add_prefix: Option<AddPrefix>,
    pub replace_path: Option<ReplacePath>,
    pub replace_path_regex: Option<ReplacePathRegex>,
    pub redirect_regex: Option<RedirectRegex>,
    pub redirect_scheme: Option<RedirectScheme>,
    pub headers: Option<Headers>,
    pub chain: Option<Chain>,
    pub forward_auth: Option<ForwardAuth>,
    pub embed: Option<crate::embed::EmbedConfig>,
    pub shell_cookies: Option<ShellCookies>,
}

impl MiddlewareConfig {
    /// Names of the middleware kinds that are set, in declaration order.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        macro_rules! kind {
            ($field:ident, $name:literal) => {
                if self.$field.is_some() {
                    k.push($name);
                }
            };
        }
        kind!(strip_prefix, "stripPrefix");
        kind!(strip_prefix_regex, "stripPrefixRegex");
        kind!(add_prefix, "addPrefix");
        kind!(replace_path, "replacePath");
        kind!(replace_path_regex, "replacePathRegex");
        kind!(redirect_regex, "redirectRegex");
        kind!(redirect_scheme, "redirectScheme");
        kind!(headers, "headers");
        kind!(chain, "chain");
        kind!(forward_auth, "forwardAuth");
        kind!(embed, "embed");
        kind!(shell_cookies, "shellCookies");
        k
    }
}

/// Bloud extension: cookies the shell owns, kept from the app (`middleware::shell_cookies`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ShellCookies {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StripPrefix {
    pub prefixes: Vec<String>,
    /// Deprecated Traefik v2 option; accepted and ignored (v3 behaviour).
    pub force_slash: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StripPrefixRegex {
    pub regex: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddPrefix {
    pub prefix: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplacePath {
    pub path: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplacePathRegex {
    pub regex: String,
    pub replacement: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedirectRegex {
    pub regex: String,
    pub replacement: String,
    #[serde(default)]
    pub permanent: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedirectScheme {
    pub scheme: String,
    pub port: Option<PortValue>,
    #[serde(default)]
    pub permanent: bool,
}

/// Traefik accepts the redirect port as a string or a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PortValue {
    Num(u16),
    Text(String),
}

impl PortValue {
    pub fn as_string(&self) -> String {
        match self {
            PortValue::Num(n) => n.to_string(),
            PortValue::Text(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Headers {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub custom_request_headers: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub custom_response_headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Chain {
    pub middlewares: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardAuth {
    pub address: String,
    #[serde(default)]
    pub trust_forward_header: bool,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub auth_response_headers: Vec<String>,
    pub auth_response_headers_regex: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub auth_request_headers: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub add_auth_cookies_to_response: Vec<String>,
    #[serde(default)]
    pub preserve_location_header: bool,
    #[serde(default)]
    pub preserve_request_method: bool,
    #[serde(default)]
    pub forward_body: bool,
    pub max_body_size: Option<i64>,
    pub max_response_body_size: Option<i64>,
    pub auth_signin_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceConfig {
    pub load_balancer: Option<LoadBalancer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadBalancer {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub servers: Vec<ServerConfig>,
    pub pass_host_header: Option<bool>,
    pub health_check: Option<HealthCheck>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerConfig {
    pub url: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    pub path: String,
    pub interval: Option<YamlDuration>,
    pub timeout: Option<YamlDuration>,
}

/// Treats an explicit `key:` with no value (YAML null) like an absent key.
fn null_as_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

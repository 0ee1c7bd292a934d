//! Web app manifests (`<link rel=manifest>`): `start_url`, `scope` and the icons' `src` are URLs
//! the browser uses when the app is installed or its icons are shown; root-absolute ones must
//! get the prefix like any link in the page.
//!
//! A manifest is JSON, so it cannot be rewritten as it streams: the body is held up to
//! [`MAX_MANIFEST`] bytes (real ones are a few KiB), rewritten at its end, and sent whole. A
//! larger body, or one that is not a JSON object, passes through unchanged (logged). A rewritten
//! manifest is written compactly with its keys in sorted order (same meaning, other bytes).
//!
//! Which responses are manifests: `Content-Type: application/manifest+json`, and a path ending
//! in `.webmanifest` or `/manifest.json` served as `application/json`, `text/plain` or
//! `application/octet-stream` (what static file servers send for those names). The
//! `rel=manifest` target of a page is not remembered across requests.

use bytes::Bytes;
use serde_json::Value;

use super::config::EmbedRewriter;
use super::location::Origins;

/// Bytes of manifest held at most; past it the body streams unchanged.
pub const MAX_MANIFEST: usize = 256 * 1024;

/// Whether a response with this `Content-Type` essence, for a request to `path`, is a manifest.
pub fn is_manifest(essence: &str, path: Option<&str>) -> bool {
    if essence.eq_ignore_ascii_case("application/manifest+json") {
        return true;
    }
    let generic = ["application/json", "text/plain", "application/octet-stream"]
        .iter()
        .any(|t| essence.eq_ignore_ascii_case(t));
    generic
        && path.is_some_and(|p| {
            ends_with_ignore_case(p, ".webmanifest") || ends_with_ignore_case(p, "/manifest.json")
        })
}

/// Without allocating (this runs for every JSON response of an embedded app).
fn ends_with_ignore_case(path: &str, suffix: &str) -> bool {
    let (p, s) = (path.as_bytes(), suffix.as_bytes());
    p.len() >= s.len() && p[p.len() - s.len()..].eq_ignore_ascii_case(s)
}

/// Holds one manifest body and rewrites it at its end.
#[derive(Debug)]
pub struct ManifestStream {
    rw: EmbedRewriter,
    origins: Origins,
    held: Vec<u8>,
    /// Too large: everything passes through.
    passing: bool,
}

impl ManifestStream {
    pub fn new(rw: EmbedRewriter, origins: Origins) -> Self {
        ManifestStream {
            rw,
            origins,
            held: Vec::new(),
            passing: false,
        }
    }

    pub fn write(&mut self, chunk: &[u8]) -> Bytes {
        if self.passing {
            return Bytes::copy_from_slice(chunk);
        }
        self.held.extend_from_slice(chunk);
        if self.held.len() <= MAX_MANIFEST {
            return Bytes::new();
        }
        tracing::info!(
            limit = MAX_MANIFEST,
            "embed: web app manifest larger than the limit passes through unchanged"
        );
        self.passing = true;
        Bytes::from(std::mem::take(&mut self.held))
    }

    pub fn finish(&mut self) -> Bytes {
        let held = std::mem::take(&mut self.held);
        if self.passing {
            return Bytes::new();
        }
        match rewrite_manifest(&self.rw, &self.origins, &held) {
            Some(new) => Bytes::from(new),
            None => Bytes::from(held),
        }
    }
}

/// The manifest with its URLs prefixed; `None` when nothing changed or it is not a JSON object.
pub fn rewrite_manifest(rw: &EmbedRewriter, origins: &Origins, body: &[u8]) -> Option<Vec<u8>> {
    let mut doc: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) => {
            tracing::debug!("embed: manifest is not a JSON object, passes through");
            return None;
        }
    };
    let mut changed = false;
    let mut url = |v: Option<&mut Value>| {
        if let Some(Value::String(s)) = v {
            if let Some(new) = rw.rewrite_url(s, origins) {
                *s = new;
                changed = true;
            }
        }
    };
    url(doc.get_mut("start_url"));
    url(doc.get_mut("scope"));
    // `id` is resolved against start_url's origin; only a root-absolute one needs the prefix
    // (a relative id stays relative, as the app wrote it).
    if doc
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|id| id.starts_with('/') && !id.starts_with("//"))
    {
        url(doc.get_mut("id"));
    }
    for list in ["icons", "screenshots"] {
        for item in items(&mut doc, list) {
            url(item.get_mut("src"));
        }
    }
    for shortcut in items(&mut doc, "shortcuts") {
        url(shortcut.get_mut("url"));
        for icon in items(shortcut, "icons") {
            url(icon.get_mut("src"));
        }
    }
    if !changed {
        return None;
    }
    serde_json::to_vec(&doc).ok()
}

/// The members of the array `key` of an object (none when it is missing or not an array).
fn items<'v>(doc: &'v mut Value, key: &str) -> impl Iterator<Item = &'v mut Value> {
    doc.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::EmbedConfig;
    use serde_json::json;

    fn rewrite(doc: Value) -> Option<Value> {
        let rw = EmbedConfig::new("/embed/app").compile().expect("valid");
        let origins = Origins::new("http", Some("bloud.local"), Some("127.0.0.1:8085"));
        let body = serde_json::to_vec(&doc).expect("json");
        rewrite_manifest(&rw, &origins, &body)
            .map(|b| serde_json::from_slice(&b).expect("rewritten manifest is JSON"))
    }

    #[test]
    fn manifest_urls_get_the_prefix() {
        // (manifest, manifest after; None = unchanged)
        let cases = [
            (
                json!({"name": "A", "start_url": "/", "scope": "/", "id": "/?home",
                       "display": "standalone"}),
                Some(
                    json!({"name": "A", "start_url": "/embed/app/", "scope": "/embed/app/",
                            "id": "/embed/app/?home", "display": "standalone"}),
                ),
            ),
            (
                json!({"icons": [{"src": "/i/192.png", "sizes": "192x192"}, {"src": "i/512.png"},
                                 {"src": "data:image/png;base64,AA"}],
                       "screenshots": [{"src": "http://bloud.local/s.png"}]}),
                Some(
                    json!({"icons": [{"src": "/embed/app/i/192.png", "sizes": "192x192"},
                                      {"src": "i/512.png"}, {"src": "data:image/png;base64,AA"}],
                            "screenshots": [{"src": "http://bloud.local/embed/app/s.png"}]}),
                ),
            ),
            (
                json!({"shortcuts": [{"name": "New", "url": "/new",
                                      "icons": [{"src": "/n.png"}]}]}),
                Some(
                    json!({"shortcuts": [{"name": "New", "url": "/embed/app/new",
                                           "icons": [{"src": "/embed/app/n.png"}]}]}),
                ),
            ),
            // The upstream's own address moves to the public origin.
            (
                json!({"start_url": "http://127.0.0.1:8085/app"}),
                Some(json!({"start_url": "http://bloud.local/embed/app/app"})),
            ),
            // Relative, already prefixed, other hosts and other keys stay.
            (
                json!({"start_url": ".", "scope": "/embed/app/", "id": "app",
                       "related_applications": [{"url": "/store"}],
                       "icons": [{"src": "https://cdn.example/i.png"}]}),
                None,
            ),
            (json!({"start_url": 5, "icons": "no"}), None),
            (json!(["/x"]), None),
        ];
        for (doc, want) in cases {
            assert_eq!(rewrite(doc.clone()), want, "{doc}");
        }
    }

    #[test]
    fn which_responses_are_manifests() {
        // (Content-Type essence, request path, manifest)
        let cases = [
            ("application/manifest+json", None, true),
            ("Application/Manifest+JSON", Some("/x"), true),
            (
                "application/json",
                Some("/embed/app/site.webmanifest"),
                true,
            ),
            (
                "application/octet-stream",
                Some("/embed/app/a.WEBMANIFEST"),
                true,
            ),
            ("application/json", Some("/embed/app/manifest.json"), true),
            ("application/json", Some("/embed/app/api/manifest"), false),
            (
                "application/json",
                Some("/embed/app/asset-manifest.json"),
                false,
            ),
            ("application/json", None, false),
            ("text/html", Some("/embed/app/site.webmanifest"), false),
        ];
        for (essence, path, want) in cases {
            assert_eq!(is_manifest(essence, path), want, "{essence} {path:?}");
        }
    }

    #[test]
    fn bodies_are_held_up_to_the_cap_then_pass_through() {
        let rw = EmbedConfig::new("/embed/app").compile().expect("valid");
        let mut s = ManifestStream::new(rw.clone(), Origins::default());
        let body = br#"{"start_url": "/", "name": "A"}"#;
        let (a, b) = body.split_at(10);
        assert!(s.write(a).is_empty(), "held until the end");
        assert!(s.write(b).is_empty());
        assert_eq!(
            &s.finish()[..],
            br#"{"name":"A","start_url":"/embed/app/"}"#
        );

        // Not JSON: the bytes come back as they were.
        let mut s = ManifestStream::new(rw.clone(), Origins::default());
        assert!(s.write(b"{\"start_url\": \"/\"").is_empty());
        assert_eq!(&s.finish()[..], b"{\"start_url\": \"/\"");

        // Over the cap: everything passes, in order, unchanged.
        let mut big = br#"{"start_url": "/", "pad": ""#.to_vec();
        big.resize(MAX_MANIFEST + 100, b'x');
        big.extend_from_slice(b"\"}");
        let mut s = ManifestStream::new(rw, Origins::default());
        let mut out = Vec::new();
        for chunk in big.chunks(64 * 1024) {
            out.extend_from_slice(&s.write(chunk));
        }
        out.extend_from_slice(&s.finish());
        assert_eq!(out, big);
    }
}

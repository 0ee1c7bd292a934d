//! The run-time URL shim (`proxy/assets/embed-shim.js`): what it is, where it is served and the
//! `<script>` tag that puts it first in an embedded app's HTML documents.
//!
//! The server-side rewrite only sees URLs written in markup and CSS; apps build many more in
//! JavaScript (`fetch('/api')`, webpack's `script.src = '/chunk.js'`). The shim patches the
//! browser APIs that take URLs so those stay under the app's prefix too, also where no service
//! worker can run (plain `http://` on a host name that is not localhost).
//!
//! It is served by the `embed` middleware itself at `<prefix>/__bloud__/shim.<hash>.js`: under
//! the app's prefix, so a CSP `'self'` allows it and neither the service worker nor the shim
//! move it; named by its content, so browsers cache it for a year and a new build gets a new
//! name. The bytes, their digest and the served headers are computed once per process.

use std::sync::LazyLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use sha2::{Digest, Sha256};

use super::config::escape_attribute;
use crate::middleware::LocalResponse;

/// The hand-written source, built into the binary (no npm step to build the proxy).
const SOURCE: &str = include_str!("../../assets/embed-shim.js");

/// Where the source takes Authentik's paths (an empty array until filled in here, so the file
/// also runs as is in a test page).
const NEVER_PREFIXED_SLOT: &str = "[/*NEVER_PREFIXED*/]";

/// Path segment under an app's prefix that the proxy answers itself.
pub const DIR: &str = "/__bloud__/";

/// The shim as served: bytes, file name, validators and its Subresource Integrity digest.
#[derive(Debug)]
pub struct Shim {
    pub body: Bytes,
    /// `shim.<10 hex digits of SHA-256>.js`.
    pub file: String,
    /// Strong ETag: the quoted hash.
    pub etag: HeaderValue,
    /// `sha256-<base64>`: the `integrity` attribute and a CSP hash source.
    pub sri: String,
}

/// Built on first use; the same for every route.
pub static SHIM: LazyLock<Shim> = LazyLock::new(Shim::build);

impl Shim {
    fn build() -> Shim {
        let list = serde_json::to_string(bloud_common::authentik::NEVER_PREFIXED)
            .unwrap_or_else(|_| "[]".to_string());
        let text = SOURCE.replacen(NEVER_PREFIXED_SLOT, &list, 1);
        let digest = Sha256::digest(text.as_bytes());
        let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
        let sri = format!("sha256-{}", base64(&digest));
        Shim {
            body: Bytes::from(text),
            etag: HeaderValue::from_str(&format!("\"{hex}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"shim\"")),
            file: format!("shim.{hex}.js"),
            sri,
        }
    }
}

/// `<prefix>/__bloud__/shim.<hash>.js`.
pub(crate) fn path_for(prefix: &str) -> String {
    format!("{prefix}{DIR}{}", SHIM.file)
}

/// The tag injected into documents. `exclude` goes in as JSON; a CSP may ask for a nonce or
/// an integrity attribute (see [`super::csp`]).
pub(crate) fn tag(
    prefix: &str,
    exclude: &[String],
    nonce: Option<&str>,
    integrity: bool,
) -> String {
    let mut tag = format!(
        "<script src=\"{}\" data-prefix=\"{}\"",
        escape_attribute(&path_for(prefix)),
        escape_attribute(prefix)
    );
    if !exclude.is_empty() {
        let json = serde_json::to_string(exclude).unwrap_or_else(|_| "[]".to_string());
        tag.push_str(" data-exclude=\"");
        tag.push_str(&escape_attribute(&json));
        tag.push('"');
    }
    if let Some(nonce) = nonce {
        tag.push_str(" nonce=\"");
        tag.push_str(&escape_attribute(nonce));
        tag.push('"');
    }
    if integrity {
        tag.push_str(" integrity=\"");
        tag.push_str(&SHIM.sri);
        tag.push('"');
    }
    tag.push_str("></script>");
    tag
}

/// The proxy's answer to a request for the shim: GET and HEAD (the body is left out for HEAD
/// by the caller), `304` when `If-None-Match` names the current version.
pub(crate) fn answer(method: &Method, headers: &HeaderMap) -> LocalResponse {
    let shim = &*SHIM;
    if method != Method::GET && method != Method::HEAD {
        let mut r = LocalResponse::text(405, "Method Not Allowed\n");
        r.headers
            .push((http::header::ALLOW, HeaderValue::from_static("GET, HEAD")));
        return r;
    }
    let cached = headers
        .get_all(http::header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t.as_bytes() == shim.etag.as_bytes());
    let mut headers = vec![
        (
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ),
        (http::header::ETAG, shim.etag.clone()),
    ];
    if cached {
        return LocalResponse {
            status: 304,
            headers,
            body: Bytes::new(),
        };
    }
    headers.push((
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    ));
    LocalResponse {
        status: 200,
        headers,
        body: shim.body.clone(),
    }
}

/// Standard base64 with padding (RFC 4648 §4), for the 32-byte digest.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzipped_size_is_at_most_4_kib() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&SHIM.body).expect("gzip in memory");
        let size = gz.finish().expect("gzip in memory").len();
        assert!(size <= 4096, "the shim is {size} bytes gzipped, over 4 KiB");
    }

    #[test]
    fn authentik_paths_are_filled_in() {
        assert_eq!(SOURCE.matches(NEVER_PREFIXED_SLOT).count(), 1);
        let text = std::str::from_utf8(&SHIM.body).expect("utf-8");
        assert!(!text.contains(NEVER_PREFIXED_SLOT));
        assert!(text.contains(r#""/outpost.goauthentik.io""#), "{text}");
    }

    #[test]
    fn name_and_integrity_follow_the_content() {
        let digest = Sha256::digest(&SHIM.body);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(SHIM.file, format!("shim.{}.js", &hex[..10]));
        assert_eq!(
            SHIM.etag.to_str().ok(),
            Some(format!("\"{}\"", &hex[..10]).as_str())
        );
        assert!(
            SHIM.sri.starts_with("sha256-") && SHIM.sri.len() == 7 + 44,
            "{}",
            SHIM.sri
        );
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(
            path_for("/embed/a"),
            format!("/embed/a/__bloud__/{}", SHIM.file)
        );
    }

    #[test]
    fn tag_carries_prefix_exclude_nonce_and_integrity() {
        let plain = tag("/embed/a", &[], None, false);
        assert_eq!(
            plain,
            format!(
                "<script src=\"/embed/a/__bloud__/{}\" data-prefix=\"/embed/a\"></script>",
                SHIM.file
            )
        );
        let full = tag("/embed/a", &["/openid-cb".into()], Some("r4nd\"om"), true);
        assert!(
            full.contains(r#" data-exclude="[&quot;/openid-cb&quot;]""#),
            "{full}"
        );
        assert!(full.contains(r#" nonce="r4nd&quot;om""#), "{full}");
        assert!(
            full.contains(&format!(" integrity=\"{}\"", SHIM.sri)),
            "{full}"
        );
    }

    /// (method, If-None-Match, status, body sent)
    #[test]
    fn serving_table() {
        let etag = SHIM.etag.to_str().expect("ascii").to_string();
        let cases: [(&str, Option<&str>, u16, bool); 7] = [
            ("GET", None, 200, true),
            ("HEAD", None, 200, true),
            ("GET", Some(etag.as_str()), 304, false),
            ("GET", Some(&*format!("\"other\", W/{etag}")), 304, false),
            ("GET", Some("*"), 304, false),
            ("GET", Some("\"other\""), 200, true),
            ("POST", None, 405, false),
        ];
        for (method, inm, status, body) in cases {
            let mut headers = HeaderMap::new();
            if let Some(v) = inm {
                headers.insert(
                    http::header::IF_NONE_MATCH,
                    HeaderValue::from_str(v).expect("value"),
                );
            }
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let r = answer(&method, &headers);
            assert_eq!(r.status, status, "{method} {inm:?}");
            assert_eq!(
                !r.body.is_empty() && r.status == 200,
                body,
                "{method} {inm:?}"
            );
            let get = |name: http::header::HeaderName| {
                r.headers
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
            };
            if status == 200 || status == 304 {
                assert_eq!(get(http::header::ETAG), Some(SHIM.etag.clone()));
                assert_eq!(
                    get(http::header::CACHE_CONTROL)
                        .as_ref()
                        .and_then(|v| v.to_str().ok()),
                    Some("public, max-age=31536000, immutable")
                );
            }
            if status == 200 {
                assert_eq!(
                    get(http::header::CONTENT_TYPE)
                        .as_ref()
                        .and_then(|v| v.to_str().ok()),
                    Some("text/javascript; charset=utf-8")
                );
                assert_eq!(r.body, SHIM.body);
            }
        }
    }
}

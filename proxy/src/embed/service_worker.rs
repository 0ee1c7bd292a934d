//! Refusing root-scoped service workers from embedded apps.
//!
//! A PWA inside `/embed/<app>/` that registers `/sw.js` (or `/service-worker.js`) with scope
//! `/` would replace Bloud's own worker for the whole origin. The shell registers
//! `/service-worker.js` from its own pages, so only requests made from an embedded page (its
//! `Referer` lies under `/embed/<app>`), and `/sw.js` fetched as a worker script
//! (`Service-Worker: script`), are refused.

use http::HeaderMap;

/// Status the proxy answers a refused request with.
pub const REFUSED_STATUS: u16 = 404;
/// Body of that answer (`text/plain`); a script body would be accepted as a worker.
pub const REFUSED_BODY: &str = "Service workers of embedded apps are disabled by Bloud.\n";

/// Whether a request must be refused. `path` is the request path without the query.
pub fn refuse_root_service_worker(path: &str, request_headers: &HeaderMap) -> bool {
    if path != "/sw.js" && path != "/service-worker.js" {
        return false;
    }
    let from_embedded_page = request_headers
        .get(http::header::REFERER)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .is_some_and(|r| is_embed_path(referer_path(r)));
    let worker_script = path == "/sw.js"
        && request_headers
            .get("service-worker")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"script"));
    from_embedded_page || worker_script
}

/// The path of a Referer (`http://host/p?q` or a bare `/p`).
fn referer_path(referer: &str) -> &str {
    let rest = match referer.find("://") {
        Some(i) => {
            let after = &referer[i + 3..];
            match after.find('/') {
                Some(j) => &after[j..],
                None => "/",
            }
        }
        None => referer,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// `/embed/<app>` or below it, with a non-empty app segment.
fn is_embed_path(path: &str) -> bool {
    path.strip_prefix("/embed/")
        .and_then(|rest| rest.split('/').next())
        .is_some_and(|app| !app.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn refused(path: &str, referer: Option<&'static str>, sw: bool) -> bool {
        let mut h = HeaderMap::new();
        if let Some(r) = referer {
            h.insert(http::header::REFERER, HeaderValue::from_static(r));
        }
        if sw {
            h.insert("service-worker", HeaderValue::from_static("script"));
        }
        refuse_root_service_worker(path, &h)
    }

    #[test]
    fn service_worker_table() {
        assert!(refused(
            "/sw.js",
            Some("http://bloud.local/embed/jellyseerr/"),
            false
        ));
        assert!(refused(
            "/service-worker.js",
            Some("http://bloud.local/embed/app/x?y"),
            true
        ));
        assert!(refused("/sw.js", Some("/embed/app"), false));
        assert!(
            refused("/sw.js", None, true),
            "a worker registration of /sw.js"
        );
        // Bloud's own shell registering its worker.
        assert!(!refused(
            "/service-worker.js",
            Some("http://bloud.local/apps/app/"),
            true
        ));
        assert!(!refused(
            "/service-worker.js",
            Some("http://bloud.local/"),
            false
        ));
        assert!(!refused("/service-worker.js", None, true));
        assert!(!refused("/sw.js", Some("http://bloud.local/embed/"), false));
        assert!(!refused(
            "/sw.js",
            Some("http://bloud.local/embedded/x/"),
            false
        ));
        assert!(!refused(
            "/embed/app/sw.js",
            Some("http://bloud.local/embed/app/"),
            true
        ));
        assert!(!refused(
            "/app.js",
            Some("http://bloud.local/embed/app/"),
            false
        ));
    }
}

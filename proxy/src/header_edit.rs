//! Header edits on Pingora's request and response headers as plain `http` header maps.
//!
//! Pingora keeps the spelling of every header name in a second map, and each insert through its
//! API parses the name again and copies it twice. With the dozen headers a proxied request gets
//! (`X-Forwarded-*`, `X-Real-Ip`, middleware edits) that was the largest cost bloud-proxy added
//! to a bare Pingora pass-through (callgrind: ~2 k instructions and two allocations per custom
//! header; docs/performance.md, "Hot path"). So the proxy takes the parts out, edits the
//! `HeaderMap` directly with names built once at start-up, and puts them back without the
//! spelling map. Pingora then writes common names in their usual spelling (`Host`,
//! `Content-Type`, `Set-Cookie`, …) and the others in lowercase, as HTTP/2 always does: field
//! names are case-insensitive (RFC 9110 §5.1), and Traefik, which this proxy replaces,
//! canonicalises them as well.

use pingora::http::{RequestHeader, ResponseHeader};

/// Runs `edit` on the request's parts. The request target survives byte for byte, including
/// targets the URI alone cannot reproduce (not UTF-8, absolute-form).
pub fn edit_request<R>(
    req: &mut RequestHeader,
    edit: impl FnOnce(&mut http::request::Parts) -> R,
) -> R {
    let raw_target = target_outside_uri(req);
    let end_stream = req.send_end_stream();
    let mut parts: http::request::Parts = std::mem::replace(req, empty_request()).into();
    let out = edit(&mut parts);
    *req = RequestHeader::from(parts);
    if let Some(raw) = raw_target {
        // These bytes were accepted as this request's target already, so they parse again.
        if let Err(e) = req.set_raw_path(&raw) {
            tracing::warn!(error = %e, "request target could not be restored after header edits");
        }
    }
    if let Some(end) = end_stream {
        req.set_send_end_stream(end);
    }
    out
}

/// Runs `edit` on the response's parts; a reason phrase other than the standard one is kept.
pub fn edit_response<R>(
    resp: &mut ResponseHeader,
    edit: impl FnOnce(&mut http::response::Parts) -> R,
) -> R {
    let reason = resp
        .get_reason_phrase()
        .filter(|r| Some(*r) != resp.status.canonical_reason())
        .map(str::to_owned);
    let mut parts: http::response::Parts = std::mem::replace(resp, empty_response()).into();
    let out = edit(&mut parts);
    *resp = ResponseHeader::from(parts);
    if reason.is_some() {
        // Only fails for phrases Pingora would not have stored in the first place.
        let _ = resp.set_reason_phrase(reason.as_deref());
    }
    out
}

/// The raw target when the URI would serialize to something else.
fn target_outside_uri(req: &RequestHeader) -> Option<Vec<u8>> {
    let from_uri = req
        .uri
        .path_and_query()
        .map(|p| p.as_str().as_bytes())
        .or_else(|| req.uri.authority().map(|a| a.as_str().as_bytes()))
        .unwrap_or_default();
    let raw = req.raw_path();
    (raw != from_uri || !req.raw_path_is_utf8()).then(|| raw.to_vec())
}

// Placeholders while the real header is out; neither allocates.
fn empty_request() -> RequestHeader {
    RequestHeader::from(http::Request::new(()).into_parts().0)
}

fn empty_response() -> ResponseHeader {
    ResponseHeader::from(http::Response::new(()).into_parts().0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    fn wire_request(req: &RequestHeader) -> Vec<u8> {
        let mut buf = Vec::new();
        buf.extend_from_slice(req.raw_path());
        buf.push(b'\n');
        req.header_to_h1_wire(&mut buf);
        buf
    }

    #[test]
    fn request_edits_land_and_keep_the_rest() {
        let mut req = RequestHeader::build("POST", b"/a/b?x=1", None).expect("header");
        req.insert_header("Host", "bloud.local").expect("host");
        req.insert_header("X-Custom", "1").expect("custom");
        req.set_version(http::Version::HTTP_11);
        edit_request(&mut req, |p| {
            p.headers.insert(
                http::HeaderName::from_static("x-forwarded-prefix"),
                HeaderValue::from_static("/embed/a"),
            );
            p.headers.remove("x-custom");
        });
        assert_eq!(req.method, http::Method::POST);
        assert_eq!(req.version, http::Version::HTTP_11);
        assert_eq!(req.raw_path(), b"/a/b?x=1");
        let wire = String::from_utf8(wire_request(&req)).expect("utf8");
        assert!(wire.contains("Host: bloud.local\r\n"), "{wire}");
        assert!(wire.contains("x-forwarded-prefix: /embed/a\r\n"), "{wire}");
        assert!(!wire.to_ascii_lowercase().contains("x-custom"), "{wire}");
    }

    #[test]
    fn request_target_that_is_not_utf8_survives() {
        let raw = b"/files/caf\xe9.txt?q=\xff";
        let mut req = RequestHeader::build("GET", raw, None).expect("header");
        assert!(!req.raw_path_is_utf8());
        edit_request(&mut req, |p| {
            p.headers
                .insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
        });
        assert_eq!(req.raw_path(), raw);
        assert!(!req.raw_path_is_utf8());
        assert!(req.headers.contains_key(http::header::ACCEPT));
    }

    #[test]
    fn response_edits_keep_status_and_a_custom_reason() {
        let mut resp = ResponseHeader::build(299, None).expect("header");
        resp.set_reason_phrase(Some("Fine Indeed")).expect("reason");
        resp.insert_header("X-Frame-Options", "DENY").expect("xfo");
        edit_response(&mut resp, |p| {
            p.headers.remove(http::header::X_FRAME_OPTIONS);
            p.headers.insert(
                http::HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            );
        });
        assert_eq!(resp.status.as_u16(), 299);
        assert_eq!(resp.get_reason_phrase(), Some("Fine Indeed"));
        assert!(resp.headers.get(http::header::X_FRAME_OPTIONS).is_none());
        assert_eq!(
            resp.headers
                .get("cross-origin-opener-policy")
                .map(|v| v.as_bytes()),
            Some(&b"same-origin"[..])
        );

        let mut ok = ResponseHeader::build(200, None).expect("header");
        edit_response(&mut ok, |_| {});
        assert_eq!(ok.get_reason_phrase(), Some("OK"));
    }
}

//! Entity tags of rewritten bodies, and revalidating them with an upstream that compares tags
//! as strings.
//!
//! A rewritten body is not the upstream's bytes, so its `ETag` goes out weak (`W/"x"`): the
//! browser may not use it for ranges. The browser then revalidates with
//! `If-None-Match: W/"x"`. RFC 9110 wants weak comparison there (so `W/"x"` matches `"x"`),
//! but many app servers compare the header's text with their own `"x"` and answer 200 every
//! time. So the request goes upstream with each weak tag followed by its strong form,
//! `W/"x", "x"`: a string-comparing server finds `"x"` in the list (most split the list), a
//! correct one matches either, and a server whose current tag is really weak still matches
//! the weak entry. The 304 that comes back carries the upstream's strong `"x"`; it is weakened
//! again when the client asked with the weak form, so the browser's stored tag stays weak.

use http::header::{ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue};

/// The entity tags of an `If-None-Match` list (`*` is kept as a tag of its own).
fn tags(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// `If-None-Match` with the strong form of each weak tag added after it, or `None` when the
/// list has no weak tag (the request goes upstream unchanged).
pub fn with_strong_forms(if_none_match: &[u8]) -> Option<HeaderValue> {
    let mut weak = false;
    let mut out = Vec::with_capacity(if_none_match.len() * 2);
    for tag in tags(if_none_match) {
        if !out.is_empty() {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(tag);
        if let Some(strong) = tag.strip_prefix(b"W/") {
            if strong.starts_with(b"\"") && !tags(if_none_match).any(|t| t == strong) {
                weak = true;
                out.extend_from_slice(b", ");
                out.extend_from_slice(strong);
            }
        }
    }
    if !weak {
        return None;
    }
    HeaderValue::from_bytes(&out).ok()
}

/// The request's `If-None-Match` edit for the upstream, if it needs one.
pub fn revalidation(request_headers: &HeaderMap) -> Option<HeaderValue> {
    let mut values = request_headers.get_all(IF_NONE_MATCH).iter();
    let first = values.next()?;
    if values.next().is_some() {
        // Several header lines: joined, so the list goes upstream as one.
        let joined: Vec<u8> = request_headers
            .get_all(IF_NONE_MATCH)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect::<Vec<_>>()
            .join(&b","[..]);
        return with_strong_forms(&joined);
    }
    with_strong_forms(first.as_bytes())
}

/// Makes a strong `ETag` weak (`"x"` → `W/"x"`); a weak one stays as it is.
pub fn weaken(headers: &mut HeaderMap) {
    let Some(etag) = headers.get(ETAG) else {
        return;
    };
    let bytes = etag.as_bytes();
    if bytes.starts_with(b"W/") {
        return;
    }
    let mut weak = b"W/".to_vec();
    weak.extend_from_slice(bytes);
    match HeaderValue::from_bytes(&weak) {
        Ok(v) => {
            headers.insert(ETAG, v);
        }
        Err(_) => {
            headers.remove(ETAG);
        }
    }
}

/// For a `304`: weakens its strong `ETag` when the client revalidated with the weak form of
/// that tag (it holds a rewritten body, whose tag must stay weak).
pub fn weaken_not_modified(request_headers: &HeaderMap, response_headers: &mut HeaderMap) {
    let Some(etag) = response_headers.get(ETAG) else {
        return;
    };
    let strong = etag.as_bytes();
    if strong.starts_with(b"W/") {
        return;
    }
    let held_weak = request_headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .any(|v| tags(v.as_bytes()).any(|t| t.strip_prefix(b"W/").is_some_and(|s| s == strong)));
    if held_weak {
        weaken(response_headers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_tags_get_their_strong_form_next_to_them() {
        // (If-None-Match from the browser, what goes upstream; None = unchanged)
        let cases: &[(&str, Option<&str>)] = &[
            (r#"W/"x""#, Some(r#"W/"x", "x""#)),
            (r#""x""#, None),
            ("*", None),
            (r#"W/"a",W/"b""#, Some(r#"W/"a", "a", W/"b", "b""#)),
            (r#" "a" , W/"b" "#, Some(r#""a", W/"b", "b""#)),
            // The strong form is there already: nothing to add.
            (r#"W/"x", "x""#, None),
            // Not a tag: left alone.
            ("W/x", None),
            ("", None),
        ];
        for (sent, want) in cases {
            let got = with_strong_forms(sent.as_bytes());
            assert_eq!(
                got.as_ref().map(|v| v.to_str().expect("ascii")),
                *want,
                "{sent}"
            );
        }
    }

    #[test]
    fn several_header_lines_are_joined() {
        let mut h = HeaderMap::new();
        h.append(IF_NONE_MATCH, HeaderValue::from_static(r#""a""#));
        h.append(IF_NONE_MATCH, HeaderValue::from_static(r#"W/"b""#));
        assert_eq!(revalidation(&h).expect("edited"), r#""a", W/"b", "b""#);
        assert!(revalidation(&HeaderMap::new()).is_none());
    }

    #[test]
    fn etags_are_weakened() {
        // (ETag before, ETag after)
        let cases = [(r#""x""#, Some(r#"W/"x""#)), (r#"W/"x""#, Some(r#"W/"x""#))];
        for (before, after) in cases {
            let mut h = HeaderMap::new();
            h.insert(ETAG, HeaderValue::from_static(before));
            weaken(&mut h);
            assert_eq!(h.get(ETAG).map(|v| v.to_str().expect("ascii")), after);
        }
    }

    #[test]
    fn a_304_is_weakened_only_for_a_client_holding_the_weak_tag() {
        // (client's If-None-Match, 304's ETag, ETag sent on)
        let cases = [
            (r#"W/"x", "x""#, r#""x""#, r#"W/"x""#),
            (r#"W/"x""#, r#""x""#, r#"W/"x""#),
            (r#""x""#, r#""x""#, r#""x""#),
            (r#"W/"y""#, r#""x""#, r#""x""#),
            (r#"W/"x""#, r#"W/"x""#, r#"W/"x""#),
        ];
        for (inm, etag, want) in cases {
            let mut req = HeaderMap::new();
            req.insert(IF_NONE_MATCH, HeaderValue::from_static(inm));
            let mut resp = HeaderMap::new();
            resp.insert(ETAG, HeaderValue::from_static(etag));
            weaken_not_modified(&req, &mut resp);
            assert_eq!(resp[ETAG], want, "{inm} / {etag}");
        }
    }
}

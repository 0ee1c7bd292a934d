//! `Location`, `Content-Location`, `Refresh` and `Link` rewriting: no panic on any value, a
//! rewritten value is a valid header value or is left alone, and a second pass changes nothing
//! (the rewritten target lies under the prefix, or on the public origin under the prefix).
#![no_main]

use bloud_proxy_fuzz::{origins, rewriter};
use http::header::{HeaderMap, HeaderValue, CONTENT_LOCATION, LINK, LOCATION};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let rw = rewriter(flags & !4);
    let origins = origins(flags);

    for value in text.split('\n') {
        if let Some(new) = rw.rewrite_url(value, &origins) {
            let again = rw.rewrite_url(&new, &origins);
            assert!(
                again.is_none(),
                "rewrite_url is not idempotent: {value:?} -> {new:?} -> {again:?}"
            );
        }
        if let Some(new) = rw.rewrite_refresh(value, &origins) {
            let again = rw.rewrite_refresh(&new, &origins);
            assert!(
                again.is_none(),
                "rewrite_refresh is not idempotent: {value:?} -> {new:?} -> {again:?}"
            );
        }
        if let Some(new) = rw.rewrite_link(value, &origins) {
            let again = rw.rewrite_link(&new, &origins);
            assert!(
                again.is_none(),
                "rewrite_link is not idempotent: {value:?} -> {new:?} -> {again:?}"
            );
        }

        // The path the proxy takes: the whole header map, values as the upstream sent them.
        let Ok(hv) = HeaderValue::from_str(value) else {
            continue;
        };
        let mut headers = HeaderMap::new();
        headers.append(LOCATION, hv.clone());
        headers.append(CONTENT_LOCATION, hv.clone());
        headers.append("refresh", hv.clone());
        headers.append(LINK, hv.clone());
        headers.append(LINK, hv);
        rw.rewrite_response_headers(&mut headers, &origins);
        for name in [LOCATION, CONTENT_LOCATION, LINK] {
            assert_eq!(
                headers.get_all(&name).iter().count(),
                if name == LINK { 2 } else { 1 },
                "rewriting changed how many {name} values there are"
            );
        }
    }
});

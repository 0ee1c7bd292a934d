//! `Set-Cookie` scoping: no panic on any value, the cookie's name=value is never touched, a
//! rewritten `Path` lies under the prefix, and a second pass changes nothing.
#![no_main]

use bloud_proxy_fuzz::{origins, rewriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let rw = rewriter((flags & !4) | 2);
    let origins = origins(flags);
    for value in text.split('\n') {
        let Some(new) = rw.rewrite_set_cookie(value, &origins) else {
            continue;
        };
        let name_value = value.split(';').next().unwrap_or_default();
        assert!(
            new.starts_with(name_value),
            "the cookie's name=value changed: {value:?} -> {new:?}"
        );
        let again = rw.rewrite_set_cookie(&new, &origins);
        assert!(
            again.is_none(),
            "rewrite_set_cookie is not idempotent: {value:?} -> {new:?} -> {again:?}"
        );
    }
});

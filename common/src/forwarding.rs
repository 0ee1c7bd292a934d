//! Forwarding headers: what a client or proxy says about the original client or request.
//!
//! bloud-proxy removes them from requests of peers it does not trust, before it sets its own;
//! bloud-agent treats a loopback request that carries any of them as coming through a proxy, so
//! it is not the local CLI. One list, so that a header the proxy lets through from a trusted peer
//! can never make a request look local to the agent.

/// Lower case, as `http::HeaderName::as_str` gives names: the proxy compares with `==`.
pub const HEADERS: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-prefix",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-ssl",
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "x-client-ip",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_header_tokens_without_duplicates() {
        for (i, name) in HEADERS.iter().enumerate() {
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name:?} would never equal a parsed header name"
            );
            assert!(!HEADERS[..i].contains(name), "{name} listed twice");
        }
    }
}

//! Small HTML pages for answers the proxy writes itself (404, 502, 504, …).

use bytes::Bytes;

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A short page: status line, and which router (if any) handled the request.
pub fn page(status: u16, router: Option<&str>, detail: &str) -> Bytes {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let router_line = match router {
        Some(r) => format!("<p>Router: <code>{}</code></p>\n", escape_html(r)),
        None => String::new(),
    };
    Bytes::from(format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{status} {reason}</title></head>\n<body><h1>{status} {reason}</h1>\n<p>{}</p>\n{router_line}<p><small>bloud-proxy</small></p></body></html>\n",
        escape_html(detail)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_router_and_escapes() {
        let p = page(502, Some("miniflux-backend"), "upstream <down>");
        let s = String::from_utf8_lossy(&p);
        assert!(s.contains("502 Bad Gateway"));
        assert!(s.contains("miniflux-backend"));
        assert!(s.contains("upstream &lt;down&gt;"));
    }
}

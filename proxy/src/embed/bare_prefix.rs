//! `/embed/<app>` without its trailing slash. The agent's rule routes it to the app (stripPrefix
//! makes it `/`), but the browser resolves the page's relative URLs (`css/style.css`) against
//! `/embed/`, outside the app. So the `embed` middleware answers it with a redirect to
//! `/embed/<app>/` itself, for every app, before the upstream is asked.

/// Status of the redirect: permanent, and the method and body are kept (a form posted to the
/// bare prefix is posted again to the right place).
pub const STATUS: u16 = 308;

/// `Location` for a request whose path (as the client sent it, before stripPrefix) is exactly
/// the prefix; `None` for any other path. The query is kept.
pub fn redirect_target(prefix: &str, path: &str, query: Option<&str>) -> Option<String> {
    if path != prefix {
        return None;
    }
    Some(match query {
        Some(q) => format!("{prefix}/?{q}"),
        None => format!("{prefix}/"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bare_prefix_is_redirected() {
        // (path as sent, query, Location)
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            ("/embed/app", None, Some("/embed/app/")),
            (
                "/embed/app",
                Some("a=1&b=%2F"),
                Some("/embed/app/?a=1&b=%2F"),
            ),
            ("/embed/app", Some(""), Some("/embed/app/?")),
            ("/embed/app/", None, None),
            ("/embed/app/x", None, None),
            ("/embed/apple", None, None),
            ("/embed/APP", None, None),
            ("/embed", None, None),
            ("/", None, None),
        ];
        for (path, query, want) in cases {
            assert_eq!(
                redirect_target("/embed/app", path, *query).as_deref(),
                *want,
                "{path} {query:?}"
            );
        }
    }
}

//! Authentik's root routes, read at build time from `web/src/sw/authentik-paths.json`, the file
//! the service worker imports: the shell and the proxy cannot disagree on them.

/// One entry of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthentikPath {
    /// A root path (`/if`); covers itself and everything below it on a segment boundary.
    pub path: &'static str,
    /// The service worker leaves requests there alone even when the requesting page is an app's.
    pub never_client_rewritten: bool,
    /// Apps serve their own files there too (`/static`), so an app's URL there is the app's.
    pub shared_with_apps: bool,
}

/// Every entry, in the file's order.
pub const PATHS: &[AuthentikPath] = include!(concat!(env!("OUT_DIR"), "/authentik_paths.rs"));

/// The paths that are Authentik's alone: a root-absolute URL there in an embedded app's page or
/// redirect is meant for Authentik (forward-auth, OIDC, SAML), so the embed rewriter never moves
/// it under the app's prefix. Entries that apps share are left out: there the URL is the app's.
pub const NEVER_PREFIXED: &[&str] =
    include!(concat!(env!("OUT_DIR"), "/authentik_never_prefixed.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> Option<&'static AuthentikPath> {
        PATHS.iter().find(|p| p.path == path)
    }

    #[test]
    fn the_shared_file_is_what_the_constants_hold() {
        let outpost = entry("/outpost.goauthentik.io").expect("forward-auth outpost listed");
        assert!(outpost.never_client_rewritten && !outpost.shared_with_apps);
        let static_files = entry("/static").expect("Authentik's assets listed");
        assert!(static_files.shared_with_apps);
        assert!(NEVER_PREFIXED.contains(&"/application"));
        assert!(NEVER_PREFIXED.contains(&"/outpost.goauthentik.io"));
        assert!(
            !NEVER_PREFIXED.contains(&"/static"),
            "apps' own /static URLs must keep getting their prefix"
        );
        assert_eq!(
            NEVER_PREFIXED.len(),
            PATHS.iter().filter(|p| !p.shared_with_apps).count()
        );
    }

    /// The list is only right while the proxy sends each path to Authentik: the catalog entry
    /// that writes Authentik's routers must route every one of them.
    #[test]
    fn every_path_is_routed_to_authentik_by_the_catalog() {
        let metadata = include_str!("../../apps/authentik/metadata.yaml");
        for p in PATHS {
            assert!(
                metadata.contains(&format!("rule: \"PathPrefix(`{}`)\"", p.path)),
                "apps/authentik/metadata.yaml has no router for {}",
                p.path
            );
        }
    }
}

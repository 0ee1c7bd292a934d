//! Authentik, when it is installed: the blueprints that configure it for the installed apps
//! (docs/sso.md, "When Authentik is installed").
//!
//! bloud-agent is the box's OpenID Connect provider; Authentik is optional. A box that installs
//! the `authentik` app gets what upstream Bloud gave it: per app an Authentik blueprint, which
//! Authentik's worker applies from `<dataDir>/authentik-blueprints` (mounted at
//! `/blueprints/custom` by `apps/authentik/module.nix`).
//!
//! - [`blueprints::generate`]: the files for the installed apps; deterministic.
//! - [`write_dir`]: writes them, removes the ones this agent wrote that are no longer wanted.
//! - [`client_secret`]: the OAuth2 client secret of an app, derived from the box's SSO secret.

pub mod blueprints;
mod secret;
mod write;

pub use blueprints::{
    generate, BlueprintSettings, Blueprints, GENERATED_MARKER, LDAP_FILE, OUTPOST_FILE,
};
pub use secret::{client_secret, load_or_create_host_secret, HOST_SECRET_FILE};
pub use write::write_dir;

/// `<dataDir>/authentik-blueprints`: where `apps/authentik/module.nix` mounts blueprints from.
pub const BLUEPRINTS_DIR: &str = "authentik-blueprints";

/// Rewrites `<dataDir>/authentik-blueprints` for the installed apps (removes the agent's files
/// when Authentik is not installed). Called wherever the proxy routes are regenerated: at start,
/// after every install and uninstall.
pub fn regenerate(service: &crate::service::Service) -> Result<bool, String> {
    let installed = service.installed().map_err(|e| e.to_string())?;
    let dir = service.config.data_dir.join(BLUEPRINTS_DIR);
    let files = if installed.contains("authentik") {
        let host_secret =
            load_or_create_host_secret(&service.config.data_dir).map_err(|e| e.to_string())?;
        let catalog = service.catalog();
        let public_url = service.config.public_url.trim_end_matches('/');
        generate(
            &catalog,
            &installed,
            &BlueprintSettings {
                public_url,
                authentik_url: public_url,
                host_secret: &host_secret,
            },
        )
    } else {
        Blueprints::new()
    };
    write_dir(&dir, &files).map_err(|e| format!("authentik blueprints in {}: {e}", dir.display()))
}

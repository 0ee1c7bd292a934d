//! OAuth2 client secrets for the Authentik providers: derived per app from one random secret of
//! the box, so the blueprint and whatever hands the secret to the app agree without storing one
//! secret per app, and reinstalling an app gives it the same secret.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use sha2::Sha256;

/// `<dataDir>/sso-host-secret`: 32 random bytes, hex, mode 0600, created once.
pub const HOST_SECRET_FILE: &str = "sso-host-secret";

/// The client secret of `app`: HKDF-SHA256 of the host secret with info
/// `oauth-client-secret:<app>`, 32 bytes, base64url without padding (upstream's derivation, and
/// no `=`, which some clients URL-encode in client_secret_basic while Authentik does not decode).
pub fn client_secret(host_secret: &[u8], app: &str) -> String {
    let hk = Hkdf::<Sha256>::new(None, host_secret);
    let mut out = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so expand cannot fail.
    if hk
        .expand(format!("oauth-client-secret:{app}").as_bytes(), &mut out)
        .is_err()
    {
        unreachable!("HKDF-SHA256 expands to 32 bytes");
    }
    URL_SAFE_NO_PAD.encode(out)
}

/// Reads `<data_dir>/sso-host-secret`, creating it (32 random bytes, hex) when missing.
pub fn load_or_create_host_secret(data_dir: &Path) -> io::Result<Vec<u8>> {
    let path = data_dir.join(HOST_SECRET_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let text = text.trim();
            if text.len() < 32 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: holds {} characters, expected at least 32; delete it to make a new one \
                         (apps configured through Authentik then need their new client secrets)",
                        path.display(),
                        text.len()
                    ),
                ));
            }
            return Ok(text.as_bytes().to_vec());
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("random bytes: {e}")))?;
    let text = hex::encode(bytes);
    fs::create_dir_all(data_dir)?;
    // create_new: two writers at once keep the first one's secret.
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut f) => {
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            Ok(text.into_bytes())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_or_create_host_secret(data_dir),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

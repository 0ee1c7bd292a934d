//! The box-local CA (docs/agent.md "HTTPS"): created once and kept across restarts, a server
//! certificate that `openssl verify` accepts for the box's names (name constraints included),
//! renewal near expiry and when the names change, file modes, the CA download, `Secure`
//! cookies only over HTTPS, and the redirect switch.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bloud_agent::config::Config;
use bloud_agent::tls;
use common::*;
use time::OffsetDateTime;

fn tls_config(dirs: &Dirs) -> Config {
    let mut c = config(dirs, &["true"], Duration::from_millis(50));
    c.tls.enabled = true;
    c.tls.names = vec!["nas.home.arpa".into()];
    c.tls.addresses = Some(vec!["192.168.50.7".parse().unwrap()]);
    c.tls.https_port = 8443;
    c
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// The `certFile` and `keyFile` `tls.yml` names (the certificates entry).
fn tls_yml_pair(routes: &Path) -> (String, String) {
    let text = std::fs::read_to_string(routes.join(tls::TLS_FILE)).unwrap();
    let value = |key: &str| {
        let line = text.lines().find(|l| l.contains(key)).unwrap();
        serde_json::from_str::<String>(line.split_once(": ").unwrap().1.trim()).unwrap()
    };
    (value("certFile"), value("keyFile"))
}

/// `openssl verify` with the box's CA as the only trust anchor, for `host` or `ip`.
fn openssl_verify(ca: &Path, leaf: &Path, check: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ca)
        .args(check)
        .arg(leaf)
        .output()
        .expect("openssl is installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn the_ca_is_created_once_and_kept_across_restarts() {
    let dirs = Dirs::new();
    write_catalog(&dirs.path("apps"), &[]);
    let cfg = tls_config(&dirs);
    let running = bloud_agent::server::start(cfg.clone()).await.unwrap();
    let base = base_of(&running);

    // The download, as a browser gets it.
    let r = client()
        .get(format!("{base}/api/tls/ca.crt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-x509-ca-cert");
    let pem = r.text().await.unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let der = client()
        .get(format!("{base}/api/tls/ca.der"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let info = tls::CertInfo::from_pem(&pem).unwrap();
    assert_eq!(info.der, der.to_vec());
    assert!(info.common_name.starts_with("Bloud local CA "));
    let status: serde_json::Value = client()
        .get(format!("{base}/api/tls/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["ca"]["fingerprintSha256"], info.fingerprint());
    assert_eq!(status["https"], false);
    assert_eq!(status["httpsPort"], 8443);
    let years = (info.not_after - OffsetDateTime::now_utc()).whole_days();
    assert!((3640..=3650).contains(&years), "{years} days");

    // Modes: the CA key only for the agent; the proxy's key for its group.
    let ca_dir = cfg.tls.dir.clone();
    assert_eq!(mode(&ca_dir), 0o700);
    assert_eq!(mode(&ca_dir.join(tls::CA_KEY_FILE)), 0o600);
    let (cert_file, key_file) = tls_yml_pair(&cfg.routes_dir);
    assert_eq!(mode(Path::new(&key_file)), 0o640);
    assert_eq!(mode(Path::new(&cert_file)), 0o644);
    assert!(!std::fs::read_dir(&cfg.routes_dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("ca.key")));
    let leaf_before = std::fs::read(&cert_file).unwrap();
    running.shutdown().await;

    // Restart: same CA, same certificate (nothing to renew), same files.
    let running = bloud_agent::server::start(cfg.clone()).await.unwrap();
    let pem2 = client()
        .get(format!("{}/api/tls/ca.crt", base_of(&running)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(pem, pem2, "a restart must not replace the CA users trusted");
    let (cert_file2, _) = tls_yml_pair(&cfg.routes_dir);
    assert_eq!(cert_file, cert_file2);
    assert_eq!(std::fs::read(&cert_file2).unwrap(), leaf_before);
    running.shutdown().await;
}

#[test]
fn the_certificate_verifies_for_the_box_names_and_only_those() {
    let dirs = Dirs::new();
    let cfg = tls_config(&dirs);
    let now = OffsetDateTime::now_utc();
    let r = tls::refresh(&cfg, Some("nas"), now).unwrap();
    let (cert_file, _) = tls_yml_pair(&cfg.routes_dir);
    let ca = tls::ca_cert_path(&cfg.tls.dir);
    for name in [
        "bloud.local",
        "nas",
        "nas.local",
        "localhost",
        "nas.home.arpa",
    ] {
        let (ok, text) = openssl_verify(&ca, Path::new(&cert_file), &["-verify_hostname", name]);
        assert!(ok, "{name}: {text}");
    }
    for ip in ["192.168.50.7", "127.0.0.1", "::1"] {
        let (ok, text) = openssl_verify(&ca, Path::new(&cert_file), &["-verify_ip", ip]);
        assert!(ok, "{ip}: {text}");
    }
    let (ok, _) = openssl_verify(
        &ca,
        Path::new(&cert_file),
        &["-verify_hostname", "example.com"],
    );
    assert!(!ok, "the certificate must not be valid for other hosts");
    let days = (r.not_after - now).whole_days();
    assert!((89..=90).contains(&days), "{days}");
}

#[test]
fn a_stolen_ca_key_cannot_vouch_for_internet_names() {
    // What the name constraints are for: a certificate the CA signs for a public name is
    // refused by a verifier that trusts the CA.
    let dirs = Dirs::new();
    let mut cfg = tls_config(&dirs);
    tls::refresh(&cfg, Some("nas"), OffsetDateTime::now_utc()).unwrap();
    // The same CA asked to cover a public name and a public address: left out.
    cfg.tls.names = vec!["nas.home.arpa".into(), "bank.example.com".into()];
    cfg.tls.addresses = Some(vec![
        "192.168.50.7".parse().unwrap(),
        "8.8.8.8".parse().unwrap(),
    ]);
    let r = tls::refresh(&cfg, Some("nas"), OffsetDateTime::now_utc()).unwrap();
    assert!(!r.dns_names.contains("bank.example.com"));
    assert!(!r.addresses.contains(&"8.8.8.8".parse().unwrap()));
    // And the CA certificate itself says so to clients: sign one by hand with openssl.
    let ca = tls::ca_cert_path(&cfg.tls.dir);
    let key = cfg.tls.dir.join(tls::CA_KEY_FILE);
    let d = dirs.path("forged");
    std::fs::create_dir_all(&d).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "k.pem",
        "-subj",
        "/CN=bank.example.com",
        "-addext",
        "subjectAltName=DNS:bank.example.com",
        "-out",
        "r.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "r.csr",
        "-CA",
        ca.to_str().unwrap(),
        "-CAkey",
        key.to_str().unwrap(),
        "-copy_extensions",
        "copy",
        "-days",
        "30",
        "-out",
        "forged.pem",
    ]);
    let (ok, text) = openssl_verify(
        &ca,
        &d.join("forged.pem"),
        &["-verify_hostname", "bank.example.com"],
    );
    assert!(
        !ok,
        "a certificate for a public name must fail verification: {text}"
    );
    assert!(
        text.contains("name constraint") || text.contains("permitted subtree"),
        "{text}"
    );
}

#[test]
fn renewal_near_expiry_and_when_names_change_and_not_otherwise() {
    let dirs = Dirs::new();
    let mut cfg = tls_config(&dirs);
    let t0 = OffsetDateTime::now_utc();
    let first = tls::refresh(&cfg, Some("nas"), t0).unwrap();
    assert!(first.renewed.is_some() && first.proxy_files_changed);
    let (cert0, key0) = tls_yml_pair(&cfg.routes_dir);

    // A day later: nothing to do, nothing rewritten.
    let same = tls::refresh(&cfg, Some("nas"), t0 + time::Duration::days(1)).unwrap();
    assert_eq!(same.renewed, None);
    assert!(!same.proxy_files_changed);
    assert_eq!(tls_yml_pair(&cfg.routes_dir), (cert0.clone(), key0.clone()));

    // 61 days later (29 left): renewed, new files, old ones gone, tls.yml points at the new.
    let t1 = t0 + time::Duration::days(61);
    let renewed = tls::refresh(&cfg, Some("nas"), t1).unwrap();
    assert!(
        renewed.renewed.as_deref().unwrap().contains("expires"),
        "{renewed:?}"
    );
    assert!(renewed.proxy_files_changed);
    let (cert1, key1) = tls_yml_pair(&cfg.routes_dir);
    assert_ne!(cert1, cert0);
    assert!(!Path::new(&cert0).exists() && !Path::new(&key0).exists());
    assert!(Path::new(&cert1).exists() && Path::new(&key1).exists());
    assert_eq!(mode(Path::new(&key1)), 0o640);
    assert!((renewed.not_after - t1).whole_days() >= 89);

    // A new address on the LAN: renewed at once, covering it.
    cfg.tls.addresses = Some(vec!["192.168.50.8".parse().unwrap()]);
    let moved = tls::refresh(&cfg, Some("nas"), t1).unwrap();
    assert!(
        moved.renewed.as_deref().unwrap().contains("changed"),
        "{moved:?}"
    );
    let (cert2, _) = tls_yml_pair(&cfg.routes_dir);
    let at = t1.unix_timestamp().to_string();
    let (ok, text) = openssl_verify(
        &tls::ca_cert_path(&cfg.tls.dir),
        Path::new(&cert2),
        &["-attime", &at, "-verify_ip", "192.168.50.8"],
    );
    assert!(ok, "{text}");
    // The CA stayed the same throughout.
    assert_eq!(first.ca_fingerprint, moved.ca_fingerprint);
}

#[test]
fn a_damaged_ca_is_an_error_not_a_silent_new_ca() {
    let dirs = Dirs::new();
    let cfg = tls_config(&dirs);
    tls::refresh(&cfg, Some("nas"), OffsetDateTime::now_utc()).unwrap();
    let ca_before = std::fs::read(tls::ca_cert_path(&cfg.tls.dir)).unwrap();
    std::fs::remove_file(cfg.tls.dir.join(tls::CA_KEY_FILE)).unwrap();
    let e = tls::refresh(&cfg, Some("nas"), OffsetDateTime::now_utc()).unwrap_err();
    assert!(e.to_string().contains("ca.key"), "{e}");
    assert_eq!(
        std::fs::read(tls::ca_cert_path(&cfg.tls.dir)).unwrap(),
        ca_before
    );
}

/// `bloud_session=...` Set-Cookie of an answer.
fn set_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("bloud_session="))
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn cookies_are_secure_over_https_only_and_the_redirect_needs_https() {
    let dirs = Dirs::new();
    write_catalog(&dirs.path("apps"), &[]);
    let cfg = tls_config(&dirs);
    let running = bloud_agent::server::start(cfg.clone()).await.unwrap();
    let base = base_of(&running);
    let creds = serde_json::json!({"username": "alice", "password": "correct horse"});
    // As the proxy forwards a request from its plain-HTTP entry point.
    let r = client()
        .post(format!("{base}/api/setup/create-user"))
        .header("x-forwarded-proto", "http")
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let plain = set_cookie(&r);
    assert!(!plain.contains("Secure"), "{plain}");
    let session = plain.split(';').next().unwrap().to_string();
    // From its HTTPS entry point.
    let r = client()
        .post(format!("{base}/api/auth/login"))
        .header("x-forwarded-proto", "https")
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(set_cookie(&r).contains("; Secure"), "{}", set_cookie(&r));

    // The redirect cannot be turned on from a page loaded over HTTP.
    let put = |proto: &'static str, on: bool| {
        client()
            .put(format!("{base}/api/tls/redirect"))
            .header("cookie", &session)
            .header("x-forwarded-proto", proto)
            .json(&serde_json::json!({ "enabled": on }))
            .send()
    };
    assert_eq!(put("http", true).await.unwrap().status(), 409);
    assert!(!cfg.routes_dir.join(tls::REDIRECT_FILE).exists());
    assert_eq!(put("https", true).await.unwrap().status(), 200);
    let redirect = std::fs::read_to_string(cfg.routes_dir.join(tls::REDIRECT_FILE)).unwrap();
    assert!(redirect.contains("redirectScheme") && redirect.contains("port: 8443"));
    // A restart keeps it; turning it off (over HTTP too) removes it.
    running.shutdown().await;
    let running = bloud_agent::server::start(cfg.clone()).await.unwrap();
    let base = base_of(&running);
    let status: serde_json::Value = client()
        .get(format!("{base}/api/tls/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["redirect"], true);
    let r = client()
        .put(format!("{base}/api/tls/redirect"))
        .header("cookie", &session)
        .json(&serde_json::json!({ "enabled": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!cfg.routes_dir.join(tls::REDIRECT_FILE).exists());
    running.shutdown().await;
}

#[tokio::test]
async fn without_tls_enabled_there_is_no_ca() {
    let dirs = Dirs::new();
    write_catalog(&dirs.path("apps"), &[]);
    let cfg = config(&dirs, &["true"], Duration::from_millis(50));
    let running = bloud_agent::server::start(cfg.clone()).await.unwrap();
    let r = client()
        .get(format!("{}/api/tls/ca.crt", base_of(&running)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(!cfg.tls.dir.exists());
    assert!(!cfg.routes_dir.join(tls::TLS_FILE).exists());
    running.shutdown().await;
}

//! HTTPS entry points: SNI picks the certificate, the default certificate answers the rest,
//! TLS below 1.2 is refused, ALPN negotiates h2 and requests are answered over it,
//! certificates rotate under load without a failed request, and bad certificates are refused
//! by `check` and by reload (the previous certificate stays, the admin API says why).

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use support::proxy::{Proxy, BIN};
use support::tls::{
    catch_all_routes, connect, connector, h2_get, h2_request, served_leaf, start_https, tls_yaml,
    Leaf, TestCa,
};
use support::upstream::Upstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Site {
    ca: TestCa,
    proxy: Proxy,
    https: std::net::SocketAddr,
    a: Leaf,
    wild: Leaf,
    default: Leaf,
    _upstream: Upstream,
}

/// Certificates: `a.test`, `*.apps.test`, and a default one for `127.0.0.1`.
async fn site() -> anyhow::Result<Site> {
    let ca = TestCa::new()?;
    let a = ca.leaf(&["a.test"], false)?;
    let wild = ca.leaf(&["*.apps.test"], false)?;
    let default = ca.leaf(&["127.0.0.1", "default.test"], false)?;
    let upstream = Upstream::start("app").await?;
    // The certificate files go beside the route file that names them (relative paths), and
    // the directory exists only once the proxy starts: its first load fails, `loaded_site`
    // writes them and reloads.
    let (proxy, https) = start_https(
        Proxy::builder()
            .route_file("routes.yml", catch_all_routes(&upstream.url()))
            .route_file("tls.yml", tls_yaml(&["a", "wild"], Some("default"))),
    )
    .await?;
    a.write(&proxy.routes_dir, "a")?;
    wild.write(&proxy.routes_dir, "wild")?;
    default.write(&proxy.routes_dir, "default")?;
    Ok(Site {
        ca,
        proxy,
        https,
        a,
        wild,
        default,
        _upstream: upstream,
    })
}

/// The site with its certificates loaded (written after start, so reloaded once).
async fn loaded_site() -> anyhow::Result<Site> {
    let s = site().await?;
    let before = s.proxy.reload_count().await?;
    s.proxy.sighup()?;
    let after = s.proxy.next_reload(before, Duration::from_secs(10)).await?;
    ensure!(
        after.success > before.success,
        "loading the certificates failed: {}",
        s.proxy.admin_json("/api/reload").await?
    );
    Ok(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_exact_and_wildcard_certificates_and_default_otherwise() -> anyhow::Result<()> {
    let s = loaded_site().await?;
    let tls = connector(&s.ca, &[b"http/1.1"])?;
    let conn = connect(&tls, s.https, "a.test").await?;
    ensure!(
        served_leaf(&conn) == s.a.der,
        "a.test got another certificate"
    );
    let conn = connect(&tls, s.https, "x.apps.test").await?;
    ensure!(
        served_leaf(&conn) == s.wild.der,
        "x.apps.test did not get the wildcard certificate"
    );
    // An IP address sends no SNI: the default certificate (which names 127.0.0.1) answers.
    let conn = connect(&tls, s.https, "127.0.0.1").await?;
    ensure!(
        served_leaf(&conn) == s.default.der,
        "a handshake without SNI did not get the default certificate"
    );
    // A wildcard covers one label only: the default certificate answers, which does not
    // name the host, so the client refuses it.
    ensure!(
        connect(&tls, s.https, "a.b.apps.test").await.is_err(),
        "a.b.apps.test was served a certificate valid for it"
    );
    let certs = s.proxy.admin_json("/api/tls/certificates").await?;
    ensure!(
        certs.as_array().map(Vec::len) == Some(3),
        "admin API lists {certs}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_negotiates_h2_and_http1_still_works() -> anyhow::Result<()> {
    let s = loaded_site().await?;
    let h2 = connector(&s.ca, &[b"h2", b"http/1.1"])?;
    let conn = connect(&h2, s.https, "a.test").await?;
    ensure!(
        conn.get_ref().1.alpn_protocol() == Some(&b"h2"[..]),
        "ALPN did not pick h2"
    );
    let (status, body) = h2_get(conn, "a.test", "/over-h2").await?;
    ensure!(status == 200, "h2 request answered {status}");
    let echo: serde_json::Value = serde_json::from_slice(&body).context("echo body")?;
    ensure!(echo["path"] == "/over-h2", "upstream saw {echo}");
    // The upstream speaks HTTP/1.1: the h2 :authority arrives as Host, and it learns the
    // client used HTTPS.
    ensure!(
        echo["headers"]["host"][0] == "a.test",
        "upstream Host: {echo}"
    );
    ensure!(
        echo["headers"]["x-forwarded-proto"][0] == "https"
            && echo["headers"]["x-forwarded-port"][0] == "443",
        "upstream X-Forwarded-Proto/Port: {echo}"
    );

    let h1 = connector(&s.ca, &[b"http/1.1"])?;
    let mut conn = connect(&h1, s.https, "a.test").await?;
    ensure!(conn.get_ref().1.alpn_protocol() == Some(&b"http/1.1"[..]));
    conn.write_all(b"GET /over-h1 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        .await?;
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply).await;
    let text = String::from_utf8_lossy(&reply);
    ensure!(
        text.starts_with("HTTP/1.1 200"),
        "HTTP/1.1 over TLS: {text}"
    );
    ensure!(text.contains("/over-h1"), "HTTP/1.1 over TLS: {text}");
    Ok(())
}

/// A ClientHello as a TLS 1.1 (or, with `tls12`, a TLS 1.2) client sends it, by hand:
/// rustls cannot speak TLS 1.1, which is the point.
fn client_hello(tls12: bool) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(if tls12 { &[3, 3] } else { &[3, 2] });
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
                  // ECDHE-ECDSA-AES128-GCM-SHA256 (1.2), ECDHE-ECDSA-AES128-SHA (1.0/1.1)
    body.extend_from_slice(&[0, 4, 0xc0, 0x2b, 0xc0, 0x09]);
    body.extend_from_slice(&[1, 0]); // no compression
    let name = b"a.test";
    let mut ext = Vec::new();
    // server_name
    let sni_len = name.len() + 5;
    ext.extend_from_slice(&[0, 0, 0, sni_len as u8, 0, (name.len() + 3) as u8, 0, 0]);
    ext.push(name.len() as u8);
    ext.extend_from_slice(name);
    // supported_groups: x25519, secp256r1
    ext.extend_from_slice(&[0, 0x0a, 0, 6, 0, 4, 0, 0x1d, 0, 0x17]);
    // ec_point_formats: uncompressed
    ext.extend_from_slice(&[0, 0x0b, 0, 2, 1, 0]);
    // signature_algorithms: ecdsa_secp256r1_sha256
    ext.extend_from_slice(&[0, 0x0d, 0, 4, 0, 2, 4, 3]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

/// The first TLS record the server answers a ClientHello with: (content type, first bytes).
async fn first_record(addr: std::net::SocketAddr, hello: &[u8]) -> anyhow::Result<(u8, Vec<u8>)> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.write_all(hello).await?;
    let mut head = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut head))
        .await
        .context("no answer to the ClientHello")??;
    let len = u16::from_be_bytes([head[3], head[4]]) as usize;
    let mut body = vec![0u8; len.min(64)];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut body))
        .await
        .context("record body")??;
    Ok((head[0], body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_1_is_refused_and_1_2_accepted() -> anyhow::Result<()> {
    let s = loaded_site().await?;
    let (kind, body) = first_record(s.https, &client_hello(false)).await?;
    // 21: alert; 70: protocol_version.
    ensure!(
        kind == 21 && body.get(1) == Some(&70),
        "a TLS 1.1 ClientHello got record type {kind} {body:?}, not a protocol_version alert"
    );
    let (kind, body) = first_record(s.https, &client_hello(true)).await?;
    // 22: handshake, 2: ServerHello.
    ensure!(
        kind == 22 && body.first() == Some(&2),
        "the same ClientHello as TLS 1.2 got record type {kind} {body:?}, not a ServerHello"
    );
    Ok(())
}

/// Runs `check` on the proxy's config; returns (exit code, output).
fn check(proxy: &Proxy) -> anyhow::Result<(i32, String)> {
    let out = std::process::Command::new(BIN)
        .arg("check")
        .arg("--config")
        .arg(&proxy.config_path)
        .output()
        .context("running check")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Ok((out.status.code().unwrap_or(-1), text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_mismatched_certificates_are_refused_by_check_and_reload() -> anyhow::Result<()>
{
    let s = loaded_site().await?;
    let (code, out) = check(&s.proxy)?;
    ensure!(code == 0, "check of good certificates failed: {out}");
    let tls = connector(&s.ca, &[b"http/1.1"])?;

    let expired = s.ca.leaf(&["a.test"], true)?;
    let other = s.ca.leaf(&["a.test"], false)?;
    let mismatched = Leaf {
        key_pem: other.key_pem.clone(),
        ..s.a.clone()
    };
    let garbage = Leaf {
        cert_pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
        ..s.a.clone()
    };
    for (bad, expect) in [
        (&expired, "expired"),
        (&mismatched, "does not belong to this certificate"),
        (&garbage, "cannot be parsed"),
    ] {
        bad.write(&s.proxy.routes_dir, "a")?;
        let (code, out) = check(&s.proxy)?;
        ensure!(
            code == 1,
            "check accepted a bad certificate ({expect}): {out}"
        );
        ensure!(
            out.contains("tls.yml") && out.contains("a.crt") && out.contains(expect),
            "check does not say {expect:?} with the files: {out}"
        );
        let before = s.proxy.reload_count().await?;
        s.proxy.sighup()?;
        let after = s.proxy.next_reload(before, Duration::from_secs(10)).await?;
        ensure!(after.failure > before.failure, "reload accepted ({expect})");
        let report = s.proxy.admin_json("/api/reload").await?;
        ensure!(
            report.to_string().contains(expect),
            "admin API does not report {expect:?}: {report}"
        );
        let conn = connect(&tls, s.https, "a.test").await?;
        ensure!(
            served_leaf(&conn) == s.a.der,
            "after a rejected reload ({expect}) a.test is not served the previous certificate"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_under_load_without_a_failed_request() -> anyhow::Result<()> {
    const ROTATIONS: usize = 12;
    let s = Arc::new(loaded_site().await?);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();

    // Keep-alive clients: one HTTP/2 connection each, for the whole test.
    for _ in 0..2 {
        let (s, stop, ok, failures) = (s.clone(), stop.clone(), ok.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let run = async {
                let tls = connector(&s.ca, &[b"h2"])?;
                let conn = connect(&tls, s.https, "a.test").await?;
                let (mut send, conn) = h2::client::handshake(conn).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = h2_request(&mut send, "a.test", "/keepalive").await?;
                    ensure!(status == 200, "keep-alive request answered {status}");
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            };
            if let Err(e) = run.await {
                failures.lock().unwrap().push(format!("keep-alive: {e:#}"));
            }
        }));
    }
    // New connections: a handshake per request.
    for _ in 0..2 {
        let (s, stop, ok, failures) = (s.clone(), stop.clone(), ok.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let tls = match connector(&s.ca, &[b"h2"]) {
                Ok(t) => t,
                Err(e) => return failures.lock().unwrap().push(format!("{e:#}")),
            };
            while !stop.load(Ordering::Relaxed) {
                let r = async {
                    let conn = connect(&tls, s.https, "a.test").await?;
                    let (status, _) = h2_get(conn, "a.test", "/fresh").await?;
                    ensure!(status == 200, "fresh request answered {status}");
                    anyhow::Ok(())
                }
                .await;
                match r {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures
                        .lock()
                        .unwrap()
                        .push(format!("new connection: {e:#}")),
                }
            }
        }));
    }

    let tls = connector(&s.ca, &[b"http/1.1"])?;
    for i in 0..ROTATIONS {
        // Renewal in place, as the agent does: same file names, new contents, then SIGHUP.
        let next = s.ca.leaf(&["a.test"], false)?;
        next.write(&s.proxy.routes_dir, "a")?;
        let before = s.proxy.reload_count().await?;
        s.proxy.sighup()?;
        let after = s.proxy.next_reload(before, Duration::from_secs(10)).await?;
        ensure!(after.success > before.success, "rotation {i} was rejected");
        let conn = connect(&tls, s.https, "a.test").await?;
        ensure!(
            served_leaf(&conn) == next.der,
            "rotation {i}: a new handshake after the reload got an old certificate"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(20);
    for t in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, t).await.is_err() {
            bail!("a client did not stop");
        }
    }
    let failures = failures.lock().unwrap().clone();
    ensure!(
        failures.is_empty(),
        "{} failed requests, first: {:?}",
        failures.len(),
        failures.first()
    );
    let n = ok.load(Ordering::Relaxed);
    ensure!(n >= 100, "only {n} requests were made during the rotations");
    eprintln!("{n} requests over {ROTATIONS} rotations, 0 failed");
    Ok(())
}

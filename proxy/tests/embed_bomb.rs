//! A gzip bomb through `embed`: an app sends 1 MB of gzip that inflates to 1 GiB as `text/html`
//! to a client without gzip support. The proxy decodes in bounded slices and cuts the response
//! once the decoded size passes the ratio cap, so four at once cost a few MiB, not gigabytes.

mod support;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::proxy::Proxy;
use support::upstream::scripted::{reply, RawUpstream};

/// 1,024 gzip members of 1 MiB of spaces each: 1 GiB decoded from about 1 MB.
fn bomb() -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&vec![b' '; 1 << 20]).expect("gzip");
    let member = enc.finish().expect("gzip");
    member.repeat(1024)
}

const REQUEST: &[u8] = b"GET /embed/bomb/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bomb_through_embed_is_cut_with_bounded_memory() {
    let body = Arc::new(bomb());
    let compressed = body.len();
    let app = {
        let body = body.clone();
        RawUpstream::start(move |_| {
            reply("200 OK")
                .header("Content-Type", "text/html")
                .header("Content-Encoding", "gzip")
                .body(body.as_slice())
        })
        .await
        .expect("bomb upstream")
    };
    let routes = format!(
        "http:\n  routers:\n    bomb:\n      rule: PathPrefix(`/embed/bomb`)\n      middlewares: [bomb-strip, bomb-embed]\n      service: bomb\n  middlewares:\n    bomb-strip:\n      stripPrefix:\n        prefixes: [\"/embed/bomb\"]\n    bomb-embed:\n      embed:\n        prefix: \"/embed/bomb\"\n  services:\n    bomb:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n",
        app.url()
    );
    let p = Proxy::builder()
        .route_file("r.yml", routes)
        .start()
        .await
        .expect("proxy");
    let ping = support::raw::send_default(
        p.web,
        b"GET /ping HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("ping");
    assert_eq!(ping.first_status(), Some(200));
    let baseline = p.peak_rss_kib().expect("VmHWM");

    let started = Instant::now();
    let mut bombs = Vec::new();
    for _ in 0..4 {
        let web = p.web;
        bombs.push(tokio::spawn(async move {
            support::raw::send(
                web,
                REQUEST,
                Duration::from_secs(10),
                Duration::from_secs(60),
            )
            .await
            .expect("bomb request")
        }));
    }
    for b in bombs {
        let out = b.await.expect("bomb task");
        assert!(
            out.closed,
            "the proxy must end the response: {}",
            out.summary()
        );
        // 502 when the cap is reached before the header went out, else a response cut short.
        let status = out.first_status();
        assert!(
            status == Some(502) || status == Some(200),
            "{}",
            out.summary()
        );
        // Far less than the 1 GiB the body claims; and not a complete chunked body.
        assert!(
            out.bytes.len() < 8 << 20,
            "{} bytes passed to the client",
            out.bytes.len()
        );
        assert!(!out.bytes.ends_with(b"0\r\n\r\n"), "{}", out.summary());
    }
    let took = started.elapsed();
    let peak = p.peak_rss_kib().expect("VmHWM");
    let grew = peak.saturating_sub(baseline);
    eprintln!(
        "4 concurrent gzip bombs ({compressed} bytes each, 1 GiB decoded): VmHWM {baseline} KiB -> {peak} KiB (+{grew} KiB), {took:?}"
    );
    assert!(grew <= 16 * 1024, "peak RSS grew by {grew} KiB");
    let text = p.metrics().await.expect("metrics");
    assert_eq!(
        support::metric_value(&text, "bloud_proxy_embed_decompression_aborted_total", &[]),
        Some(4.0),
        "{text}"
    );
}

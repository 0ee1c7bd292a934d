//! Malformed and ambiguous requests over raw TCP: each gets a 4xx (or the connection is
//! closed with no response), nothing hidden in a body ever reaches an upstream as a second
//! request (request smuggling), and the proxy keeps serving afterwards.

mod support;

use std::time::Duration;

use anyhow::ensure;
use support::proxy::Proxy;
use support::upstream::Upstream;

/// A complete request hidden in a body; its path is what we look for upstream.
fn hidden(n: usize) -> String {
    format!("GET /embed/app/smuggled-{n} HTTP/1.1\r\nHost: bloud.local\r\n\r\n")
}

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let head = "POST /embed/app/front HTTP/1.1\r\nHost: bloud.local\r\n";
    let mut cases: Vec<(&'static str, Vec<u8>)> = vec![
        (
            "non-numeric Content-Length",
            format!("{head}Content-Length: abc\r\n\r\n{}", hidden(1)),
        ),
        (
            "negative Content-Length",
            format!("{head}Content-Length: -1\r\n\r\n{}", hidden(2)),
        ),
        (
            "Content-Length with a plus sign",
            format!("{head}Content-Length: +0\r\n\r\n{}", hidden(3)),
        ),
        (
            "two different Content-Length headers",
            format!(
                "{head}Content-Length: 0\r\nContent-Length: {}\r\n\r\n{}",
                hidden(4).len(),
                hidden(4)
            ),
        ),
        (
            "Content-Length list with different values",
            format!(
                "{head}Content-Length: 0, {}\r\n\r\n{}",
                hidden(5).len(),
                hidden(5)
            ),
        ),
        (
            "CL.TE: Content-Length covers the hidden request, chunked body ends before it",
            format!(
                "{head}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{}",
                5 + hidden(6).len(),
                hidden(6)
            ),
        ),
        (
            "TE.CL: chunked body covers the hidden request, Content-Length ends before it",
            {
                let inner = hidden(7);
                format!(
                    "{head}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{inner}\r\n0\r\n\r\n",
                    inner.len()
                )
            },
        ),
        (
            "obfuscated Transfer-Encoding (xchunked) with Content-Length",
            format!(
                "{head}Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{}",
                hidden(8)
            ),
        ),
        (
            "Transfer-Encoding: chunked, identity",
            format!(
                "{head}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{}",
                hidden(9)
            ),
        ),
        (
            "whitespace before the colon of Transfer-Encoding",
            format!(
                "{head}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{}",
                hidden(10)
            ),
        ),
        (
            "Transfer-Encoding continued by an obsolete line fold",
            format!(
                "{head}Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{}",
                hidden(11)
            ),
        ),
        (
            "chunk size that is not hex",
            format!(
                "{head}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n{}",
                hidden(12)
            ),
        ),
        (
            "chunk size that overflows 64 bits",
            format!(
                "{head}Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n{}",
                hidden(13)
            ),
        ),
        (
            "chunk data longer than its size line",
            format!(
                "{head}Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n{}",
                hidden(14)
            ),
        ),
    ]
    .into_iter()
    .map(|(name, text)| (name, text.into_bytes()))
    .collect();

    let mut huge_value = b"GET /embed/app/huge HTTP/1.1\r\nHost: bloud.local\r\nX-Big: ".to_vec();
    huge_value.extend(std::iter::repeat_n(b'a', 2 << 20));
    huge_value.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    cases.push(("one 2 MiB header value", huge_value));

    let mut many = String::from("GET /embed/app/many HTTP/1.1\r\nHost: bloud.local\r\n");
    for i in 0..4096 {
        many.push_str(&format!("X-Filler-{i}: {}\r\n", "b".repeat(500)));
    }
    many.push_str("Connection: close\r\n\r\n");
    cases.push(("4096 headers, 2 MiB in total", many.into_bytes()));
    cases
}

#[tokio::test]
async fn malformed_requests_get_4xx_and_never_smuggle_a_second_request() -> anyhow::Result<()> {
    let app = Upstream::start("app").await?;
    let proxy = Proxy::builder()
        .route_file(
            "apps-routes.yml",
            support::embed_app_routes("app", &app.url(), &[]),
        )
        .start()
        .await?;

    // Control: the hidden request's path does reach the upstream when sent as a real request,
    // so "never seen upstream" below means the proxy stopped it.
    let control: &[u8] =
        b"GET /embed/app/smuggled-control HTTP/1.1\r\nHost: bloud.local\r\nConnection: close\r\n\r\n";
    let out = support::raw::send_default(proxy.web, control).await?;
    ensure!(
        out.first_status() == Some(200),
        "control: {}",
        out.summary()
    );
    ensure!(
        app.paths().iter().any(|p| p == "/smuggled-control"),
        "control request not seen upstream: {:?}",
        app.paths()
    );

    let mut failures = Vec::new();
    for (name, bytes) in cases() {
        let before = app.paths().len();
        let out = support::raw::send(
            proxy.web,
            &bytes,
            Duration::from_millis(2500),
            Duration::from_secs(10),
        )
        .await?;
        let statuses = out.statuses();
        let ok = match statuses.as_slice() {
            [] => out.closed,
            [s] => (400..500).contains(s),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{name}: expected one 4xx or a closed connection, got statuses {statuses:?} ({})",
                out.summary()
            ));
        }
        let smuggled: Vec<String> = app
            .paths()
            .into_iter()
            .skip(before)
            .filter(|p| p.contains("smuggled"))
            .collect();
        if !smuggled.is_empty() {
            failures.push(format!(
                "{name}: smuggled request reached the upstream: {smuggled:?}"
            ));
        }
        // Still serving after every case.
        let probe = support::client()?
            .get(proxy.url("/embed/app/alive"))
            .send()
            .await;
        match probe {
            Ok(r) if r.status().as_u16() == 200 => {}
            Ok(r) => failures.push(format!(
                "{name}: proxy then answered {} to a valid request",
                r.status()
            )),
            Err(e) => failures.push(format!("{name}: proxy stopped serving: {e}")),
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of {} malformed-request cases failed:\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n")
    );
    Ok(())
}

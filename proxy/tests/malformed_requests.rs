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

const HEAD: &str = "POST /embed/app/front HTTP/1.1\r\nHost: bloud.local\r\n";

type Case = (&'static str, Vec<u8>);

fn case(name: &'static str, text: String) -> Case {
    (name, text.into_bytes())
}

fn content_length_cases() -> Vec<Case> {
    vec![
        case(
            "non-numeric Content-Length",
            format!("{HEAD}Content-Length: abc\r\n\r\n{}", hidden(1)),
        ),
        case(
            "negative Content-Length",
            format!("{HEAD}Content-Length: -1\r\n\r\n{}", hidden(2)),
        ),
        case(
            "Content-Length with a plus sign",
            format!("{HEAD}Content-Length: +0\r\n\r\n{}", hidden(3)),
        ),
        case(
            "two different Content-Length headers",
            format!(
                "{HEAD}Content-Length: 0\r\nContent-Length: {}\r\n\r\n{}",
                hidden(4).len(),
                hidden(4)
            ),
        ),
        case(
            "Content-Length list with different values",
            format!(
                "{HEAD}Content-Length: 0, {}\r\n\r\n{}",
                hidden(5).len(),
                hidden(5)
            ),
        ),
    ]
}

fn content_length_with_transfer_encoding_cases() -> Vec<Case> {
    let inner = hidden(7);
    vec![
        case(
            "CL.TE: Content-Length covers the hidden request, chunked body ends before it",
            format!(
                "{HEAD}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{}",
                5 + hidden(6).len(),
                hidden(6)
            ),
        ),
        case(
            "TE.CL: chunked body covers the hidden request, Content-Length ends before it",
            format!(
                "{HEAD}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{inner}\r\n0\r\n\r\n",
                inner.len()
            ),
        ),
    ]
}

fn obfuscated_transfer_encoding_cases() -> Vec<Case> {
    vec![
        case(
            "obfuscated Transfer-Encoding (xchunked) with Content-Length",
            format!(
                "{HEAD}Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{}",
                hidden(8)
            ),
        ),
        case(
            "Transfer-Encoding: chunked, identity",
            format!(
                "{HEAD}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{}",
                hidden(9)
            ),
        ),
        case(
            "whitespace before the colon of Transfer-Encoding",
            format!(
                "{HEAD}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{}",
                hidden(10)
            ),
        ),
        case(
            "Transfer-Encoding continued by an obsolete line fold",
            format!(
                "{HEAD}Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{}",
                hidden(11)
            ),
        ),
    ]
}

fn bad_chunk_cases() -> Vec<Case> {
    vec![
        case(
            "chunk size that is not hex",
            format!(
                "{HEAD}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n{}",
                hidden(12)
            ),
        ),
        case(
            "chunk size that overflows 64 bits",
            format!(
                "{HEAD}Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n{}",
                hidden(13)
            ),
        ),
        case(
            "chunk data longer than its size line",
            format!(
                "{HEAD}Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n{}",
                hidden(14)
            ),
        ),
    ]
}

fn oversized_header_cases() -> Vec<Case> {
    let mut huge_value = b"GET /embed/app/huge HTTP/1.1\r\nHost: bloud.local\r\nX-Big: ".to_vec();
    huge_value.extend(std::iter::repeat_n(b'a', 2 << 20));
    huge_value.extend_from_slice(b"\r\nConnection: close\r\n\r\n");

    let mut many = String::from("GET /embed/app/many HTTP/1.1\r\nHost: bloud.local\r\n");
    for i in 0..4096 {
        many.push_str(&format!("X-Filler-{i}: {}\r\n", "b".repeat(500)));
    }
    many.push_str("Connection: close\r\n\r\n");
    vec![
        ("one 2 MiB header value", huge_value),
        ("4096 headers, 2 MiB in total", many.into_bytes()),
    ]
}

/// Sends every case on its own connection to a fresh proxy and checks: one 4xx or a closed
/// connection, no hidden request upstream, no request upstream with both framings, and the
/// proxy still answers a valid request afterwards.
async fn run_cases(cases: Vec<Case>) -> anyhow::Result<()> {
    let total = cases.len();
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
    for (name, bytes) in cases {
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
    // An upstream given both framings may pick the other one: that is the desync itself.
    for req in app.requests() {
        let has = |name: &str| req.headers.iter().any(|(k, _)| k == name);
        if has("content-length") && has("transfer-encoding") {
            failures.push(format!(
                "{} reached the upstream with both Content-Length and Transfer-Encoding: {:?}",
                req.path_and_query, req.headers
            ));
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of {total} malformed-request cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn invalid_content_length_gets_4xx() -> anyhow::Result<()> {
    run_cases(content_length_cases()).await
}

#[tokio::test]
async fn content_length_together_with_transfer_encoding_gets_4xx() -> anyhow::Result<()> {
    run_cases(content_length_with_transfer_encoding_cases()).await
}

#[tokio::test]
async fn obfuscated_transfer_encoding_gets_4xx() -> anyhow::Result<()> {
    run_cases(obfuscated_transfer_encoding_cases()).await
}

#[tokio::test]
async fn bad_chunk_sizes_get_4xx() -> anyhow::Result<()> {
    run_cases(bad_chunk_cases()).await
}

#[tokio::test]
async fn oversized_headers_get_4xx() -> anyhow::Result<()> {
    run_cases(oversized_header_cases()).await
}

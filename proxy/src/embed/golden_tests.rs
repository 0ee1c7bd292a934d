//! Golden tests: whole documents from `testdata/` against their reviewed rewritten forms, fed
//! in one piece, byte by byte and in random chunk sizes (the output must not depend on where
//! the network splits a body). `BLESS_EMBED=1` rewrites the `.expected` files; review the diff.

use std::path::PathBuf;

use super::config::{EmbedConfig, InjectConfig};
use super::css::CssStream;
use super::html::{HtmlStream, MAX_HELD};
use super::location::Origins;
use super::EmbedRewriter;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/embed/testdata")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    let path = testdata(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn check_golden(name: &str, actual: &[u8]) {
    let path = testdata(name);
    if std::env::var_os("BLESS_EMBED").is_some() {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let expected = read(name);
    assert!(
        expected == actual,
        "{} differs from the output:\n{}",
        path.display(),
        String::from_utf8_lossy(actual)
    );
}

fn rewriter() -> EmbedRewriter {
    let mut cfg = EmbedConfig::new("/embed/app");
    // The shim has its own tests (html.rs); these pin the rewriting itself.
    cfg.shim = false;
    cfg.exclude = vec!["/openid-cb".into()];
    cfg.compile().expect("valid config")
}

fn origins() -> Origins {
    Origins::new("http", Some("bloud.local"), Some("127.0.0.1:3000"))
}

/// Deterministic chunk sizes (xorshift), so a failure reproduces.
struct Chunks(u64);

impl Chunks {
    fn next(&mut self, max: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        1 + (self.0 % max as u64) as usize
    }
}

enum Feed {
    Whole,
    ByteByByte,
    Random(u64),
}

fn html_with(rw: &EmbedRewriter, input: &[u8], feed: Feed) -> Vec<u8> {
    let mut s = HtmlStream::new(rw, &origins(), None);
    let mut out = Vec::new();
    match feed {
        Feed::Whole => out.extend_from_slice(&s.write(input)),
        Feed::ByteByByte => {
            for b in input {
                out.extend_from_slice(&s.write(std::slice::from_ref(b)));
            }
        }
        Feed::Random(seed) => {
            let mut chunks = Chunks(seed);
            let mut rest = input;
            while !rest.is_empty() {
                let n = chunks.next(64).min(rest.len());
                out.extend_from_slice(&s.write(&rest[..n]));
                rest = &rest[n..];
            }
        }
    }
    out.extend_from_slice(&s.finish());
    out
}

fn css_with(input: &[u8], feed: Feed) -> Vec<u8> {
    let mut s = CssStream::new(rewriter());
    let mut out = Vec::new();
    let mut chunks = Chunks(match feed {
        Feed::Random(seed) => seed,
        _ => 1,
    });
    let mut rest = input;
    while !rest.is_empty() {
        let n = match feed {
            Feed::Whole => rest.len(),
            Feed::ByteByByte => 1,
            Feed::Random(_) => chunks.next(16).min(rest.len()),
        };
        out.extend_from_slice(&s.write(&rest[..n]));
        rest = &rest[n..];
    }
    out.extend_from_slice(&s.finish());
    out
}

fn assert_chunking_invariant(name: &str, whole: &[u8], run: impl Fn(Feed) -> Vec<u8>) {
    assert_eq!(
        String::from_utf8_lossy(&run(Feed::ByteByByte)),
        String::from_utf8_lossy(whole),
        "{name}: byte-by-byte output differs from one-shot output"
    );
    for seed in 1..=25u64 {
        assert_eq!(
            String::from_utf8_lossy(&run(Feed::Random(seed))),
            String::from_utf8_lossy(whole),
            "{name}: random chunks (seed {seed}) differ from one-shot output"
        );
    }
}

#[test]
fn golden_page() {
    let rw = rewriter();
    let input = read("page.html");
    let whole = html_with(&rw, &input, Feed::Whole);
    check_golden("page.expected.html", &whole);
    assert_chunking_invariant("page.html", &whole, |f| html_with(&rw, &input, f));
}

#[test]
fn golden_malformed_page() {
    let rw = rewriter();
    let input = read("malformed.html");
    let whole = html_with(&rw, &input, Feed::Whole);
    check_golden("malformed.expected.html", &whole);
    assert_chunking_invariant("malformed.html", &whole, |f| html_with(&rw, &input, f));
}

#[test]
fn golden_stylesheet() {
    let input = read("style.css");
    let whole = css_with(&input, Feed::Whole);
    check_golden("style.expected.css", &whole);
    assert_chunking_invariant("style.css", &whole, |f| css_with(&input, f));
}

#[test]
fn golden_injection() {
    let mut cfg = EmbedConfig::new("/embed/actual-budget");
    // The shim has its own tests (html.rs); these pin the rewriting itself.
    cfg.shim = false;
    cfg.exclude = vec!["/openid-cb".into()];
    cfg.inject = Some(InjectConfig {
        config: Some(serde_json::json!({
            "localStorage": {"server-url": {"value": "{{embedUrl}}"}}
        })),
        src: None,
        script: Some(
            "window.__bloud = document.querySelector('meta[name=bloud-intercept-config]');".into(),
        ),
    });
    let rw = cfg.compile().expect("valid");
    let input = b"<!doctype html><html><head data-x=1><title>Actual</title><script src=\"/static/js/main.js\"></script></head><body></body></html>";
    let whole = html_with(&rw, input, Feed::Whole);
    check_golden("inject.expected.html", &whole);
    assert_chunking_invariant("inject", &whole, |f| html_with(&rw, input, f));

    // No <head> tag: the markup lands before <body>, once.
    let headless = html_with(
        &rw,
        b"<!doctype html><title>x</title><body><p>hi</p></body>",
        Feed::Whole,
    );
    let text = String::from_utf8_lossy(&headless);
    assert_eq!(
        text.matches("<meta name=\"bloud-intercept-config\"")
            .count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("</title><meta name=\"bloud-intercept-config\""),
        "{text}"
    );

    // A fragment (XHR partial) gets nothing.
    let fragment = html_with(&rw, b"<div><a href=\"/x\">x</a></div>", Feed::Whole);
    assert_eq!(
        fragment,
        b"<div><a href=\"/embed/actual-budget/x\">x</a></div>"
    );
}

#[test]
fn inject_without_html_rewriting_only_injects() {
    let mut cfg = EmbedConfig::new("/embed/app");
    // The shim has its own tests (html.rs); these pin the rewriting itself.
    cfg.shim = false;
    cfg.html = false;
    cfg.inject = Some(InjectConfig {
        config: None,
        src: Some("/embed/app/shim.js".into()),
        script: None,
    });
    let rw = cfg.compile().expect("valid");
    let out = html_with(&rw, b"<head></head><a href=\"/x\">", Feed::Whole);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "<head><script src=\"/embed/app/shim.js\"></script></head><a href=\"/x\">"
    );
}

/// Builds a page of about `size` bytes out of realistic markup.
fn big_page(size: usize) -> Vec<u8> {
    let unit = "<div class=\"card\"><a href=\"/items/42?sort=asc\"><img src=\"/img/42.png\" \
                srcset=\"/img/42.png 1x, /img/42@2x.png 2x\" alt=\"item\"></a><p>Some text \
                with <b>markup</b> and a <a href=\"https://other.example/\">link</a>.</p></div>\n";
    let mut page = String::from("<!doctype html><html><head><title>big</title></head><body>\n");
    while page.len() < size {
        page.push_str(unit);
    }
    page.push_str("</body></html>\n");
    page.into_bytes()
}

#[test]
fn five_mib_page_streams_with_bounded_memory() {
    let rw = rewriter();
    let page = big_page(5 << 20);
    let mut s = HtmlStream::new(&rw, &origins(), None);
    let (mut fed, mut sent) = (0usize, 0usize);
    let mut worst_lag = 0usize;
    let mut chunks = Chunks(7);
    let mut rest = page.as_slice();
    while !rest.is_empty() {
        let n = chunks.next(16 * 1024).min(rest.len());
        fed += n;
        sent += s.write(&rest[..n]).len();
        rest = &rest[n..];
        // Output only grows (prefixes), so input not yet answered by output bounds what is held.
        worst_lag = worst_lag.max(fed.saturating_sub(sent));
        assert!(
            s.is_rewriting(),
            "a realistic page must not trip the memory limit"
        );
    }
    sent += s.finish().len();
    assert!(
        worst_lag <= MAX_HELD,
        "held {worst_lag} bytes beyond the chunk in hand"
    );
    let units = page.len() / 250;
    assert!(
        sent > page.len() + units * 3 * "/embed/app".len(),
        "the page was rewritten"
    );
}

#[test]
fn oversized_tag_passes_through_and_rewriting_goes_on() {
    let rw = rewriter();
    let mut page =
        b"<html><head></head><body><a href=\"/before\">b</a><img src=\"data:image/png;base64,"
            .to_vec();
    page.extend(std::iter::repeat_n(b'A', 3 * MAX_HELD));
    page.extend_from_slice(
        b"\" alt='>' src=\"/in-the-long-tag\"><a href=\"/after\">a</a></body></html>",
    );
    let mut s = HtmlStream::new(&rw, &origins(), None);
    let mut out = Vec::new();
    let (mut fed, mut sent) = (0usize, 0usize);
    for chunk in page.chunks(4096) {
        fed += chunk.len();
        let o = s.write(chunk);
        sent += o.len();
        out.extend_from_slice(&o);
        assert!(
            fed.saturating_sub(sent) <= MAX_HELD + 4096,
            "held {} bytes",
            fed - sent
        );
    }
    out.extend_from_slice(&s.finish());
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("<html><head></head><body><a href=\"/embed/app/before\">"),
        "rewritten before the long tag"
    );
    assert!(
        text.ends_with(
            "\" alt='>' src=\"/in-the-long-tag\"><a href=\"/embed/app/after\">a</a></body></html>"
        ),
        "the long tag passes through as is (its quoted '>' does not end it), the rest is rewritten"
    );
    assert_eq!(
        out.len(),
        page.len() + 2 * "/embed/app".len(),
        "no byte lost or duplicated"
    );
}

#[test]
fn charset_from_header_and_unsupported_charsets() {
    let rw = rewriter();
    // windows-1252 "café" around a rewritten attribute: the é byte (0xE9) must survive.
    let input = b"<a title=\"caf\xe9\" href=\"/caf\xe9\">caf\xe9</a>";
    let mut s = HtmlStream::new(&rw, &origins(), Some("windows-1252"));
    let mut out = s.write(input).to_vec();
    out.extend_from_slice(&s.finish());
    assert_eq!(
        out,
        b"<a title=\"caf\xe9\" href=\"/embed/app/caf\xe9\">caf\xe9</a>"
    );

    let mut s = HtmlStream::new(&rw, &origins(), Some("utf-16le"));
    let mut out = s.write(b"<a href=\"/x\">").to_vec();
    out.extend_from_slice(&s.finish());
    assert_eq!(out, b"<a href=\"/x\">", "unsupported charsets pass through");
}

#[test]
fn style_cut_by_end_of_document_keeps_its_bytes() {
    let rw = rewriter();
    for cut in [
        "<style>a{b:url(/x",
        "<style>a{b:url(/embed/ap",
        "<style>@import \"/",
    ] {
        let out = html_with(&rw, cut.as_bytes(), Feed::Whole);
        let text = String::from_utf8_lossy(&out);
        assert!(text.len() >= cut.len(), "{cut} -> {text}");
        let bytes_out = html_with(&rw, cut.as_bytes(), Feed::ByteByByte);
        assert_eq!(String::from_utf8_lossy(&bytes_out), text, "{cut}");
    }
}

//! Server-side rewriting costs (bloud_proxy::embed): one Location header, and HTML/CSS body
//! throughput on a 1 MiB realistic page next to a plain copy of the same bytes, all fed in
//! 16 KiB chunks like a proxied body, and the whole life of one small HTML response (12 B and
//! 7 KiB). Run: `cargo bench --bench embed_rewrite`.

use std::hint::black_box;

use bloud_proxy::embed::{
    BodyKind, BodyPlan, Coding, CssStream, EmbedConfig, EmbedRewriter, HtmlStream, Origins,
};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const CHUNK: usize = 16 * 1024;

fn rewriter() -> EmbedRewriter {
    let mut cfg = EmbedConfig::new("/embed/actual-budget");
    cfg.exclude = vec!["/openid-cb".into()];
    match cfg.compile() {
        Ok(rw) => rw,
        Err(e) => panic!("bench config is invalid: {e}"),
    }
}

fn origins() -> Origins {
    Origins::new("http", Some("bloud.local"), Some("127.0.0.1:5006"))
}

/// About `size` bytes of what a single-page app's server-rendered pages look like: a head of
/// assets, then lists of cards with links, images, inline styles, text and scripts.
fn realistic_page(size: usize) -> Vec<u8> {
    let head = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Actual Budget</title><link rel="manifest" href="/manifest.webmanifest"><link rel="icon" href="/favicon.ico">
<link rel="modulepreload" href="/static/js/vendor.7f3a1c.js"><link rel="stylesheet" href="/static/css/main.9b2e.css">
<script type="importmap">{"imports":{"react":"/static/js/react.js","lodash/":"/static/js/lodash/"}}</script>
<style>body{font-family:Inter,sans-serif;background:url(/static/media/bg.png)}.icon{mask:url("/static/media/icons.svg#x")}</style>
<script defer src="/static/js/main.4c1d.js"></script></head><body><div id="root">
"#;
    let card = r#"<article class="card transaction" data-id="4711"><header><a href="/accounts/checking?tx=4711#row" class="link">Groceries &amp; more</a>
<time datetime="2026-11-26">Nov 26</time></header><img src="/static/media/payee-4711.png" srcset="/static/media/payee-4711.png 1x, /static/media/payee-4711@2x.png 2x" alt="" loading="lazy" width="32" height="32">
<p class="memo">Weekly shopping at the market, paid by card. Budget category: food. Notes for the household, with some
longer free text that makes the page look like real content rather than a wall of tags.</p><div style="background-image:url('/static/media/flag.png')" class="flag"></div>
<a href="https://bank.example.com/statement/4711" rel="noopener">Statement</a> <a href="relative/details">Details</a>
<form action="/transactions/4711/edit" method="post"><input type="hidden" name="csrf" value="c2VjcmV0"><button formaction="/transactions/4711/delete">Delete</button></form></article>
"#;
    let tail = "</div><script>window.__INITIAL_STATE__={\"route\":\"/accounts\"};</script></body></html>\n";
    let mut page = String::with_capacity(size + card.len() + tail.len());
    page.push_str(head);
    while page.len() + tail.len() < size {
        page.push_str(card);
    }
    page.push_str(tail);
    page.into_bytes()
}

fn stylesheet(size: usize) -> Vec<u8> {
    let rule = ".c{color:#333;margin:0 auto;padding:4px 8px;background:url(/static/media/c.png) no-repeat}\n\
                @font-face{font-family:F;src:url(\"/static/fonts/f.woff2\") format(\"woff2\")}\n\
                .d{border:1px solid #ddd;box-shadow:0 1px 2px rgba(0,0,0,.1);transition:all .2s ease-in-out}\n";
    rule.repeat(size / rule.len() + 1).into_bytes()
}

fn bench_location(c: &mut Criterion) {
    let rw = rewriter();
    let o = origins();
    let mut g = c.benchmark_group("embed_location");
    g.bench_function("root_path", |b| {
        b.iter(|| rw.rewrite_url(black_box("/login?redirect=%2Fbudget"), &o))
    });
    g.bench_function("upstream_absolute", |b| {
        b.iter(|| rw.rewrite_url(black_box("http://127.0.0.1:5006/login.html"), &o))
    });
    g.bench_function("untouched_other_host", |b| {
        b.iter(|| rw.rewrite_url(black_box("https://accounts.example.com/o/authorize"), &o))
    });
    g.bench_function("set_cookie", |b| {
        b.iter(|| {
            rw.rewrite_set_cookie(black_box("sid=abc123; Path=/; HttpOnly; SameSite=Lax"), &o)
        })
    });
    g.finish();
}

fn feed(body: &[u8], mut write: impl FnMut(&[u8]) -> Bytes) -> usize {
    body.chunks(CHUNK).map(|c| write(c).len()).sum()
}

fn bench_bodies(c: &mut Criterion) {
    let rw = rewriter();
    let o = origins();
    let page = realistic_page(1 << 20);
    let css = stylesheet(1 << 20);

    let mut g = c.benchmark_group("embed_body_1MiB");
    g.throughput(Throughput::Bytes(page.len() as u64));
    g.bench_function("plain_copy", |b| {
        b.iter(|| feed(black_box(&page), Bytes::copy_from_slice))
    });
    g.bench_function("html_rewrite", |b| {
        b.iter(|| {
            let mut s = HtmlStream::new(&rw, &o, None);
            feed(black_box(&page), |chunk| s.write(chunk)) + s.finish().len()
        })
    });
    // The pipeline's own encoder makes the gzip input (the root package has no flate2).
    let compress = BodyPlan {
        kind: BodyKind::Html,
        decode: Coding::Identity,
        encode: Coding::Gzip,
        charset: None,
    };
    let mut copy_cfg = EmbedConfig::new("/unused");
    copy_cfg.html = false;
    let copy_rw = copy_cfg.compile().unwrap_or_else(|_| rw.clone());
    let mut gz = compress.start(&copy_rw, &o);
    let mut page_gz = gz.write(&page).map(|b| b.to_vec()).unwrap_or_default();
    page_gz.extend_from_slice(&gz.finish().unwrap_or_default());
    let gzip_plan = BodyPlan {
        kind: BodyKind::Html,
        decode: Coding::Gzip,
        encode: Coding::Gzip,
        charset: None,
    };
    g.bench_function("html_rewrite_gunzip_gzip", |b| {
        b.iter(|| {
            let mut p = gzip_plan.start(&rw, &o);
            let body: usize = black_box(&page_gz)
                .chunks(CHUNK)
                .map(|c| p.write(c).map(|b| b.len()).unwrap_or(0))
                .sum();
            body + p.finish().map(|b| b.len()).unwrap_or(0)
        })
    });
    g.throughput(Throughput::Bytes(css.len() as u64));
    g.bench_function("css_rewrite", |b| {
        b.iter(|| {
            let mut s = CssStream::new(rw.clone());
            feed(black_box(&css), |chunk| s.write(chunk)) + s.finish().len()
        })
    });
    g.finish();
}

/// The fixed cost of one HTML response: a 12-byte body (set-up and end of the rewriter) and
/// a 7 KiB page like the load harness's `--embed-html` one, each a whole `HtmlStream` life.
fn bench_per_response(c: &mut Criterion) {
    let rw = rewriter();
    let o = origins();
    let tiny = b"hello world\n".to_vec();
    let page = realistic_page(7 * 1024);
    let mut g = c.benchmark_group("embed_html_response");
    for (name, body) in [("tiny_12B", &tiny), ("page_7KiB", &page)] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut s = HtmlStream::new(&rw, &o, None);
                feed(black_box(body), |chunk| s.write(chunk)) + s.finish().len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_location, bench_bodies, bench_per_response);
criterion_main!(benches);

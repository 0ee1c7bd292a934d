//! Where the shim's tag lands in HTML bodies: first in full documents, never in fragments,
//! before the `inject` markup, wherever the network splits the body.

use super::config::{EmbedConfig, InjectConfig};
use super::html::HtmlStream;
use super::location::Origins;
use super::shim::SHIM;
use super::EmbedRewriter;

fn rewriter(shim: bool, inject: bool) -> EmbedRewriter {
    let mut cfg = EmbedConfig::new("/embed/app");
    cfg.shim = shim;
    cfg.exclude = vec!["/openid-cb".into()];
    if inject {
        cfg.inject = Some(InjectConfig {
            config: None,
            src: Some("/intercept.js".into()),
            script: None,
        });
    }
    cfg.compile().expect("valid config")
}

/// The output for `input` fed whole, one byte at a time and in chunks of 2 to 7 bytes; all
/// must agree.
fn run(rw: &EmbedRewriter, input: &str) -> String {
    let feed = |sizes: &mut dyn FnMut() -> usize| {
        let mut s = HtmlStream::new(rw, &Origins::default(), None);
        let mut out = Vec::new();
        let mut rest = input.as_bytes();
        while !rest.is_empty() {
            let n = sizes().min(rest.len());
            out.extend_from_slice(&s.write(&rest[..n]));
            rest = &rest[n..];
        }
        out.extend_from_slice(&s.finish());
        String::from_utf8(out).expect("utf-8")
    };
    let whole = feed(&mut || usize::MAX);
    assert_eq!(feed(&mut || 1), whole, "byte by byte: {input:?}");
    let mut k = 0;
    let varied = feed(&mut || {
        k = k % 6 + 1;
        k + 1
    });
    assert_eq!(varied, whole, "in small chunks: {input:?}");
    whole
}

fn tag() -> String {
    format!(
        r#"<script src="/embed/app/__bloud__/{}" data-prefix="/embed/app" data-exclude="[&quot;/openid-cb&quot;]"></script>"#,
        SHIM.file
    )
}

/// (body, expected with `{S}` for the shim tag)
const CASES: &[(&str, &str)] = &[
    (
        "<!doctype html><html><head><title>x</title></head><body></body></html>",
        "<!doctype html><html><head>{S}<title>x</title></head><body></body></html>",
    ),
    (
        "\u{feff} \n<!-- c --><!DOCTYPE html>\n<html lang=en>\n<HEAD data-x=1>\n<script src=/a.js></script>",
        "\u{feff} \n<!-- c --><!DOCTYPE html>\n<html lang=en>\n<HEAD data-x=1>{S}\n<script src=/embed/app/a.js></script>",
    ),
    (
        "<!doctype html><title>t</title><p>x",
        "<!doctype html>{S}<title>t</title><p>x",
    ),
    (
        "<html><body><p>x</p></body></html>",
        "<html>{S}<body><p>x</p></body></html>",
    ),
    (
        "<head><script>x()</script></head>",
        "<head>{S}<script>x()</script></head>",
    ),
    (
        "<html><script>go('<head>')</script><head></head>",
        "<html>{S}<script>go('<head>')</script><head></head>",
    ),
    ("<!doctype html>Hello", "<!doctype html>{S}Hello"),
    // Found by the fuzzer: text after `<html>` that begins with whitespace gets the shim after
    // the whitespace, whether the whitespace arrives in the same chunk or an earlier one.
    (
        "<!DOCTYPE html>\n<html lang=\"en\">\n,HEAD>\n<p>x",
        "<!DOCTYPE html>\n<html lang=\"en\">\n{S},HEAD>\n<p>x",
    ),
    ("<!doctype html>\n", "<!doctype html>\n{S}"),
    (
        "<?xml version=\"1.0\"?>\n<html xmlns=\"http://www.w3.org/1999/xhtml\"><head></head>",
        "<?xml version=\"1.0\"?>\n<html xmlns=\"http://www.w3.org/1999/xhtml\"><head>{S}</head>",
    ),
    // Fragments (htmx, pjax partials, server-rendered snippets): never.
    (
        "<div><a href=\"/x\">x</a></div>",
        "<div><a href=\"/embed/app/x\">x</a></div>",
    ),
    ("  <tr><td>1</td></tr>", "  <tr><td>1</td></tr>"),
    ("hello <html><head>", "hello <html><head>"),
    ("<!-- <html> --><p>x</p>", "<!-- <html> --><p>x</p>"),
    ("</div><html><head>", "</div><html><head>"),
    ("<![CDATA[x]]><html><head>", "<![CDATA[x]]><html><head>"),
    ("<body><p>x</p></body>", "<body><p>x</p></body>"),
    ("", ""),
];

#[test]
fn placement_table() {
    let rw = rewriter(true, false);
    let tag = tag();
    for (input, expected) in CASES {
        let expected = expected.replace("{S}", &tag);
        assert_eq!(run(&rw, input), expected, "{input:?}");
        assert!(run(&rw, input).matches("__bloud__").count() <= 1);
    }
}

#[test]
fn shim_goes_before_the_inject_markup() {
    let rw = rewriter(true, true);
    let s = tag();
    let i = r#"<script src="/intercept.js"></script>"#;
    for (input, expected) in [
        (
            "<!doctype html><html><head><title>x</title>",
            format!("<!doctype html><html><head>{s}{i}<title>x</title>"),
        ),
        (
            "<!doctype html><body>x",
            format!("<!doctype html>{s}{i}<body>x"),
        ),
        // A document whose first element is not <body>: the shim is first, `inject` still
        // waits for `<body>` as before.
        (
            "<!doctype html><title>t</title><body>",
            format!("<!doctype html>{s}<title>t</title>{i}<body>"),
        ),
        // In a fragment neither goes in.
        ("<p>x</p>", "<p>x</p>".to_string()),
    ] {
        assert_eq!(run(&rw, input), expected, "{input:?}");
    }
}

#[test]
fn shim_false_turns_it_off() {
    let rw = rewriter(false, false);
    assert_eq!(rw.shim_path(), None);
    let page = "<!doctype html><html><head><script src=\"/a.js\"></script></head>";
    assert_eq!(
        run(&rw, page),
        "<!doctype html><html><head><script src=\"/embed/app/a.js\"></script></head>"
    );
    let with_inject = rewriter(false, true);
    assert_eq!(
        run(&with_inject, "<html><head><title>x</title>"),
        "<html><head><script src=\"/intercept.js\"></script><title>x</title>"
    );
    // `html: false` keeps the shim (it is what runs the app's own URLs then).
    let mut cfg = EmbedConfig::new("/embed/app");
    cfg.html = false;
    let rw = cfg.compile().expect("valid");
    let out = run(&rw, "<!doctype html><head><script src=\"/a.js\"></script>");
    assert!(
        out.contains("__bloud__") && out.contains("src=\"/a.js\""),
        "{out}"
    );
}

#[test]
fn a_csp_tag_replaces_the_shared_one() {
    let rw = rewriter(true, false);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static("script-src 'nonce-r4nd0m' 'strict-dynamic'"),
    );
    let custom = rw.shim_tag_for(&mut headers);
    let mut s = HtmlStream::new(&rw, &Origins::default(), None).with_shim_tag(custom);
    let mut out = s.write(b"<html><head>").to_vec();
    out.extend_from_slice(&s.finish());
    let out = String::from_utf8(out).expect("utf-8");
    assert!(out.contains(" nonce=\"r4nd0m\"></script>"), "{out}");
    // Unchanged headers: the nonce is enough.
    assert_eq!(
        headers[http::header::CONTENT_SECURITY_POLICY],
        "script-src 'nonce-r4nd0m' 'strict-dynamic'"
    );
    // No CSP: the shared tag.
    let mut none = http::HeaderMap::new();
    assert_eq!(rw.shim_tag_for(&mut none).as_deref(), Some(tag().as_str()));
}

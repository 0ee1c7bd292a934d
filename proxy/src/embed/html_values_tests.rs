//! HTML attribute values whose syntax the rewriter reads (CSS in `style`, `srcset`, refresh
//! `content`, HTML in `srcdoc`) with character references in them, and CDATA sections in
//! SVG/MathML: the page as the browser reads it must stay inside the prefix.

use super::{EmbedConfig, HtmlStream, Origins};

/// The page rewritten for `/embed/app`, fed whole and byte by byte (both must agree).
fn rewrite(page: &str) -> String {
    let rw = EmbedConfig::new("/embed/app").compile().expect("valid");
    let origins = Origins::new("http", Some("bloud.local"), Some("127.0.0.1:8085"));
    let run = |bytewise: bool| {
        let mut s = HtmlStream::new(&rw, &origins, None);
        let mut out = Vec::new();
        if bytewise {
            for b in page.as_bytes() {
                out.extend_from_slice(&s.write(std::slice::from_ref(b)));
            }
        } else {
            out.extend_from_slice(&s.write(page.as_bytes()));
        }
        out.extend_from_slice(&s.finish());
        String::from_utf8(out).expect("utf-8")
    };
    let whole = run(false);
    assert_eq!(run(true), whole, "chunking changed the output of {page}");
    whole
}

#[test]
fn references_are_decoded_in_style_srcset_and_refresh() {
    let cases: &[(&str, &str)] = &[
        // style: the quote inside url() comes back escaped for the attribute's quoting.
        (
            r#"<div style="background:url(&quot;/a.png&quot;)">"#,
            r#"<div style="background:url(&quot;/embed/app/a.png&quot;)">"#,
        ),
        (
            r#"<div style='background:url(&#39;/a.png&#39;)'>"#,
            r#"<div style="background:url('/embed/app/a.png')">"#,
        ),
        (
            r#"<div style="background:url(&#x2F;a.png)">"#,
            r#"<div style="background:url(/embed/app/a.png)">"#,
        ),
        (
            r#"<i style=background:url(&sol;a.png)>"#,
            r#"<i style=background:url(/embed/app/a.png)>"#,
        ),
        // srcset: the list separators and the URLs themselves may be references.
        (
            r#"<img srcset="&#x2F;a.png 1x&comma; &sol;b.png 2x">"#,
            r#"<img srcset="/embed/app/a.png 1x, /embed/app/b.png 2x">"#,
        ),
        // refresh: `url=` and the path.
        (
            r#"<meta http-equiv=refresh content="0;url=&#x2F;x">"#,
            r#"<meta http-equiv=refresh content="0;url=/embed/app/x">"#,
        ),
        (
            r#"<meta http-equiv=refresh content="0&semi;URL&equals;&apos;/x&apos;">"#,
            r#"<meta http-equiv=refresh content="0;URL='/embed/app/x'">"#,
        ),
        // Nothing to rewrite: the value stays exactly as written, references included.
        (
            r#"<div style="content:&quot;&copy;&quot;;background:url(//cdn.example/a.png)">"#,
            r#"<div style="content:&quot;&copy;&quot;;background:url(//cdn.example/a.png)">"#,
        ),
        // `&amp;` and other `&` of the value are kept as they were.
        (
            r#"<img srcset="/a.png?x=1&amp;y=&quot; 2x">"#,
            r#"<img srcset="/embed/app/a.png?x=1&amp;y=&quot; 2x">"#,
        ),
        // Other origins and protocol-relative URLs stay, decoded or not.
        (
            r#"<div style="background:url(&quot;//evil.example/a.png&quot;)">"#,
            r#"<div style="background:url(&quot;//evil.example/a.png&quot;)">"#,
        ),
        // Inline <style> elements keep working (no references there: raw text).
        (
            "<style>a{background:url(\"/a.png\")}</style>",
            "<style>a{background:url(\"/embed/app/a.png\")}</style>",
        ),
    ];
    for (page, want) in cases {
        assert_eq!(&rewrite(page), want, "{page}");
    }
}

#[test]
fn srcdoc_is_rewritten_as_html() {
    let cases: &[(&str, &str)] = &[
        (
            r#"<iframe srcdoc="&lt;a href=&quot;/x&quot;&gt;x&lt;/a&gt;"></iframe>"#,
            r#"<iframe srcdoc="&lt;a href=&quot;/embed/app/x&quot;&gt;x&lt;/a&gt;"></iframe>"#,
        ),
        // Single-quoted, with a style inside and an escaped ampersand that must stay escaped.
        (
            r#"<iframe srcdoc='<p style="background:url(/b.png)">a &amp;lt; b &copy;</p>'>"#,
            r#"<iframe srcdoc='&lt;p style=&quot;background:url(/embed/app/b.png)&quot;&gt;a &amp;lt; b &copy;&lt;/p&gt;'>"#,
        ),
        // Nested srcdoc, escaped twice.
        (
            r#"<iframe srcdoc="&lt;iframe srcdoc=&quot;&amp;lt;img src=/y&amp;gt;&quot;&gt;"></iframe>"#,
            r#"<iframe srcdoc="&lt;iframe srcdoc=&quot;&amp;lt;img src=/embed/app/y&amp;gt;&quot;&gt;"></iframe>"#,
        ),
        // Nothing to rewrite: unchanged bytes.
        (
            r#"<iframe srcdoc="&lt;p&gt;hi&lt;/p&gt;"></iframe>"#,
            r#"<iframe srcdoc="&lt;p&gt;hi&lt;/p&gt;"></iframe>"#,
        ),
        // Only on iframe.
        (
            r#"<div srcdoc="&lt;a href=/x&gt;"></div>"#,
            r#"<div srcdoc="&lt;a href=/x&gt;"></div>"#,
        ),
    ];
    for (page, want) in cases {
        assert_eq!(&rewrite(page), want, "{page}");
    }
}

#[test]
fn cdata_in_svg_and_math_ends_at_its_own_end() {
    let cases: &[(&str, &str)] = &[
        // A `>` inside CDATA does not end it: the text after it is not markup.
        (
            r#"<svg><![CDATA[ a > <a href="/x"> ]]><a href="/y"/></svg><a href=/z>"#,
            r#"<svg><![CDATA[ a > <a href="/x"> ]]><a href="/embed/app/y"/></svg><a href=/embed/app/z>"#,
        ),
        (
            "<math><![CDATA[x>y]]]><img src=/y></math>",
            "<math><![CDATA[x>y]]]><img src=/embed/app/y></math>",
        ),
        // Outside SVG/MathML it is a bogus comment up to the first `>` (HTML rules).
        (
            "<![CDATA[ a ><img src=/y> ]]>",
            "<![CDATA[ a ><img src=/embed/app/y> ]]>",
        ),
        // After </svg>, or a self-closed <svg/>, HTML rules again.
        (
            "<svg></svg><![CDATA[ a ><img src=/y>",
            "<svg></svg><![CDATA[ a ><img src=/embed/app/y>",
        ),
        (
            "<svg/><![CDATA[ a ><img src=/y>",
            "<svg/><![CDATA[ a ><img src=/embed/app/y>",
        ),
        // Nested roots count.
        (
            "<svg><math></math><![CDATA[>]]><image href=/y></svg>",
            "<svg><math></math><![CDATA[>]]><image href=/embed/app/y></svg>",
        ),
        // Cut at the end: everything comes out.
        ("<svg><![CDATA[ a >", "<svg><![CDATA[ a >"),
        ("<svg><![CDA", "<svg><![CDA"),
    ];
    for (page, want) in cases {
        assert_eq!(&rewrite(page), want, "{page}");
    }
}

//! Streaming rewrite of root-absolute URLs in `text/html`, on lol_html.
//!
//! Rewritten: `href`, `src`, `srcset`/`imagesrcset` lists, `action`, `formaction`, `poster`,
//! `object[data]`, SVG `xlink:href`, `<meta http-equiv=refresh content>`, inline `style`
//! attributes and `<style>` text (`url()`, `@import`), and every root-absolute string of a
//! `<script type=importmap>`. Targets follow [`EmbedRewriter::rewrite_url`]: `data:`, `//host`,
//! relative, already-prefixed, excluded and Authentik URLs stay as written.
//!
//! Memory: lol_html holds at most [`MAX_HELD`] bytes of unfinished markup (a tag split across
//! chunks); `<style>`/importmap text is streamed with a few bytes of lookahead. If lol_html
//! hits its limit or a handler fails, it flushes every byte it holds unchanged, and the rest
//! of the body passes through as is: a page is never truncated or reordered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use lol_html::html_content::{ContentType, Element, TextChunk};
use lol_html::send::{HtmlRewriter, SendHandlerTypes, Settings};
use lol_html::{
    AsciiCompatibleEncoding, ElementContentHandlers, HandlerResult, MemorySettings, OutputSink,
    Selector,
};

use super::config::EmbedRewriter;
use super::css::{rewrite_css_str, CssStream};
use super::location::Origins;

/// Bytes of markup lol_html may hold beyond the chunk in hand (one tag split across chunks).
pub const MAX_HELD: usize = 64 * 1024;
/// Chunks are fed to lol_html in slices of at most this size: while it holds an unfinished
/// tag, lol_html appends the next write to that tag in its buffer, and the buffer counts
/// against its memory limit. Without slicing, one 64 KiB upstream read after a split tag
/// exceeded the limit and stopped the rewriting of the rest of the page.
const WRITE_SLICE: usize = 16 * 1024;

type SendElement<'r, 't> = Element<'r, 't, SendHandlerTypes>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A handler panicking mid-write cannot leave a Vec or a scanner half-updated in a way that
    // matters more than losing the page; keep going with what is there.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Collects lol_html's output for the chunk in hand.
struct Sink(Arc<Mutex<Vec<u8>>>);

impl OutputSink for Sink {
    fn handle_chunk(&mut self, chunk: &[u8]) {
        lock(&self.0).extend_from_slice(chunk);
    }
}

/// Parsed once: selector parsing costs more than a small page.
///
/// One selector and handler per attribute is deliberate. Measured 2026-11-30 (callgrind
/// instruction counts, 1 MiB page of benches/embed_rewrite.rs): one selector list with one
/// handler that reads the attributes itself cost +35% (11 `get_attribute` calls per element,
/// each lower-casing and encoding the name) or +6% (one pass over `attributes()`, allocating
/// every name) per page, and saved only 12% of the ~64k instructions a response's set-up
/// costs; lol_html's matcher filters on the raw bytes without allocating.
struct Selectors {
    href: Selector,
    src: Selector,
    srcset: Selector,
    imagesrcset: Selector,
    action: Selector,
    formaction: Selector,
    poster: Selector,
    object_data: Selector,
    xlink_href: Selector,
    meta_refresh: Selector,
    style_attr: Selector,
    style: Selector,
    importmap: Selector,
    head: Selector,
    body: Selector,
}

fn selectors() -> Option<&'static Selectors> {
    static SELECTORS: OnceLock<Option<Selectors>> = OnceLock::new();
    SELECTORS
        .get_or_init(|| {
            let p = |s: &str| match s.parse::<Selector>() {
                Ok(sel) => Some(sel),
                Err(e) => {
                    tracing::error!(selector = s, error = %e, "embed: built-in selector does not parse; HTML passes through");
                    None
                }
            };
            Some(Selectors {
                href: p("[href]")?,
                src: p("[src]")?,
                srcset: p("[srcset]")?,
                imagesrcset: p("[imagesrcset]")?,
                action: p("form[action]")?,
                formaction: p("[formaction]")?,
                poster: p("[poster]")?,
                object_data: p("object[data]")?,
                xlink_href: p(r"[xlink\:href]")?,
                meta_refresh: p(r#"meta[http-equiv="refresh" i]"#)?,
                style_attr: p("[style]")?,
                style: p("style")?,
                importmap: p(r#"script[type="importmap" i]"#)?,
                head: p("head")?,
                body: p("body")?,
            })
        })
        .as_ref()
}

/// State a response's handlers share.
struct Ctx {
    rw: EmbedRewriter,
    origins: Origins,
}

impl Ctx {
    fn attr(
        &self,
        el: &mut SendElement,
        name: &str,
        f: impl Fn(&Ctx, &str) -> Option<String>,
    ) -> HandlerResult {
        if let Some(value) = el.get_attribute(name) {
            if let Some(new) = f(self, &value) {
                el.set_attribute(name, &new)?;
            }
        }
        Ok(())
    }

    /// Attribute values come raw from lol_html, entities included: `&#x2F;x` is `/x` to the
    /// browser. When the value's head has a reference, the decision is made on the decoded
    /// head and the prefix (which has no trailing `/`) goes in front of the raw value.
    fn url(&self, v: &str) -> Option<String> {
        let trimmed = v.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
        let window = self.rw.lookahead() * 8;
        let head_has_ref = trimmed.as_bytes().iter().take(window).any(|&b| b == b'&');
        if head_has_ref {
            let head = decode_references_head(trimmed, self.rw.lookahead());
            if head.starts_with('/') {
                if !self.rw.needs_prefix(head.as_bytes()) {
                    return None;
                }
                let lead = &v[..v.len() - trimmed.len()];
                return Some(format!("{lead}{}{trimmed}", self.rw.prefix()));
            }
        }
        self.rw.rewrite_url(v, &self.origins)
    }
}

/// Decodes character references at the start of `s` until `want` characters are known:
/// numeric ones and the named ones that spell URL punctuation. Anything else is kept as is.
fn decode_references_head(s: &str, want: usize) -> String {
    const NAMED: &[(&str, char)] = &[
        ("sol;", '/'),
        ("bsol;", '\\'),
        ("amp;", '&'),
        ("quest;", '?'),
        ("num;", '#'),
        ("colon;", ':'),
        ("period;", '.'),
    ];
    let mut out = String::new();
    let mut rest = s;
    while out.chars().count() < want {
        let Some(c) = rest.chars().next() else {
            break;
        };
        if c != '&' {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let after = &rest[1..];
        let numeric = after.strip_prefix('#').and_then(|num| {
            let (digits, radix, skip) = match num.strip_prefix(['x', 'X']) {
                Some(hex) => (hex, 16, 2),
                None => (num, 10, 1),
            };
            let len = digits
                .bytes()
                .take_while(|b| b.is_ascii_hexdigit() && (radix == 16 || b.is_ascii_digit()))
                .count();
            let value = u32::from_str_radix(digits.get(..len)?, radix).ok()?;
            let used = skip + len + usize::from(digits[len..].starts_with(';'));
            Some((char::from_u32(value).unwrap_or('\u{fffd}'), used))
        });
        let named = || {
            NAMED
                .iter()
                .find(|(name, _)| after.starts_with(name))
                .map(|(name, ch)| (*ch, name.len()))
        };
        match numeric.or_else(named) {
            Some((ch, used)) => {
                out.push(ch);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out
}

/// A raw-text scanner (`<style>` or importmap) shared by its text and end-tag handlers.
type TextScanner = Arc<Mutex<Option<CssStream>>>;

/// Feeds one text chunk through the element's scanner, replacing the chunk with the output.
fn scan_text(scanner: &TextScanner, chunk: &mut TextChunk, make: impl FnOnce() -> CssStream) {
    let mut guard = lock(scanner);
    let stream = guard.get_or_insert_with(make);
    let text = chunk.as_str();
    let mut out = Vec::with_capacity(text.len() + 32);
    stream.write_into(text.as_bytes(), &mut out);
    if chunk.last_in_text_node() {
        stream.finish_into(&mut out);
        *guard = None;
    }
    if out != text.as_bytes() {
        // Held bytes start at an ASCII `/` and the prefix is ASCII, so char boundaries hold.
        let new = String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        chunk.replace(&new, ContentType::Html);
    }
}

/// Emits whatever the scanner still holds right before the element's end tag.
fn flush_before_end_tag(scanner: &TextScanner, el: &mut SendElement) -> HandlerResult {
    let scanner = Arc::clone(scanner);
    if let Some(handlers) = el.end_tag_handlers() {
        handlers.push(Box::new(move |end| {
            if let Some(mut stream) = lock(&scanner).take() {
                let mut out = Vec::new();
                stream.finish_into(&mut out);
                if !out.is_empty() {
                    end.before(&String::from_utf8_lossy(&out), ContentType::Html);
                }
            }
            Ok(())
        }));
    }
    Ok(())
}

fn element_handler<'s>(
    sel: &'s Selector,
    f: impl FnMut(&mut SendElement) -> HandlerResult + Send + 'static,
) -> (
    std::borrow::Cow<'s, Selector>,
    ElementContentHandlers<'static, SendHandlerTypes>,
) {
    (
        std::borrow::Cow::Borrowed(sel),
        ElementContentHandlers::default().element(f),
    )
}

/// Streaming HTML rewriter for one response body. `Send + Sync`, so it can live in a Pingora
/// CTX as is.
pub struct HtmlStream {
    /// `None` once finished or after a bail-out (then input passes through).
    rewriter: Mutex<Option<HtmlRewriter<'static, Sink>>>,
    out: Arc<Mutex<Vec<u8>>>,
    scanners: Vec<TextScanner>,
}

impl std::fmt::Debug for HtmlStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HtmlStream").finish_non_exhaustive()
    }
}

impl HtmlStream {
    /// `charset` is the `Content-Type` charset parameter, if any (a `<meta charset>` is then
    /// honoured). A charset lol_html cannot parse (UTF-16) makes the stream a plain copy.
    pub fn new(rw: &EmbedRewriter, origins: &Origins, charset: Option<&str>) -> Self {
        let out = Arc::new(Mutex::new(Vec::new()));
        let passthrough = HtmlStream {
            rewriter: Mutex::new(None),
            out: Arc::clone(&out),
            scanners: Vec::new(),
        };
        let Some(sels) = selectors() else {
            return passthrough;
        };
        let encoding = match charset {
            None => AsciiCompatibleEncoding::utf_8(),
            Some(label) => {
                match encoding_rs::Encoding::for_label_no_replacement(label.trim().as_bytes())
                    .and_then(AsciiCompatibleEncoding::new)
                {
                    Some(enc) => enc,
                    None => {
                        tracing::debug!(
                            charset = label,
                            "embed: charset not rewritable, HTML passes through"
                        );
                        return passthrough;
                    }
                }
            }
        };
        let ctx = Arc::new(Ctx {
            rw: rw.clone(),
            origins: origins.clone(),
        });
        let cfg = rw.config();
        let mut handlers = Vec::new();
        let mut scanners = Vec::new();
        if cfg.html {
            let attr = |sel: &'static Selector,
                        name: &'static str,
                        f: fn(&Ctx, &str) -> Option<String>| {
                let ctx = Arc::clone(&ctx);
                element_handler(sel, move |el| ctx.attr(el, name, f))
            };
            handlers.push(attr(&sels.href, "href", Ctx::url));
            handlers.push(attr(&sels.src, "src", Ctx::url));
            handlers.push(attr(&sels.action, "action", Ctx::url));
            handlers.push(attr(&sels.formaction, "formaction", Ctx::url));
            handlers.push(attr(&sels.poster, "poster", Ctx::url));
            handlers.push(attr(&sels.object_data, "data", Ctx::url));
            handlers.push(attr(&sels.xlink_href, "xlink:href", Ctx::url));
            handlers.push(attr(&sels.srcset, "srcset", |c, v| {
                c.rw.rewrite_srcset(v, &c.origins)
            }));
            handlers.push(attr(&sels.imagesrcset, "imagesrcset", |c, v| {
                c.rw.rewrite_srcset(v, &c.origins)
            }));
            handlers.push(attr(&sels.meta_refresh, "content", |c, v| {
                c.rw.rewrite_refresh(v, &c.origins)
            }));
            handlers.push(attr(&sels.style_attr, "style", |c, v| {
                rewrite_css_str(&c.rw, v)
            }));
            for (sel, json) in [(&sels.style, false), (&sels.importmap, true)] {
                let scanner: TextScanner = Arc::new(Mutex::new(None));
                scanners.push(Arc::clone(&scanner));
                let on_text = Arc::clone(&scanner);
                let rw_text = rw.clone();
                let on_end = Arc::clone(&scanner);
                handlers.push((
                    std::borrow::Cow::Borrowed(sel),
                    ElementContentHandlers::default()
                        .element(move |el: &mut SendElement| flush_before_end_tag(&on_end, el))
                        .text(move |chunk: &mut TextChunk| {
                            scan_text(&on_text, chunk, || {
                                if json {
                                    CssStream::json(rw_text.clone())
                                } else {
                                    CssStream::new(rw_text.clone())
                                }
                            });
                            Ok(())
                        }),
                ));
            }
        }
        if let Some(template) = rw.inject() {
            let markup: Arc<str> = template
                .render(&origins.public_origin(), rw.prefix())
                .into();
            let done = Arc::new(AtomicBool::new(false));
            let (m, d) = (Arc::clone(&markup), Arc::clone(&done));
            handlers.push(element_handler(&sels.head, move |el| {
                if !d.swap(true, Ordering::Relaxed) {
                    el.prepend(&m, ContentType::Html);
                }
                Ok(())
            }));
            // No `<head>` tag before `<body>`: inject ahead of the body instead.
            handlers.push(element_handler(&sels.body, move |el| {
                if !done.swap(true, Ordering::Relaxed) {
                    el.before(&markup, ContentType::Html);
                }
                Ok(())
            }));
        }
        let settings = handlers
            .into_iter()
            .fold(Settings::new_send(), |s, h| {
                s.append_element_content_handler(h)
            })
            .with_encoding(encoding)
            .with_adjust_charset_on_meta_tag(charset.is_none())
            // Non-strict: a parsing ambiguity is not a reason to stop rewriting URLs, and strict
            // mode's error is the one lol_html cannot recover from without losing bytes.
            .with_strict(false)
            .with_graceful_bail_out_on_content_handler_error(true)
            .with_memory_settings(
                MemorySettings::new()
                    .with_preallocated_parsing_buffer_size(4096)
                    .with_max_allowed_memory_usage(MAX_HELD + WRITE_SLICE)
                    .with_graceful_bail_out_on_memory_limit_exceeded(true),
            );
        let rewriter = HtmlRewriter::new(settings, Sink(Arc::clone(&out)));
        HtmlStream {
            rewriter: Mutex::new(Some(rewriter)),
            out,
            scanners,
        }
    }

    /// Rewrites the next chunk of the body; returns the output ready to send.
    pub fn write(&mut self, chunk: &[u8]) -> Bytes {
        let slot = self.rewriter.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(rewriter) = slot.as_mut() else {
            return Bytes::copy_from_slice(chunk);
        };
        for (i, slice) in chunk.chunks(WRITE_SLICE).enumerate() {
            if let Err(e) = rewriter.write(slice) {
                // lol_html has flushed every byte it held (graceful bail-out); continue raw.
                tracing::warn!(error = %e, "embed: HTML rewriting stopped, rest of the page passes through");
                *slot = None;
                let mut out = self.take_output().to_vec();
                // lol_html flushed the failing slice too; the slices after it follow raw.
                out.extend_from_slice(chunk.get((i + 1) * WRITE_SLICE..).unwrap_or_default());
                return Bytes::from(out);
            }
        }
        self.take_output()
    }

    /// Ends the body; returns the last output. Later writes pass through.
    pub fn finish(&mut self) -> Bytes {
        let slot = self.rewriter.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(rewriter) = slot.take() {
            if let Err(e) = rewriter.end() {
                tracing::warn!(error = %e, "embed: HTML rewriting failed at the end of the page");
            }
        }
        // A document cut inside `<style>` never reaches its end tag: its held bytes go last.
        let mut tail = Vec::new();
        for scanner in &self.scanners {
            if let Some(mut stream) = lock(scanner).take() {
                stream.finish_into(&mut tail);
            }
        }
        let mut out = std::mem::take(&mut *lock(&self.out));
        out.extend_from_slice(&tail);
        Bytes::from(out)
    }

    /// Whether the rewriter is still active (false after finish or a bail-out).
    pub fn is_rewriting(&self) -> bool {
        lock(&self.rewriter).is_some()
    }

    fn take_output(&self) -> Bytes {
        Bytes::from(std::mem::take(&mut *lock(&self.out)))
    }
}

impl EmbedRewriter {
    /// Rewrites each URL of a `srcset` (`/a.png 1x, /b.png 2x`), keeping descriptors and
    /// spacing; `None` if nothing changed.
    pub fn rewrite_srcset(&self, value: &str, origins: &Origins) -> Option<String> {
        let b = value.as_bytes();
        let ws = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c');
        let mut out = String::new();
        let mut copied = 0;
        let mut i = 0;
        loop {
            while i < b.len() && (ws(b[i]) || b[i] == b',') {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
            let start = i;
            while i < b.len() && !ws(b[i]) {
                i += 1;
            }
            let mut end = i;
            if b[end - 1] == b',' {
                while end > start && b[end - 1] == b',' {
                    end -= 1;
                }
            } else {
                let mut depth = 0usize;
                while i < b.len() {
                    match b[i] {
                        b'(' => depth += 1,
                        b')' => depth = depth.saturating_sub(1),
                        b',' if depth == 0 => break,
                        _ => {}
                    }
                    i += 1;
                }
            }
            if let Some(new) = self.rewrite_url(&value[start..end], origins) {
                out.push_str(&value[copied..start]);
                out.push_str(&new);
                copied = end;
            }
        }
        if copied == 0 {
            return None;
        }
        out.push_str(&value[copied..]);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::EmbedConfig;

    #[test]
    fn large_writes_after_a_split_tag_keep_rewriting() {
        // Pingora hands over upstream reads of 64 KiB and more; a tag cut at the end of one
        // read used to make lol_html buffer it next to the whole next read and bail out.
        let rw = EmbedConfig::new("/embed/app").compile().expect("valid");
        let line = "<p><a href=\"/static/x.html\"><img src=\"/static/x.png\"></a></p>\n";
        let page = line.repeat((1 << 20) / line.len());
        let mut s = HtmlStream::new(&rw, &Origins::default(), None);
        let mut out = Vec::new();
        for chunk in page.as_bytes().chunks(100 * 1024 + 7) {
            out.extend_from_slice(&s.write(chunk));
            assert!(s.is_rewriting(), "rewriting stopped on a large write");
        }
        out.extend_from_slice(&s.finish());
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            page.replace("\"/static/", "\"/embed/app/static/")
        );
    }

    #[test]
    fn tag_bound_attributes_only_on_their_tags() {
        // `action`, `data` and `content` are URLs only on form, object and meta refresh.
        let rw = EmbedConfig::new("/embed/app").compile().expect("valid");
        let page = concat!(
            r#"<meta name="og:url" content="/a"><meta http-equiv="REFRESH" content="0; url=/b">"#,
            r#"<div action="/c" data="/d" href="/e"></div><FORM ACTION="/f"></FORM>"#,
            r#"<object data="/g"></object><embed src="/h" data="/i">"#,
            r#"<meta http-equiv="refresh " content="0; url=/j">"#,
        );
        let mut s = HtmlStream::new(&rw, &Origins::default(), None);
        let mut out = s.write(page.as_bytes()).to_vec();
        out.extend_from_slice(&s.finish());
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            concat!(
                r#"<meta name="og:url" content="/a"><meta http-equiv="REFRESH" content="0; url=/embed/app/b">"#,
                r#"<div action="/c" data="/d" href="/embed/app/e"></div><FORM ACTION="/embed/app/f"></FORM>"#,
                r#"<object data="/embed/app/g"></object><embed src="/embed/app/h" data="/i">"#,
                r#"<meta http-equiv="refresh " content="0; url=/j">"#,
            )
        );
    }

    #[test]
    fn references_in_attribute_heads() {
        assert_eq!(decode_references_head("&#x2F;a&sol;b&#47;c", 10), "/a/b/c");
        assert_eq!(decode_references_head("&copy;&#xZZ;&", 20), "&copy;&#xZZ;&");
        let ctx = Ctx {
            rw: EmbedConfig::new("/embed/app").compile().expect("valid"),
            origins: Origins::default(),
        };
        let cases: &[(&str, Option<&str>)] = &[
            ("&#x2F;entity", Some("/embed/app&#x2F;entity")),
            (" &#47;x?a=1&amp;b=2", Some(" /embed/app&#47;x?a=1&amp;b=2")),
            ("&sol;&sol;evil.example/", None),
            ("&#x2F;embed&#x2F;app/x", None),
            ("/x?a=1&amp;b=2", Some("/embed/app/x?a=1&amp;b=2")),
            ("&amp;x", None),
        ];
        for (raw, want) in cases {
            assert_eq!(ctx.url(raw).as_deref(), *want, "{raw}");
        }
    }
}

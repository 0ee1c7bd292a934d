//! Streaming rewrite of root-absolute URLs in `text/html`.
//!
//! Rewritten: `href`, `src`, `srcset`/`imagesrcset` lists, `form[action]`, `formaction`,
//! `poster`, `object[data]`, SVG `xlink:href`, `<meta http-equiv=refresh content>`, inline
//! `style` attributes and `<style>` text (`url()`, `@import`), every root-absolute string
//! of a `<script type=importmap>`, and `iframe[srcdoc]` documents (rewritten as HTML). In
//! `style`, `srcset` and refresh values, character references are decoded first
//! ([`super::char_refs`]); CDATA sections of SVG/MathML are found by [`super::foreign`]. Targets follow [`EmbedRewriter::rewrite_url`]: `data:`,
//! `//host`, relative, already-prefixed, excluded and Authentik URLs stay as written.
//!
//! The page goes through a tokenizer of its own that follows the HTML standard's rules for
//! what the rewriting depends on: where tags, attributes and quoted values begin and end,
//! comments, `<!…>`/`<?…>` constructs, and raw-text elements (`script`, `style`, `textarea`,
//! `title`, `xmp`, `iframe`, `noembed`, `noframes`, `plaintext`) whose content is not markup.
//! Everything else is copied through untouched, and attribute values keep their quoting. It
//! replaced lol_html, which capped the rewrite at ~53 MB/s and spent ~64k instructions per
//! response compiling its selectors (docs/performance.md, "HTML rewriting").
//!
//! Memory: one unfinished tag is held, at most [`MAX_HELD`] bytes; a longer tag (a huge
//! `data:` URL) passes through unchanged and rewriting goes on after it. Comments and text
//! stream without holding anything; a raw-text element holds the few bytes that may start its
//! end tag, `<style>`/importmap text a few bytes of an undecided URL.
//!
//! Charsets: all syntax is ASCII, so any ASCII-compatible charset is scanned as bytes, and a
//! value that is not UTF-8 is rewritten through a byte-for-byte (Latin-1) view, so its other
//! bytes come out unchanged. Bodies in a charset that is not ASCII-compatible (UTF-16) pass
//! through.

use std::sync::Arc;

use bytes::Bytes;

use super::char_refs::{decode_ascii, escape_srcdoc, Amp, AMP_MARK};
use super::config::EmbedRewriter;
use super::css::{rewrite_css_str, CssStream};
use super::foreign;
use super::is_ascii_ws;
use super::location::Origins;

/// Bytes of one unfinished tag held beyond the chunk in hand.
pub const MAX_HELD: usize = 64 * 1024;

/// Elements whose content is text up to their end tag (HTML standard, "raw text" and
/// "escapable raw text" elements, with scripting enabled for `noembed`/`noframes`).
const RAW_TEXT: &[&[u8]] = &[
    b"script",
    b"style",
    b"textarea",
    b"title",
    b"xmp",
    b"iframe",
    b"noembed",
    b"noframes",
];

/// Streaming HTML rewriter for one response body.
pub struct HtmlStream {
    /// `None` when the body passes through (a charset that is not ASCII-compatible).
    ctx: Option<Ctx>,
    state: State,
    /// The start of an unfinished tag, or the bytes that may begin an end tag or a comment,
    /// carried to the next write.
    held: Vec<u8>,
    /// Attribute spans of the tag being rewritten (reused from tag to tag).
    attrs: Vec<Attr>,
    /// The `<style>` (CSS) or importmap (JSON) text being rewritten, if any.
    text: Option<CssStream>,
    /// Markup for the start of `<head>` (the `inject` option) until it is placed.
    inject: Option<Box<str>>,
    /// The shim's `<script>` tag until it is placed, or dropped when the body is a fragment.
    shim: Option<Arc<str>>,
    /// What the body began with, while the shim waits for its place.
    lead: Lead,
    /// Open `<svg>`/`<math>` elements: CDATA sections exist only inside them.
    foreign: u32,
    finished: bool,
}

/// How the body began, as far as the shim's placement goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lead {
    /// Only a BOM, whitespace, comments or `<?xml …?>` so far: document or fragment is open.
    Start,
    /// A full document (`<!doctype`, `<html` or `<head` first): the shim goes right after
    /// `<head>`, or before the first other element or text.
    Document,
}

impl std::fmt::Debug for HtmlStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HtmlStream")
            .field("state", &self.state)
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    /// Inside `<!-- … -->`: `dashes` seen in a row, `bang` after `--!`, `len` content bytes
    /// so far (up to 2: `<!-->` and `<!--->` end at once).
    Comment {
        dashes: u8,
        bang: bool,
        len: u8,
    },
    /// `<!…>`, `<?…>`, `</…>` that is not an end tag: text up to the next `>`.
    Bogus,
    /// Content of a raw-text element, up to `</name`.
    RawText(&'static [u8]),
    /// After `<plaintext>`: everything is text.
    Plaintext,
    /// The rest of a tag too long to hold, passed through as is.
    SkipTag(TagScan),
    /// Inside `<![CDATA[` in SVG/MathML, up to `]]>`; `brackets` is the `]` run so far.
    Cdata {
        brackets: u8,
    },
}

/// Where a tag scan stopped, enough to find the tag's end without holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TagScan {
    /// Inside a quoted attribute value with this quote.
    quote: Option<u8>,
    /// Right after `=` (and spaces): a quote here opens a value.
    after_eq: bool,
}

#[derive(Debug, Clone, Copy)]
struct Attr {
    name: (usize, usize),
    /// Value span (without quotes) and its quote (`0` when unquoted).
    value: Option<(usize, usize, u8)>,
}

enum Scan {
    /// The tag ends before this index (after its `>`); `name` is the tag name span.
    Complete { end: usize, name: (usize, usize) },
    /// No `>` yet; the state at the end of the input.
    Incomplete(TagScan),
}

/// Byte classes for the tag scanner's inner loops (one table load instead of a chain of
/// comparisons per byte).
const SPACE: u8 = 1;
/// Ends a tag name: space, `/`, `>`.
const NAME_END: u8 = 2;
/// Ends an attribute name: space, `/`, `>`, `=`.
const ATTR_END: u8 = 4;
/// Ends an unquoted value: space, `>`.
const VALUE_END: u8 = 8;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        if is_ascii_ws(b as u8) {
            t[b] = SPACE | NAME_END | ATTR_END | VALUE_END;
        }
        b += 1;
    }
    t[b'/' as usize] = NAME_END | ATTR_END;
    t[b'>' as usize] = NAME_END | ATTR_END | VALUE_END;
    t[b'=' as usize] = ATTR_END;
    t
};

fn is(b: u8, class: u8) -> bool {
    CLASS[b as usize] & class != 0
}

fn is_space(b: u8) -> bool {
    is(b, SPACE)
}

/// Tokenizes the tag starting at `buf[start] == b'<'` (start or end tag), recording the
/// attributes of a start tag into `attrs`.
fn scan_tag(buf: &[u8], start: usize, attrs: &mut Vec<Attr>) -> Scan {
    attrs.clear();
    let n = buf.len();
    let mut i = start + 1;
    if buf.get(i) == Some(&b'/') {
        i += 1;
    }
    let name_start = i;
    while i < n && !is(buf[i], NAME_END) {
        i += 1;
    }
    let name = (name_start, i);
    let incomplete = |quote, after_eq| Scan::Incomplete(TagScan { quote, after_eq });
    loop {
        // Before an attribute name.
        while i < n && (is_space(buf[i]) || buf[i] == b'/') {
            i += 1;
        }
        if i >= n {
            return incomplete(None, false);
        }
        if buf[i] == b'>' {
            return Scan::Complete { end: i + 1, name };
        }
        // Attribute name: the first character may be anything, `=` included.
        let a = i;
        i += 1;
        while i < n && !is(buf[i], ATTR_END) {
            i += 1;
        }
        let attr_name = (a, i);
        while i < n && is_space(buf[i]) {
            i += 1;
        }
        if i >= n {
            return incomplete(None, false);
        }
        if buf[i] != b'=' {
            attrs.push(Attr {
                name: attr_name,
                value: None,
            });
            continue;
        }
        i += 1;
        while i < n && is_space(buf[i]) {
            i += 1;
        }
        if i >= n {
            return incomplete(None, true);
        }
        match buf[i] {
            q @ (b'"' | b'\'') => {
                let v = i + 1;
                let Some(len) = memchr::memchr(q, &buf[v..]) else {
                    return incomplete(Some(q), false);
                };
                attrs.push(Attr {
                    name: attr_name,
                    value: Some((v, v + len, q)),
                });
                i = v + len + 1;
            }
            b'>' => {
                attrs.push(Attr {
                    name: attr_name,
                    value: None,
                });
                return Scan::Complete { end: i + 1, name };
            }
            _ => {
                let v = i;
                while i < n && !is(buf[i], VALUE_END) {
                    i += 1;
                }
                attrs.push(Attr {
                    name: attr_name,
                    value: Some((v, i, 0)),
                });
            }
        }
    }
}

/// What an attribute holds, when it is something the rewriter changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Url,
    Srcset,
    Refresh,
    Style,
    /// `iframe[srcdoc]`: a whole HTML document, escaped into the attribute.
    Srcdoc,
}

/// The kind of a rewritten attribute and a bit of its own (to skip duplicates).
fn attr_kind(tag: &[u8], attr: &[u8], meta_refresh: bool) -> Option<(Kind, u16)> {
    let is = |name: &[u8]| attr.eq_ignore_ascii_case(name);
    let tag_is = |name: &[u8]| tag.eq_ignore_ascii_case(name);
    let (kind, bit) = match attr.len() {
        3 if is(b"src") => (Kind::Url, 0),
        4 if is(b"href") => (Kind::Url, 1),
        4 if is(b"data") && tag_is(b"object") => (Kind::Url, 2),
        5 if is(b"style") => (Kind::Style, 3),
        6 if is(b"srcset") => (Kind::Srcset, 4),
        6 if is(b"poster") => (Kind::Url, 5),
        6 if is(b"srcdoc") && tag_is(b"iframe") => (Kind::Srcdoc, 11),
        6 if is(b"action") && tag_is(b"form") => (Kind::Url, 6),
        7 if is(b"content") && meta_refresh => (Kind::Refresh, 7),
        10 if is(b"formaction") => (Kind::Url, 8),
        10 if is(b"xlink:href") => (Kind::Url, 9),
        11 if is(b"imagesrcset") => (Kind::Srcset, 10),
        _ => return None,
    };
    Some((kind, 1 << bit))
}

/// Runs a `&str` rewrite on a value; values that are not UTF-8 go through a Latin-1 view
/// (one char per byte), and come back byte for byte when the rewrite only added ASCII.
fn rewrite_value(raw: &[u8], f: impl Fn(&str) -> Option<String>) -> Option<Vec<u8>> {
    if let Ok(s) = std::str::from_utf8(raw) {
        return f(s).map(String::into_bytes);
    }
    let latin1: String = raw.iter().map(|&b| char::from(b)).collect();
    let new = f(&latin1)?;
    new.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

impl HtmlStream {
    /// `charset` is the `Content-Type` charset parameter, if any. A charset that is not
    /// ASCII-compatible (UTF-16) makes the stream a plain copy.
    pub fn new(rw: &EmbedRewriter, origins: &Origins, charset: Option<&str>) -> Self {
        let readable = charset.is_none_or(|label| {
            let enc = encoding_rs::Encoding::for_label_no_replacement(label.trim().as_bytes());
            let ok = enc.is_some_and(|e| e.is_ascii_compatible());
            if !ok {
                tracing::debug!(
                    charset = label,
                    "embed: charset not rewritable, HTML passes through"
                );
            }
            ok
        });
        let inject = readable
            .then(|| rw.inject())
            .flatten()
            .map(|t| t.render(&origins.public_origin(), rw.prefix()).into());
        let shim = readable.then(|| rw.shim_tag()).flatten();
        HtmlStream {
            ctx: readable.then(|| Ctx {
                rw: rw.clone(),
                origins: origins.clone(),
            }),
            state: State::Data,
            held: Vec::new(),
            attrs: Vec::new(),
            text: None,
            inject,
            shim,
            lead: Lead::Start,
            foreign: 0,
            finished: false,
        }
    }

    /// Uses this shim tag (fitted to the response's CSP) instead of the route's usual one;
    /// `None` injects no shim. Call before the first write.
    pub fn with_shim_tag(mut self, tag: Option<Arc<str>>) -> Self {
        if self.ctx.is_some() {
            self.shim = tag;
        }
        self
    }

    /// Writes text of the document to `out`. While the shim waits, text that is not
    /// whitespace (or a BOM) decides its fate: before any tag it makes the body a fragment;
    /// after the doctype or `<html>` it is the body's first content, and the shim goes right
    /// before its first such byte, so the output does not depend on where chunks split it.
    fn lead_text(&mut self, text: &[u8], out: &mut Vec<u8>) {
        let content = text
            .iter()
            .position(|&b| !(is_ascii_ws(b) || matches!(b, 0xEF | 0xBB | 0xBF)));
        let Some(at) = content else {
            out.extend_from_slice(text);
            return;
        };
        out.extend_from_slice(&text[..at]);
        if let Some(tag) = self.shim.take() {
            if self.lead == Lead::Document {
                out.extend_from_slice(tag.as_bytes());
            }
        }
        out.extend_from_slice(&text[at..]);
    }

    /// Rewrites the next chunk of the body; returns the output ready to send.
    pub fn write(&mut self, chunk: &[u8]) -> Bytes {
        if self.ctx.is_none() || self.finished {
            return Bytes::copy_from_slice(chunk);
        }
        let mut out = Vec::with_capacity(chunk.len() + self.held.len() + 256);
        if self.held.is_empty() {
            let used = self.run(chunk, &mut out, false);
            self.held.extend_from_slice(&chunk[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.held);
            buf.extend_from_slice(chunk);
            let used = self.run(&buf, &mut out, false);
            buf.drain(..used);
            self.held = buf;
        }
        Bytes::from(out)
    }

    /// Ends the body; returns the last output. Later writes pass through.
    pub fn finish(&mut self) -> Bytes {
        if self.finished {
            return Bytes::new();
        }
        self.finished = true;
        let mut out = Vec::new();
        if self.ctx.is_some() {
            let buf = std::mem::take(&mut self.held);
            let used = self.run(&buf, &mut out, true);
            out.extend_from_slice(&buf[used..]);
        }
        // A document that ended before any content (`<!doctype html><html>`) still gets it.
        if self.lead == Lead::Document {
            if let Some(markup) = self.shim.take() {
                out.extend_from_slice(markup.as_bytes());
            }
        }
        // A document cut inside `<style>` never reaches its end tag: its held bytes go last.
        if let Some(mut text) = self.text.take() {
            text.finish_into(&mut out);
        }
        Bytes::from(out)
    }

    /// Whether the stream still rewrites (false for a pass-through charset or after finish).
    pub fn is_rewriting(&self) -> bool {
        self.ctx.is_some() && !self.finished
    }

    /// Processes `buf`; returns how much of it was consumed (the rest is held). With `eof`,
    /// nothing is held back.
    fn run(&mut self, buf: &[u8], out: &mut Vec<u8>, eof: bool) -> usize {
        let mut i = 0;
        while i < buf.len() {
            match self.state {
                State::Data => {
                    let Some(lt) = memchr::memchr(b'<', &buf[i..]) else {
                        if self.shim.is_some() {
                            self.lead_text(&buf[i..], out);
                        } else {
                            out.extend_from_slice(&buf[i..]);
                        }
                        return buf.len();
                    };
                    if self.shim.is_some() {
                        self.lead_text(&buf[i..i + lt], out);
                    } else {
                        out.extend_from_slice(&buf[i..i + lt]);
                    }
                    i += lt;
                    match self.markup(buf, i, out, eof) {
                        Some(next) => i = next,
                        None => return i,
                    }
                }
                State::Comment {
                    mut dashes,
                    mut bang,
                    mut len,
                } => {
                    let start = i;
                    while i < buf.len() {
                        let b = buf[i];
                        i += 1;
                        if b == b'>'
                            && (len == 0 || (len == 1 && dashes == 1) || dashes >= 2 || bang)
                        {
                            self.state = State::Data;
                            break;
                        }
                        len = len.saturating_add(1).min(2);
                        match b {
                            b'-' => {
                                dashes = dashes.saturating_add(1);
                                bang = false;
                            }
                            b'!' if dashes >= 2 => {
                                bang = true;
                                dashes = 0;
                            }
                            _ => {
                                dashes = 0;
                                bang = false;
                            }
                        }
                        self.state = State::Comment { dashes, bang, len };
                    }
                    out.extend_from_slice(&buf[start..i]);
                }
                State::Bogus => match memchr::memchr(b'>', &buf[i..]) {
                    Some(gt) => {
                        out.extend_from_slice(&buf[i..=i + gt]);
                        i += gt + 1;
                        self.state = State::Data;
                    }
                    None => {
                        out.extend_from_slice(&buf[i..]);
                        return buf.len();
                    }
                },
                State::RawText(name) => {
                    let mut from = i;
                    let end = loop {
                        let Some(lt) = memchr::memchr(b'<', &buf[from..]) else {
                            break None;
                        };
                        let at = from + lt;
                        let need = at + 2 + name.len() + 1;
                        if need > buf.len() {
                            if eof {
                                break None;
                            }
                            // Maybe the start of the end tag: decide with the next chunk.
                            self.text_out(&buf[i..at], out);
                            return at;
                        }
                        let candidate = &buf[at + 1..need];
                        let delimiter = candidate[name.len() + 1];
                        if candidate[0] == b'/'
                            && candidate[1..=name.len()].eq_ignore_ascii_case(name)
                            && (delimiter == b'>' || delimiter == b'/' || is_space(delimiter))
                        {
                            break Some(at);
                        }
                        from = at + 1;
                    };
                    match end {
                        Some(at) => {
                            self.text_out(&buf[i..at], out);
                            if let Some(mut text) = self.text.take() {
                                text.finish_into(out);
                            }
                            self.state = State::Data;
                            i = at;
                        }
                        None => {
                            self.text_out(&buf[i..], out);
                            return buf.len();
                        }
                    }
                }
                State::Plaintext => {
                    out.extend_from_slice(&buf[i..]);
                    return buf.len();
                }
                State::Cdata { brackets } => {
                    let (used, open) = foreign::scan_cdata(&buf[i..], brackets);
                    out.extend_from_slice(&buf[i..i + used]);
                    i += used;
                    self.state = match open {
                        Some(brackets) => State::Cdata { brackets },
                        None => State::Data,
                    };
                }
                State::SkipTag(mut scan) => {
                    let start = i;
                    while i < buf.len() {
                        let b = buf[i];
                        i += 1;
                        match scan.quote {
                            Some(q) if b == q => scan.quote = None,
                            Some(_) => {}
                            None if b == b'>' => {
                                self.state = State::Data;
                                break;
                            }
                            None if scan.after_eq && (b == b'"' || b == b'\'') => {
                                scan.quote = Some(b);
                                scan.after_eq = false;
                            }
                            None if b == b'=' => scan.after_eq = true,
                            None if is_space(b) => {}
                            None => scan.after_eq = false,
                        }
                        self.state = State::SkipTag(scan);
                    }
                    out.extend_from_slice(&buf[start..i]);
                }
            }
        }
        buf.len()
    }

    /// Text of a raw-text element: through the CSS/JSON rewriter when there is one.
    fn text_out(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        match self.text.as_mut() {
            Some(text) => text.write_into(bytes, out),
            None => out.extend_from_slice(bytes),
        }
    }

    /// Handles the markup starting at `buf[i] == b'<'`; returns where data continues, or
    /// `None` when more input is needed to decide.
    fn markup(&mut self, buf: &[u8], i: usize, out: &mut Vec<u8>, eof: bool) -> Option<usize> {
        let rest = &buf[i + 1..];
        let Some(&c) = rest.first() else {
            return self.text_at_end(buf, i, out, eof);
        };
        match c {
            b'!' => {
                if rest.len() < 3 && b"!--".starts_with(rest) && !eof {
                    return None;
                }
                if self.foreign > 0 {
                    let n = rest.len().min(foreign::CDATA_OPEN.len());
                    if rest.len() < foreign::CDATA_OPEN.len()
                        && rest[..n] == foreign::CDATA_OPEN[..n]
                        && !eof
                    {
                        return None;
                    }
                    if rest.starts_with(foreign::CDATA_OPEN) {
                        out.extend_from_slice(&buf[i..=i + foreign::CDATA_OPEN.len()]);
                        self.state = State::Cdata { brackets: 0 };
                        return Some(i + 1 + foreign::CDATA_OPEN.len());
                    }
                }
                if rest.starts_with(b"!--") {
                    out.extend_from_slice(b"<!--");
                    self.state = State::Comment {
                        dashes: 0,
                        bang: false,
                        len: 0,
                    };
                    return Some(i + 4);
                }
                if self.shim.is_some() && self.lead == Lead::Start {
                    const DOCTYPE: &[u8] = b"!doctype";
                    let n = rest.len().min(DOCTYPE.len());
                    let matches = rest[..n].eq_ignore_ascii_case(&DOCTYPE[..n]);
                    if matches && n < DOCTYPE.len() && !eof {
                        return None;
                    }
                    if matches && n == DOCTYPE.len() {
                        self.lead = Lead::Document;
                    } else {
                        // `<![CDATA[`, `<!x>` first: not a document.
                        self.shim = None;
                    }
                }
                out.extend_from_slice(b"<!");
                self.state = State::Bogus;
                Some(i + 2)
            }
            b'?' => {
                out.push(b'<');
                self.state = State::Bogus;
                Some(i + 1)
            }
            b'/' => match rest.get(1) {
                None => self.text_at_end(buf, i, out, eof),
                Some(d) if d.is_ascii_alphabetic() => self.tag(buf, i, out, eof),
                Some(b'>') => {
                    out.extend_from_slice(b"</>");
                    Some(i + 3)
                }
                Some(_) => {
                    out.extend_from_slice(b"</");
                    self.state = State::Bogus;
                    Some(i + 2)
                }
            },
            c if c.is_ascii_alphabetic() => self.tag(buf, i, out, eof),
            _ => {
                out.push(b'<');
                Some(i + 1)
            }
        }
    }

    /// `<` or `</` at the end of the input: wait for more, or at the end it is text.
    fn text_at_end(&self, buf: &[u8], i: usize, out: &mut Vec<u8>, eof: bool) -> Option<usize> {
        if !eof {
            return None;
        }
        out.extend_from_slice(&buf[i..]);
        Some(buf.len())
    }

    /// A start or end tag at `buf[i]`.
    fn tag(&mut self, buf: &[u8], i: usize, out: &mut Vec<u8>, eof: bool) -> Option<usize> {
        let mut attrs = std::mem::take(&mut self.attrs);
        let scan = scan_tag(buf, i, &mut attrs);
        let next = match scan {
            Scan::Incomplete(state) => {
                if eof {
                    // An unfinished tag at the end of the document is not a tag.
                    out.extend_from_slice(&buf[i..]);
                    Some(buf.len())
                } else if buf.len() - i > MAX_HELD {
                    tracing::debug!("embed: a tag longer than {MAX_HELD} bytes passes through");
                    out.extend_from_slice(&buf[i..]);
                    self.state = State::SkipTag(state);
                    Some(buf.len())
                } else {
                    None
                }
            }
            Scan::Complete { end, name } => {
                if buf[i + 1] == b'/' {
                    if self.lead == Lead::Start {
                        // An end tag first: a fragment.
                        self.shim = None;
                    }
                    if foreign::is_foreign_root(&buf[name.0..name.1]) {
                        self.foreign = self.foreign.saturating_sub(1);
                    }
                    out.extend_from_slice(&buf[i..end]);
                } else {
                    if foreign::is_foreign_root(&buf[name.0..name.1]) && buf[end - 2] != b'/' {
                        self.foreign = self.foreign.saturating_add(1);
                    }
                    self.start_tag(buf, i, end, name, &attrs, out);
                }
                Some(end)
            }
        };
        self.attrs = attrs;
        next
    }

    fn start_tag(
        &mut self,
        buf: &[u8],
        start: usize,
        end: usize,
        name: (usize, usize),
        attrs: &[Attr],
        out: &mut Vec<u8>,
    ) {
        let tag = &buf[name.0..name.1];
        let value_of = |attr: &[u8]| {
            attrs
                .iter()
                .find(|a| buf[a.name.0..a.name.1].eq_ignore_ascii_case(attr))
                .and_then(|a| a.value)
                .map(|(s, e, _)| &buf[s..e])
        };
        // The shim goes first in a document: after `<head>` (below), else before the first
        // element that is not `<html>`. A body that starts with another element is a fragment.
        let mut shim_after = false;
        if self.shim.is_some() {
            let html = tag.eq_ignore_ascii_case(b"html");
            let head = tag.eq_ignore_ascii_case(b"head");
            match self.lead {
                Lead::Start if html => self.lead = Lead::Document,
                Lead::Start if head => {
                    self.lead = Lead::Document;
                    shim_after = true;
                }
                Lead::Start => self.shim = None,
                Lead::Document if html => {}
                Lead::Document if head => shim_after = true,
                Lead::Document => {
                    if let Some(markup) = self.shim.take() {
                        out.extend_from_slice(markup.as_bytes());
                    }
                }
            }
        }
        if self.inject.is_some() && tag.eq_ignore_ascii_case(b"body") {
            // No `<head>` tag before `<body>`: the markup goes right before the body.
            if let Some(markup) = self.inject.take() {
                out.extend_from_slice(markup.as_bytes());
            }
        }
        let ctx = self.ctx.as_ref();
        let html = ctx.is_some_and(|c| c.rw.config().html);
        let mut copied = start;
        if let (Some(ctx), true) = (ctx, html) {
            let meta_refresh = tag.eq_ignore_ascii_case(b"meta")
                && value_of(b"http-equiv").is_some_and(|v| v.eq_ignore_ascii_case(b"refresh"));
            // Only the first of duplicate attributes counts (HTML standard).
            let mut done: u16 = 0;
            for a in attrs {
                let Some((vs, ve, quote)) = a.value else {
                    continue;
                };
                let attr = &buf[a.name.0..a.name.1];
                let Some((kind, bit)) = attr_kind(tag, attr, meta_refresh) else {
                    continue;
                };
                if done & bit != 0 {
                    continue;
                }
                done |= bit;
                let raw = &buf[vs..ve];
                if kind == Kind::Url {
                    if let Some(plain) = ctx.plain_root_path(raw) {
                        // The common case: `/path`, prefixed or not, without a copy of the value.
                        if plain {
                            out.extend_from_slice(&buf[copied..vs]);
                            out.extend_from_slice(ctx.rw.prefix().as_bytes());
                            copied = vs;
                        }
                        continue;
                    }
                }
                // The browser decodes character references before it reads CSS, a srcset
                // or a refresh value: so does the rewriter (the quoting below re-escapes).
                let decoded = |v: &str, f: &dyn Fn(&str) -> Option<String>| match decode_ascii(
                    v,
                    Amp::Keep,
                ) {
                    Some(d) => f(&d),
                    None => f(v),
                };
                let new = rewrite_value(raw, |v| match kind {
                    Kind::Url => ctx.url(v),
                    Kind::Srcset => decoded(v, &|v| ctx.rw.rewrite_srcset(v, &ctx.origins)),
                    Kind::Refresh => decoded(v, &|v| ctx.rw.rewrite_refresh(v, &ctx.origins)),
                    Kind::Style => decoded(v, &|v| rewrite_css_str(&ctx.rw, v)),
                    Kind::Srcdoc => ctx.srcdoc(v),
                });
                let Some(new) = new else {
                    continue;
                };
                let safe = match quote {
                    0 => !new.iter().any(|&b| is(b, VALUE_END)),
                    q => !new.contains(&q),
                };
                if safe {
                    out.extend_from_slice(&buf[copied..vs]);
                    out.extend_from_slice(&new);
                    copied = ve;
                } else {
                    // Quote the value afresh (cannot happen with the prefixes and origins the
                    // rewriter adds, but a value must never break out of its attribute).
                    let open = if quote == 0 { vs } else { vs - 1 };
                    out.extend_from_slice(&buf[copied..open]);
                    out.push(b'"');
                    for &b in &new {
                        match b {
                            b'"' => out.extend_from_slice(b"&quot;"),
                            b => out.push(b),
                        }
                    }
                    out.push(b'"');
                    copied = if quote == 0 { ve } else { ve + 1 };
                }
            }
        }
        out.extend_from_slice(&buf[copied..end]);

        if shim_after {
            if let Some(markup) = self.shim.take() {
                out.extend_from_slice(markup.as_bytes());
            }
        }
        if tag.eq_ignore_ascii_case(b"head") {
            if let Some(markup) = self.inject.take() {
                out.extend_from_slice(markup.as_bytes());
            }
        }
        if tag.eq_ignore_ascii_case(b"plaintext") {
            self.state = State::Plaintext;
        } else if let Some(raw) = RAW_TEXT.iter().find(|r| tag.eq_ignore_ascii_case(r)) {
            self.state = State::RawText(raw);
            if let (Some(ctx), true) = (self.ctx.as_ref(), html) {
                if *raw == b"style" {
                    self.text = Some(CssStream::new(ctx.rw.clone()));
                } else if *raw == b"script"
                    && value_of(b"type").is_some_and(|t| t.eq_ignore_ascii_case(b"importmap"))
                {
                    self.text = Some(CssStream::json(ctx.rw.clone()));
                }
            }
        }
    }
}

/// What a response's attribute rewrites need.
struct Ctx {
    rw: EmbedRewriter,
    origins: Origins,
}

impl Ctx {
    /// A `srcdoc` document: decoded, rewritten as HTML of its own (nested `srcdoc`s too), and
    /// escaped back; `None` when nothing changed.
    fn srcdoc(&self, v: &str) -> Option<String> {
        if v.contains(AMP_MARK) {
            return None;
        }
        let doc = decode_ascii(v, Amp::Mark);
        let html = doc.as_deref().unwrap_or(v);
        let mut inner = HtmlStream::new(&self.rw, &self.origins, None);
        let mut out = inner.write(html.as_bytes()).to_vec();
        out.extend_from_slice(&inner.finish());
        let out = String::from_utf8(out).ok()?;
        (out != html).then(|| escape_srcdoc(&out))
    }

    /// For a value that is a plain root-absolute path (`/x`, no leading space, no character
    /// reference near its start): whether it gets the prefix. `None`: take the general path.
    fn plain_root_path(&self, raw: &[u8]) -> Option<bool> {
        if raw.first() != Some(&b'/') {
            return None;
        }
        let window = &raw[..raw.len().min(self.rw.lookahead() * 8)];
        if memchr::memchr(b'&', window).is_some() {
            return None;
        }
        Some(self.rw.needs_prefix(raw))
    }

    /// Attribute values are raw, entities included: `&#x2F;x` is `/x` to the
    /// browser. When the value's head has a reference, the decision is made on the decoded
    /// head and the prefix (which has no trailing `/`) goes in front of the raw value.
    fn url(&self, v: &str) -> Option<String> {
        let trimmed = v.trim_start_matches(|c: char| c.is_ascii() && is_ascii_ws(c as u8));
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

impl EmbedRewriter {
    /// Rewrites each URL of a `srcset` (`/a.png 1x, /b.png 2x`), keeping descriptors and
    /// spacing; `None` if nothing changed.
    pub fn rewrite_srcset(&self, value: &str, origins: &Origins) -> Option<String> {
        let b = value.as_bytes();
        let mut out = String::new();
        let mut copied = 0;
        let mut i = 0;
        loop {
            while i < b.len() && (is_ascii_ws(b[i]) || b[i] == b',') {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
            let start = i;
            while i < b.len() && !is_ascii_ws(b[i]) {
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
        // read used to make the rewriter hold it next to the whole next read and bail out.
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

    fn rewrite_all(input: &str, feed_bytes: bool) -> String {
        // The shim's placement has its own tests (shim_tests.rs).
        let rw = EmbedConfig {
            shim: false,
            ..EmbedConfig::new("/embed/app")
        }
        .compile()
        .expect("valid");
        let mut s = HtmlStream::new(&rw, &Origins::default(), None);
        let mut out = Vec::new();
        if feed_bytes {
            for b in input.as_bytes() {
                out.extend_from_slice(&s.write(std::slice::from_ref(b)));
            }
        } else {
            out.extend_from_slice(&s.write(input.as_bytes()));
        }
        out.extend_from_slice(&s.finish());
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn tokenizer_follows_the_html_rules_that_matter_for_urls() {
        let cases: &[(&str, &str)] = &[
            // Comments, including the abrupt and `--!>` endings, are not markup.
            (
                "<!-- <a href=/x> --><a href=/y>",
                "<!-- <a href=/x> --><a href=/embed/app/y>",
            ),
            ("<!--><a href=/y>", "<!--><a href=/embed/app/y>"),
            ("<!---><a href=/y>", "<!---><a href=/embed/app/y>"),
            ("<!-- x --!><a href=/y>", "<!-- x --!><a href=/embed/app/y>"),
            (
                "<!-- -- > <a href=/x> --><a href=/y>",
                "<!-- -- > <a href=/x> --><a href=/embed/app/y>",
            ),
            // Doctype, processing instructions, CDATA-like and `</ ` constructs end at `>`.
            (
                "<!DOCTYPE html><?xml x?><![CDATA[x]]><a href=/y>",
                "<!DOCTYPE html><?xml x?><![CDATA[x]]><a href=/embed/app/y>",
            ),
            ("</ x><a href=/y></>", "</ x><a href=/embed/app/y></>"),
            // Raw text: no markup inside, until the element's own end tag (any case).
            (
                "<script>let a='<a href=\"/x\">';</script><a href=/y>",
                "<script>let a='<a href=\"/x\">';</script><a href=/embed/app/y>",
            ),
            (
                "<SCRIPT>x</scripty></ScRiPt ><a href=/y>",
                "<SCRIPT>x</scripty></ScRiPt ><a href=/embed/app/y>",
            ),
            (
                "<textarea><img src=/x></textarea><img src=/y>",
                "<textarea><img src=/x></textarea><img src=/embed/app/y>",
            ),
            (
                "<title><a href=/x></title><a href=/y>",
                "<title><a href=/x></title><a href=/embed/app/y>",
            ),
            (
                "<style>a{b:url(/x)}</style ><p style=\"c:url(/y)\">",
                "<style>a{b:url(/embed/app/x)}</style ><p style=\"c:url(/embed/app/y)\">",
            ),
            (
                "<script type=ImportMap>{\"a\":\"/x\"}</script><script>\"/x\"</script>",
                "<script type=ImportMap>{\"a\":\"/embed/app/x\"}</script><script>\"/x\"</script>",
            ),
            (
                "<plaintext><a href=/x></plaintext><a href=/y>",
                "<plaintext><a href=/x></plaintext><a href=/y>",
            ),
            // Quoting is kept; a quoted `>` does not end a tag; end tags are copied.
            (
                "<a title='a>b' href='/x'>",
                "<a title='a>b' href='/embed/app/x'>",
            ),
            ("<a\nhref\n=\n\"/x\"\n>", "<a\nhref\n=\n\"/embed/app/x\"\n>"),
            (
                "</a href=\"/x\"><a/href=/y/>",
                "</a href=\"/x\"><a/href=/embed/app/y/>",
            ),
            // Only the first of duplicate attributes counts, and only on the right tags.
            ("<a href=/x HREF=/y>", "<a href=/embed/app/x HREF=/y>"),
            (
                "<object href=/a data=/b><div data=/c action=/d>",
                "<object href=/embed/app/a data=/embed/app/b><div data=/c action=/d>",
            ),
            (
                "<meta content=\"0;url=/x\" http-equiv=refresh>",
                "<meta content=\"0;url=/embed/app/x\" http-equiv=refresh>",
            ),
            // Attributes without values, stray `<` and `=`, and text `<`.
            (
                "<input disabled src=/x>a < b <3 <=c",
                "<input disabled src=/embed/app/x>a < b <3 <=c",
            ),
            ("<a =x href=/y>", "<a =x href=/embed/app/y>"),
            // An unfinished tag at the end is text and comes out whole.
            ("<a href=/x", "<a href=/x"),
            ("<a href=\"/x", "<a href=\"/x"),
            ("x<", "x<"),
            ("x</", "x</"),
            ("<!-", "<!-"),
        ];
        for (input, want) in cases {
            assert_eq!(&rewrite_all(input, false), want, "whole: {input}");
            assert_eq!(&rewrite_all(input, true), want, "byte by byte: {input}");
        }
    }

    #[test]
    fn random_markup_never_panics_and_chunking_never_changes_the_output() {
        // Documents made of the bytes the tokenizer cares about, in every order: whatever the
        // split into chunks, the output is the same, and only prefixes are ever added.
        const ALPHABET: &[&[u8]] = &[
            b"<",
            b">",
            b"/",
            b"=",
            b"\"",
            b"'",
            b" ",
            b"!",
            b"-",
            b"?",
            b"&",
            b"a",
            b"href",
            b"src",
            b"style",
            b"srcset",
            b"script",
            b"style",
            b"textarea",
            b"<!--",
            b"-->",
            b"</script>",
            b"</style>",
            b"url(/x)",
            b"/p",
            b"//h",
            b"meta",
            b"http-equiv=refresh",
            b"content=\"0;url=/r\"",
            b"type=importmap",
            b"{\"a\":\"/i\"}",
            b"\xe9",
            b"\n",
            // What decides whether and where the shim goes.
            b"<!DOCTYPE html>",
            b"<html>",
            b"<head>",
            b"<body>",
            b"\xef\xbb\xbf",
        ];
        let rw = EmbedConfig::new("/embed/app").compile().expect("valid");
        let shim = rw.shim_tag().expect("the shim is on by default");
        let mut next = crate::test_rng();
        let mut documents = 0;
        for _ in 0..300 {
            let mut doc = Vec::new();
            for _ in 0..(next() % 120) {
                doc.extend_from_slice(ALPHABET[(next() % ALPHABET.len() as u64) as usize]);
            }
            let mut whole = HtmlStream::new(&rw, &Origins::default(), None);
            let mut expected = whole.write(&doc).to_vec();
            expected.extend_from_slice(&whole.finish());
            assert!(
                expected.len() >= doc.len(),
                "bytes lost: {:?}",
                String::from_utf8_lossy(&doc)
            );
            let mut split = HtmlStream::new(&rw, &Origins::default(), None);
            let mut out = Vec::new();
            let mut rest = doc.as_slice();
            while !rest.is_empty() {
                let n = (1 + next() % 7) as usize;
                let n = n.min(rest.len());
                out.extend_from_slice(&split.write(&rest[..n]));
                rest = &rest[n..];
            }
            out.extend_from_slice(&split.finish());
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected),
                "chunked output differs for {:?}",
                String::from_utf8_lossy(&doc)
            );
            // Removing the shim's tag (at most one) and every inserted prefix gives the input
            // back: nothing else changed.
            let text = String::from_utf8_lossy(&expected);
            assert!(text.matches(&*shim).count() <= 1, "{text}");
            documents += usize::from(text.contains(&*shim));
            let stripped = text.replacen(&*shim, "", 1).replace("/embed/app", "");
            assert_eq!(
                stripped,
                String::from_utf8_lossy(&doc).replace("/embed/app", "")
            );
        }
        assert!(
            documents > 10,
            "only {documents} random documents got the shim"
        );
    }

    #[test]
    fn values_keep_their_quoting() {
        // An unquoted value may hold quotes (a parse error browsers accept): it stays unquoted,
        // so the browser reads the same value plus the prefix.
        assert_eq!(
            rewrite_all("<a href=/x?q=\"1\">", false),
            "<a href=/embed/app/x?q=\"1\">"
        );
        let rw = EmbedConfig::new("/embed/app").compile().expect("valid");
        let origins = Origins::new("http", Some("bloud.local"), None);
        let mut s = HtmlStream::new(&rw, &origins, None);
        let mut out = s.write(b"<a href=http://bloud.local/x?q='1'>").to_vec();
        out.extend_from_slice(&s.finish());
        assert_eq!(out, b"<a href=http://bloud.local/embed/app/x?q='1'>");
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

//! Streaming rewrite of root-absolute URLs in CSS: `url(/x)`, `url("/x")`, `@import "/x"`.
//!
//! The scanner only ever *inserts* the prefix in front of a URL's first byte, so every byte
//! passes through as soon as it arrives, except the first few bytes of a candidate URL: those
//! wait until they decide the URL's fate (at most [`EmbedRewriter::lookahead`] bytes, about the
//! length of the longest prefix/exclude pattern). Strings and comments are skipped, so a
//! `url(` inside `content: "…"` or `/* … */` is left alone. CSS is parsed as bytes: every token
//! the scanner looks for is ASCII, so multi-byte UTF-8 (or any ASCII-compatible charset) passes
//! through untouched.
//!
//! The same machine, in JSON mode, rewrites every string of a `<script type=importmap>`.

use bytes::Bytes;

use super::config::EmbedRewriter;
use super::is_ascii_ws;

/// A streaming CSS rewriter for one body (or one `<style>` element).
#[derive(Debug)]
pub struct CssStream {
    rw: EmbedRewriter,
    json: bool,
    state: State,
    /// Leading bytes of a candidate URL while its fate is undecided (bounded by lookahead).
    pending: Vec<u8>,
    last: u8,
    url_match: usize,
    import_match: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    Comment {
        star: bool,
    },
    Str {
        quote: u8,
        escape: bool,
    },
    /// After `url(`, before the URL.
    UrlOpen,
    /// After `@import`, before its string.
    ImportOpen,
    /// Inside a candidate URL whose first bytes are held in `pending`.
    Deciding {
        quote: Option<u8>,
    },
    /// The rest of a URL whose fate is settled.
    UrlRest {
        quote: Option<u8>,
        escape: bool,
    },
}

const URL_OPEN: &[u8] = b"url(";
const IMPORT: &[u8] = b"@import";

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'\\' || b >= 0x80
}

impl CssStream {
    pub fn new(rw: EmbedRewriter) -> Self {
        CssStream {
            rw,
            json: false,
            state: State::Normal,
            pending: Vec::new(),
            last: b' ',
            url_match: 0,
            import_match: 0,
        }
    }

    /// Every root-absolute JSON string (import map keys and values) is a URL.
    pub(crate) fn json(rw: EmbedRewriter) -> Self {
        CssStream {
            json: true,
            ..CssStream::new(rw)
        }
    }

    /// Rewrites the next chunk; returns what can be sent now.
    pub fn write(&mut self, chunk: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(chunk.len() + 64);
        self.write_into(chunk, &mut out);
        Bytes::from(out)
    }

    /// Ends the body; returns the bytes still held back.
    pub fn finish(&mut self) -> Bytes {
        let mut out = Vec::new();
        self.finish_into(&mut out);
        Bytes::from(out)
    }

    pub(crate) fn finish_into(&mut self, out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            self.decide(&[], out);
        }
        self.state = State::Normal;
        self.last = b' ';
        self.url_match = 0;
        self.import_match = 0;
    }

    pub(crate) fn write_into(&mut self, data: &[u8], out: &mut Vec<u8>) {
        // data[..copied] has gone to `out` or `pending`.
        let mut copied = 0;
        let mut i = 0;
        let lookahead = self.rw.lookahead();
        while i < data.len() {
            let c = data[i];
            match self.state {
                State::Normal => {
                    if self.json {
                        if c == b'"' {
                            out.extend_from_slice(&data[copied..=i]);
                            copied = i + 1;
                            self.state = State::Deciding { quote: Some(c) };
                        }
                    } else {
                        self.normal(c);
                    }
                }
                State::Comment { star } => {
                    if star && c == b'/' {
                        // The closing `/` must not open another comment with a following `*`.
                        self.state = State::Normal;
                        self.last = b' ';
                        i += 1;
                        continue;
                    }
                    self.state = State::Comment { star: c == b'*' };
                }
                State::Str { quote, escape } => {
                    self.state = if escape {
                        State::Str {
                            quote,
                            escape: false,
                        }
                    } else if c == b'\\' {
                        State::Str {
                            quote,
                            escape: true,
                        }
                    } else if c == quote || c == b'\n' {
                        State::Normal
                    } else {
                        State::Str {
                            quote,
                            escape: false,
                        }
                    };
                }
                State::UrlOpen => {
                    if c == b'"' || c == b'\'' {
                        out.extend_from_slice(&data[copied..=i]);
                        copied = i + 1;
                        self.state = State::Deciding { quote: Some(c) };
                    } else if c == b')' {
                        self.state = State::Normal;
                    } else if !is_ascii_ws(c) {
                        out.extend_from_slice(&data[copied..i]);
                        copied = i;
                        self.state = State::Deciding { quote: None };
                        continue;
                    }
                }
                State::ImportOpen => {
                    if c == b'"' || c == b'\'' {
                        out.extend_from_slice(&data[copied..=i]);
                        copied = i + 1;
                        self.state = State::Deciding { quote: Some(c) };
                    } else if !is_ascii_ws(c) {
                        // `@import url(…)` or something else: scan it normally.
                        self.state = State::Normal;
                        continue;
                    }
                }
                State::Deciding { quote } => {
                    let held = self.pending.len() + (i - copied);
                    if held == 0 && c != b'/' {
                        self.state = State::UrlRest {
                            quote,
                            escape: false,
                        };
                        continue;
                    }
                    // An escape also settles the URL: the held bytes must not swallow it.
                    let ends = c == b'\\'
                        || match quote {
                            Some(q) => c == q || c == b'\n',
                            None => {
                                c == b')' || is_ascii_ws(c) || c == b'"' || c == b'\'' || c == b'('
                            }
                        };
                    if ends || held + 1 >= lookahead {
                        let end = if ends { i } else { i + 1 };
                        self.decide(&data[copied..end], out);
                        copied = end;
                        self.state = State::UrlRest {
                            quote,
                            escape: false,
                        };
                        if ends {
                            continue;
                        }
                    }
                }
                State::UrlRest { quote, escape } => {
                    self.state = match quote {
                        _ if escape => State::UrlRest {
                            quote,
                            escape: false,
                        },
                        _ if c == b'\\' => State::UrlRest {
                            quote,
                            escape: true,
                        },
                        Some(q) if c == q || c == b'\n' => State::Normal,
                        None if c == b')' || is_ascii_ws(c) => State::Normal,
                        _ => State::UrlRest {
                            quote,
                            escape: false,
                        },
                    };
                }
            }
            self.last = c;
            i += 1;
        }
        if matches!(self.state, State::Deciding { .. }) {
            self.pending.extend_from_slice(&data[copied..]);
        } else {
            out.extend_from_slice(&data[copied..]);
        }
    }

    fn normal(&mut self, c: u8) {
        if self.last == b'/' && c == b'*' {
            self.state = State::Comment { star: false };
            self.url_match = 0;
            self.import_match = 0;
            return;
        }
        if c == b'"' || c == b'\'' {
            self.state = State::Str {
                quote: c,
                escape: false,
            };
            self.url_match = 0;
            self.import_match = 0;
            return;
        }
        let lc = c.to_ascii_lowercase();
        if self.url_match > 0 && URL_OPEN.get(self.url_match) == Some(&lc) {
            self.url_match += 1;
            if self.url_match == URL_OPEN.len() {
                self.url_match = 0;
                self.state = State::UrlOpen;
            }
        } else {
            self.url_match = usize::from(lc == b'u' && !is_ident(self.last));
        }
        if self.import_match > 0 && IMPORT.get(self.import_match) == Some(&lc) {
            self.import_match += 1;
            if self.import_match == IMPORT.len() {
                self.import_match = 0;
                self.state = State::ImportOpen;
            }
        } else {
            self.import_match = usize::from(c == b'@');
        }
    }

    /// Settles a candidate URL whose held bytes are `pending` + `tail`.
    fn decide(&mut self, tail: &[u8], out: &mut Vec<u8>) {
        let needs = if self.pending.is_empty() {
            self.rw.needs_prefix(tail)
        } else {
            self.pending.extend_from_slice(tail);
            self.rw.needs_prefix(&self.pending)
        };
        if needs {
            out.extend_from_slice(self.rw.prefix().as_bytes());
        }
        if self.pending.is_empty() {
            out.extend_from_slice(tail);
        } else {
            out.extend_from_slice(&self.pending);
            self.pending.clear();
        }
    }
}

/// One-shot rewrite of a complete CSS text (an inline `style` attribute); `None` if unchanged.
pub(crate) fn rewrite_css_str(rw: &EmbedRewriter, css: &str) -> Option<String> {
    let mut stream = CssStream::new(rw.clone());
    let mut out = Vec::with_capacity(css.len() + 32);
    stream.write_into(css.as_bytes(), &mut out);
    stream.finish_into(&mut out);
    if out == css.as_bytes() {
        return None;
    }
    // Only ASCII was inserted, at ASCII boundaries, so the result is UTF-8.
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::super::config::EmbedConfig;
    use super::*;

    fn rw() -> EmbedRewriter {
        let mut cfg = EmbedConfig::new("/embed/app");
        cfg.exclude = vec!["/openid-cb".into()];
        cfg.compile().expect("valid")
    }

    fn one_shot(input: &str) -> String {
        let mut s = CssStream::new(rw());
        let mut out = s.write(input.as_bytes()).to_vec();
        out.extend_from_slice(&s.finish());
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn css_table() {
        let cases: &[(&str, &str)] = &[
            (
                "a{background:url(/img/a.png)}",
                "a{background:url(/embed/app/img/a.png)}",
            ),
            (
                "a{background:URL( '/img/a.png' )}",
                "a{background:URL( '/embed/app/img/a.png' )}",
            ),
            ("a{b:url(\"/x\")}", "a{b:url(\"/embed/app/x\")}"),
            ("@import \"/base.css\";", "@import \"/embed/app/base.css\";"),
            (
                "@IMPORT '/base.css' screen;",
                "@IMPORT '/embed/app/base.css' screen;",
            ),
            (
                "@import url(/base.css);",
                "@import url(/embed/app/base.css);",
            ),
            ("@import\"/a.css\";", "@import\"/embed/app/a.css\";"),
            ("a{b:url(/embed/app/x)}", "a{b:url(/embed/app/x)}"),
            ("a{b:url(//cdn.example/x)}", "a{b:url(//cdn.example/x)}"),
            (
                "a{b:url(data:image/png;base64,iVBOR/w==)}",
                "a{b:url(data:image/png;base64,iVBOR/w==)}",
            ),
            ("a{b:url(img/x.png)}", "a{b:url(img/x.png)}"),
            ("a{b:url(/openid-cb)}", "a{b:url(/openid-cb)}"),
            ("a{content:\"url(/x)\"}", "a{content:\"url(/x)\"}"),
            (
                "/* url(/x) */a{b:url(/y)}",
                "/* url(/x) */a{b:url(/embed/app/y)}",
            ),
            ("/**/*{b:url(/y)}", "/**/*{b:url(/embed/app/y)}"),
            ("a{b:myurl(/x)}", "a{b:myurl(/x)}"),
            ("a{b:url()}", "a{b:url()}"),
            ("a{b:url(/x?v=1#h)}", "a{b:url(/embed/app/x?v=1#h)}"),
            (
                "@font-face{src:url(/f.woff2) format('woff2'),url(/f.woff)}",
                "@font-face{src:url(/embed/app/f.woff2) format('woff2'),url(/embed/app/f.woff)}",
            ),
            ("a{b:url(/é.png)}", "a{b:url(/embed/app/é.png)}"),
            ("a{b:url(\"/a\\\")\")}", "a{b:url(\"/embed/app/a\\\")\")}"),
            ("a{b:url(/x", "a{b:url(/embed/app/x"),
            ("a{b:url(/", "a{b:url(/embed/app/"),
        ];
        for (input, want) in cases {
            assert_eq!(one_shot(input), *want, "css: {input}");
        }
    }

    #[test]
    fn every_split_point_gives_the_one_shot_output() {
        let input = "@import '/a.css';/* url(/c) */x{y:url( \"/embed/app/k\" ) url(/long/path/that/exceeds/the/lookahead/window.png)} z{w:Url(/q)}";
        let want = one_shot(input);
        assert!(want.contains("url( \"/embed/app/k\" )"));
        assert!(want.contains("url(/embed/app/long/path"));
        for split in 0..=input.len() {
            let mut s = CssStream::new(rw());
            let mut out = s.write(&input.as_bytes()[..split]).to_vec();
            out.extend_from_slice(&s.write(&input.as_bytes()[split..]));
            out.extend_from_slice(&s.finish());
            assert_eq!(String::from_utf8_lossy(&out), want, "split at {split}");
        }
        let mut s = CssStream::new(rw());
        let mut out = Vec::new();
        for b in input.as_bytes() {
            out.extend_from_slice(&s.write(std::slice::from_ref(b)));
        }
        out.extend_from_slice(&s.finish());
        assert_eq!(String::from_utf8_lossy(&out), want, "byte by byte");
    }

    #[test]
    fn held_bytes_are_bounded() {
        let mut s = CssStream::new(rw());
        let mut sent = s.write(b"a{b:url(/").len();
        for _ in 0..10_000 {
            sent += s.write(b"abcdefgh").len();
            assert!(s.pending.len() <= s.rw.lookahead());
        }
        sent += s.finish().len();
        assert_eq!(sent, "a{b:url(/embed/app/".len() + 80_000);
    }

    #[test]
    fn import_map_json_strings() {
        let json = r#"{"imports":{"react":"/static/react.js","/lib/":"/static/lib/","x":"https://cdn.example/x.js","y":"/embed/app/y.js","e":"a\"/b","f":"/c\"d"}}"#;
        let mut s = CssStream::json(rw());
        let mut out = s.write(json.as_bytes()).to_vec();
        out.extend_from_slice(&s.finish());
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"imports":{"react":"/embed/app/static/react.js","/embed/app/lib/":"/embed/app/static/lib/","x":"https://cdn.example/x.js","y":"/embed/app/y.js","e":"a\"/b","f":"/embed/app/c\"d"}}"#
        );
    }

    #[test]
    fn inline_style_helper() {
        let rw = rw();
        assert_eq!(
            rewrite_css_str(&rw, "background-image: url('/bg.png')").as_deref(),
            Some("background-image: url('/embed/app/bg.png')")
        );
        assert_eq!(rewrite_css_str(&rw, "color: red"), None);
    }
}

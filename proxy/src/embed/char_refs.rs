//! Character references in attribute values, for the rewrites that parse a value's syntax
//! (CSS in `style`, `srcset` lists, refresh `content`, HTML in `srcdoc`). The browser decodes
//! `style="background:url(&quot;/a.png&quot;)"` to `url("/a.png")` before it reads the CSS, so
//! the rewriter must read the decoded text too, or the URL escapes the prefix.
//!
//! Only references that stand for ASCII characters are decoded (numeric ones below 128 and the
//! named ones that spell ASCII punctuation): those are all URL, CSS or HTML syntax can be made
//! of. The rest (`&copy;`, `&#233;`) stay as written, so a value in any ASCII-compatible
//! charset comes out in that charset, and no table of all 2,231 names is needed.

/// What `&amp;` (or `&#38;`) becomes in the decoded text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Amp {
    /// Left as written: the decoded text's every `&` is the value's own, and the rewritten
    /// text goes back into the attribute without re-escaping `&` (a value whose only syntax
    /// is CSS or a URL list, where `&` never matters).
    Keep,
    /// Decoded to `&` like the rest, for `srcdoc`, whose HTML has references of its own
    /// (`&amp;lt;` is a `&lt;` in the framed document). A `&` the decoder does not know
    /// (`&copy;`) is not an ampersand in the framed document: it becomes [`AMP_MARK`], which
    /// [`escape_srcdoc`] turns back into the `&` it was.
    Mark,
}

/// Stands for an undecoded `&` while a `srcdoc` document is rewritten (a private-use
/// character; a value that already holds it is left alone).
pub(crate) const AMP_MARK: char = '\u{F8FF}';

/// Named references to ASCII characters, by name without `&` and `;`.
const NAMED: &[(&str, char)] = &[
    ("quot", '"'),
    ("QUOT", '"'),
    ("apos", '\''),
    ("amp", '&'),
    ("AMP", '&'),
    ("lt", '<'),
    ("LT", '<'),
    ("gt", '>'),
    ("GT", '>'),
    ("sol", '/'),
    ("bsol", '\\'),
    ("lpar", '('),
    ("rpar", ')'),
    ("comma", ','),
    ("colon", ':'),
    ("semi", ';'),
    ("equals", '='),
    ("num", '#'),
    ("quest", '?'),
    ("period", '.'),
    ("excl", '!'),
    ("percnt", '%'),
    ("plus", '+'),
    ("ast", '*'),
    ("midast", '*'),
    ("lsqb", '['),
    ("lbrack", '['),
    ("rsqb", ']'),
    ("rbrack", ']'),
    ("lcub", '{'),
    ("lbrace", '{'),
    ("rcub", '}'),
    ("rbrace", '}'),
    ("verbar", '|'),
    ("vert", '|'),
    ("VerticalLine", '|'),
    ("Tab", '\t'),
    ("NewLine", '\n'),
    ("dollar", '$'),
    ("commat", '@'),
    ("grave", '`'),
    ("DiacriticalGrave", '`'),
    ("Hat", '^'),
    ("lowbar", '_'),
    ("UnderBar", '_'),
];

/// Names the HTML standard also decodes without `;` (in attribute values, only when the next
/// character is neither `=` nor alphanumeric).
const LEGACY: &[&str] = &["quot", "QUOT", "amp", "AMP", "lt", "LT", "gt", "GT"];

/// The reference at the start of `after` (the text after a `&`): the character and how many
/// bytes of `after` it used.
fn reference(after: &str) -> Option<(char, usize)> {
    let b = after.as_bytes();
    if let Some(num) = after.strip_prefix('#') {
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
        // Only ASCII (NUL becomes U+FFFD in a browser, so it is not ASCII either).
        let c = u8::try_from(value).ok().filter(|v| (1..0x80).contains(v))?;
        return Some((char::from(c), used));
    }
    let len = b.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
    let name = &after[..len];
    let (_, c) = NAMED.iter().find(|(n, _)| *n == name)?;
    match b.get(len) {
        Some(b';') => Some((*c, len + 1)),
        Some(b'=') => None,
        _ if LEGACY.contains(&name) => Some((*c, len)),
        _ => None,
    }
}

/// `value` with its ASCII character references decoded, or `None` when it has none.
pub(crate) fn decode_ascii(value: &str, amp: Amp) -> Option<String> {
    let first = value.find('&')?;
    let mut out = String::with_capacity(value.len());
    out.push_str(&value[..first]);
    let mut rest = &value[first..];
    let mut decoded = false;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match reference(after) {
            Some((c, used)) if c != '&' || amp == Amp::Mark => {
                out.push(c);
                rest = &after[used..];
                decoded = true;
            }
            _ => {
                out.push(if amp == Amp::Mark { AMP_MARK } else { '&' });
                rest = after;
            }
        }
    }
    out.push_str(rest);
    decoded.then_some(out)
}

/// Rewritten `srcdoc` HTML back into an attribute value: `&`, `<`, `>` and both quotes
/// escaped (any quoting stays valid), [`AMP_MARK`] back to the `&` it was.
pub(crate) fn escape_srcdoc(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + html.len() / 8);
    for c in html.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            AMP_MARK => out.push('&'),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_references_are_decoded() {
        // (value, decoded with Amp::Keep; None = nothing to decode)
        let cases: &[(&str, Option<&str>)] = &[
            ("url(&quot;/a.png&quot;)", Some("url(\"/a.png\")")),
            ("0;url=&#x2F;x", Some("0;url=/x")),
            ("0;url=&#47x", Some("0;url=/x")),
            ("&sol;a&lpar;b&rpar;&comma;c&colon;", Some("/a(b),c:")),
            ("&QUOT;x&quot", Some("\"x\"")),
            // Legacy names without `;` are not decoded before `=` or an alphanumeric.
            ("a?x=1&lt=2&quotx", None),
            // `&amp;` stays in Keep mode (the value's `&` are its own).
            ("/a?x=1&amp;y=2", None),
            ("&#38;&amp;&quot;", Some("&#38;&amp;\"")),
            // Non-ASCII and unknown references stay as written.
            ("&copy;&#233;&#x0;&#xZZ;&nosuch;&", None),
            ("plain", None),
        ];
        for (value, want) in cases {
            assert_eq!(decode_ascii(value, Amp::Keep).as_deref(), *want, "{value}");
        }
    }

    #[test]
    fn srcdoc_round_trip_keeps_every_reference_meaning() {
        let raw = "&lt;a href=&quot;/x?a=1&amp;amp;b=2&quot;&gt;&copy; &amp;lt;&lt;/a&gt;";
        let decoded = decode_ascii(raw, Amp::Mark).expect("decoded");
        assert_eq!(
            decoded,
            format!("<a href=\"/x?a=1&amp;b=2\">{AMP_MARK}copy; &lt;</a>")
        );
        assert_eq!(escape_srcdoc(&decoded), raw);
        assert_eq!(
            escape_srcdoc("<p title='x'>"),
            "&lt;p title=&#39;x&#39;&gt;"
        );
    }
}

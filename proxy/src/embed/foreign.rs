//! SVG and MathML ("foreign content") inside HTML. One tokenizer rule differs there and matters
//! for finding tags: `<![CDATA[ … ]]>` is a CDATA section that ends at `]]>`, while in HTML it
//! is a bogus comment ending at the first `>`. A `>` inside the section (`a > b` in an inline
//! SVG script or style) must not end it, or the rest is read as markup.
//!
//! The rewriter tracks foreign content by counting open `<svg>`/`<math>` elements (not
//! self-closed), which is what the tree builder's "adjusted current node" amounts to for pages
//! that close their elements; HTML integration points (`foreignObject`) are not told apart.

/// `<![CDATA[` after the `<`.
pub(crate) const CDATA_OPEN: &[u8] = b"![CDATA[";

/// Whether a start or end tag with this name opens or closes foreign content.
pub(crate) fn is_foreign_root(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"svg") || name.eq_ignore_ascii_case(b"math")
}

/// Scans CDATA text for `]]>`. `brackets` is how many `]` ended the text before (at most 2
/// count). Returns how many bytes of `buf` belong to the section and whether it ended there;
/// when it did not, the new bracket count is returned too.
pub(crate) fn scan_cdata(buf: &[u8], mut brackets: u8) -> (usize, Option<u8>) {
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b']' => brackets = brackets.saturating_add(1).min(2),
            b'>' if brackets >= 2 => return (i + 1, None),
            _ => brackets = 0,
        }
    }
    (buf.len(), Some(brackets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdata_ends_at_the_first_double_bracket_and_gt() {
        // (text after `<![CDATA[`, brackets carried in, bytes used, brackets carried out)
        let cases: &[(&str, u8, usize, Option<u8>)] = &[
            ("a > b ]]>x", 0, 9, None),
            ("]>]]]>", 0, 6, None),
            ("a]", 0, 2, Some(1)),
            ("a]]", 0, 3, Some(2)),
            ("]>", 1, 2, None),
            (">", 2, 1, None),
            (">", 1, 1, Some(0)),
            ("", 2, 0, Some(2)),
        ];
        for (text, carried, used, left) in cases {
            assert_eq!(
                scan_cdata(text.as_bytes(), *carried),
                (*used, *left),
                "{text} {carried}"
            );
        }
        assert!(is_foreign_root(b"SVG") && is_foreign_root(b"math"));
        assert!(!is_foreign_root(b"svgx"));
    }
}

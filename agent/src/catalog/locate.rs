//! Best-effort line numbers for a key path in a block-style YAML document.
//!
//! serde_yaml reports locations for syntax and type errors only. Validation errors (an empty
//! `displayName`, a bad header value, an unknown key) happen after parsing, so we find the line
//! of the offending key ourselves. Metadata files are plain block YAML; for flow style or
//! anything unusual this falls back to the deepest ancestor it could find, or `None`.

struct Line<'a> {
    /// 1-based line number.
    no: usize,
    /// Column of the first non-space character.
    indent: usize,
    /// Starts a sequence item (`- `).
    dash: bool,
    /// Column of the key on this line (after the dash for item lines).
    key_indent: usize,
    /// Text from the key on.
    rest: &'a str,
}

enum Seg<'p> {
    Key(&'p str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut tail) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(rest) = tail.strip_prefix('[') {
            let Some(end) = rest.find(']') else { break };
            if let Ok(i) = rest[..end].parse() {
                out.push(Seg::Index(i));
            }
            tail = &rest[end + 1..];
        }
    }
    out
}

fn lines(text: &str) -> Vec<Line<'_>> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let trimmed = raw.trim_start_matches(' ');
            if trimmed.is_empty() || trimmed.starts_with('#') {
                return None;
            }
            let indent = raw.len() - trimmed.len();
            let (dash, key_indent, rest) = match trimmed.strip_prefix("- ") {
                Some(after) => {
                    let after_trim = after.trim_start_matches(' ');
                    (
                        true,
                        indent + 2 + (after.len() - after_trim.len()),
                        after_trim,
                    )
                }
                None => (trimmed == "-", indent, trimmed),
            };
            Some(Line {
                no: i + 1,
                indent,
                dash,
                key_indent,
                rest,
            })
        })
        .collect()
}

fn is_key(rest: &str, key: &str) -> bool {
    let unquoted = [
        rest.strip_prefix(key),
        rest.strip_prefix('"')
            .and_then(|r| r.strip_prefix(key))
            .and_then(|r| r.strip_prefix('"')),
        rest.strip_prefix('\'')
            .and_then(|r| r.strip_prefix(key))
            .and_then(|r| r.strip_prefix('\'')),
    ];
    unquoted.into_iter().flatten().any(|after| {
        after
            .strip_prefix(':')
            .is_some_and(|a| a.is_empty() || a.starts_with(' '))
    })
}

/// 1-based line of `path` (`routing.absolutePaths[0].rule`) in `text`.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines = lines(text);
    // Position of the current node's line, its indent, and whether its own line carries the
    // first child key (a sequence item `- key: v`).
    let mut pos: Option<usize> = None;
    let mut parent_indent: isize = -1;
    let mut start_included = false;
    let mut found: Option<usize> = None;

    for seg in segments(path) {
        let begin = match pos {
            Some(p) if start_included => p,
            Some(p) => p + 1,
            None => 0,
        };
        let in_block = |idx: usize, l: &Line<'_>| {
            (start_included && Some(idx) == pos) || l.indent as isize > parent_indent
        };
        match seg {
            Seg::Key(key) => {
                let mut child_indent = None;
                let mut hit = None;
                for (idx, l) in lines.iter().enumerate().skip(begin) {
                    if !in_block(idx, l) {
                        break;
                    }
                    let c = *child_indent.get_or_insert(l.key_indent);
                    if l.key_indent == c && is_key(l.rest, key) {
                        hit = Some(idx);
                        break;
                    }
                }
                let Some(idx) = hit else {
                    return found;
                };
                pos = Some(idx);
                parent_indent = lines[idx].key_indent as isize;
                start_included = false;
                found = Some(lines[idx].no);
            }
            Seg::Index(want) => {
                let mut dash_indent = None;
                let mut count = 0;
                let mut hit = None;
                for l in lines.iter().enumerate().skip(begin) {
                    let (idx, l) = l;
                    let same_level_dash = l.dash && l.indent as isize == parent_indent;
                    if !(in_block(idx, l) || same_level_dash) {
                        break;
                    }
                    if !l.dash {
                        continue;
                    }
                    let d = *dash_indent.get_or_insert(l.indent);
                    if l.indent == d {
                        if count == want {
                            hit = Some(idx);
                            break;
                        }
                        count += 1;
                    }
                }
                let Some(idx) = hit else {
                    return found;
                };
                pos = Some(idx);
                parent_indent = lines[idx].indent as isize;
                start_included = true;
                found = Some(lines[idx].no);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::line_of;

    const DOC: &str = "\
name: app
# comment
routing:
  headers:
    X-A: b
  absolutePaths:
    - rule: one
      priority: 1
    - rule: two

      priority: 2
integrations:
  db:
    compatible:
    - app: postgres
      default: true
";

    #[test]
    fn finds_keys_items_and_nested_keys() {
        assert_eq!(line_of(DOC, "name"), Some(1));
        assert_eq!(line_of(DOC, "routing"), Some(3));
        assert_eq!(line_of(DOC, "routing.headers.X-A"), Some(5));
        assert_eq!(line_of(DOC, "routing.absolutePaths[0].rule"), Some(7));
        assert_eq!(line_of(DOC, "routing.absolutePaths[0].priority"), Some(8));
        assert_eq!(line_of(DOC, "routing.absolutePaths[1].priority"), Some(11));
        assert_eq!(
            line_of(DOC, "integrations.db.compatible[0].default"),
            Some(16)
        );
    }

    #[test]
    fn missing_key_gives_none_or_ancestor() {
        assert_eq!(line_of(DOC, "displayName"), None);
        assert_eq!(line_of(DOC, "routing.absolutePaths[5].rule"), Some(6));
    }
}

//! The one place that reads YAML (serde-saphyr; docs/config-errors.md says why that crate):
//! parser options, errors with key path and position, the keys a lenient schema skipped, and the
//! line of any key for problems found after parsing.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::{Localizer, Location, MessageFormatter, Spanned, UserMessageFormatter};

/// A YAML problem with the key path and position serde found it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Key path (`routing.absolutePaths[0].rule`), empty for problems of the document itself.
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// What is wrong, without path or position.
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " at line {line} column {column}")?;
        }
        Ok(())
    }
}

/// Parser settings, chosen to read what serde_yaml 0.9 read the same way: catalog metadata and
/// configs written for upstream must keep their meaning.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // serde_yaml let a repeated key silently replace the earlier one in maps and rejected
        // it in structs; PassThrough hands both to serde, which does exactly that.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        // serde_yaml did not expand `<<`; it stays an ordinary (here: unknown) key.
        merge_keys: serde_saphyr::MergeKeyPolicy::AsOrdinary,
        // YAML 1.2 booleans only, as serde_yaml: `stripPrefix: maybe` or `yes` is a mistake.
        strict_booleans: true,
        // A billion-laughs file must fail fast instead of expanding aliases until memory runs
        // out; real metadata reuses an anchor a handful of times at most.
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
        },
    }
}

/// Parses one document of `T`; `None` when the document has no content (empty, comments only,
/// a bare `---`).
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<Option<T>, YamlError> {
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde_path_to_error::deserialize::<_, Option<T>>(de).map_err(|e| {
            path = error_path(e.path());
            e.into_inner()
        })
    })
    .map_err(|e| first_error(text, &e, path))
}

/// Like [`parse`], also listing the keys `T` does not know (`routing.stripPrefx`), for schemas
/// that accept unknown keys but want them reported.
pub fn parse_lenient<T: DeserializeOwned>(
    text: &str,
    unknown: &mut Vec<String>,
) -> Result<Option<T>, YamlError> {
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        let mut note = |p: serde_ignored::Path<'_>| unknown.push(ignored_path(&p));
        let de = serde_ignored::Deserializer::new(de, &mut note);
        serde_path_to_error::deserialize::<_, Option<T>>(de).map_err(|e| {
            path = error_path(e.path());
            e.into_inner()
        })
    })
    .map_err(|e| first_error(text, &e, path))
}

fn push_key(out: &mut String, key: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(key);
}

fn error_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => push_key(&mut out, key),
            Segment::Unknown => push_key(&mut out, "?"),
        }
    }
    out
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => {
            let mut out = ignored_path(parent);
            push_key(&mut out, key);
            out
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

/// serde-saphyr's own rendering appends "at line L, column C" or a source snippet; the message
/// is rendered bare so that callers place the position the way their messages do.
struct Bare;

impl Localizer for Bare {
    fn attach_location<'a>(&self, base: Cow<'a, str>, _loc: Location) -> Cow<'a, str> {
        base
    }
}

/// The error to report for a failed parse of `text`. Values are read while the text is parsed,
/// so `name: [unclosed` first fails as "expected a string"; a document that is not YAML at all is
/// reported as such, since that is what needs fixing.
fn first_error(text: &str, e: &serde_saphyr::Error, path: String) -> YamlError {
    match serde_saphyr::from_str_with_options::<de::IgnoredAny>(text, options()) {
        Err(syntax) => error(&syntax, String::new()),
        Ok(_) => error(e, path),
    }
}

fn error(e: &serde_saphyr::Error, path: String) -> YamlError {
    let location = e.location().filter(|l| l.line() > 0);
    let message = match e.without_snippet() {
        serde_saphyr::Error::SerdeUnknownField { expected, .. } => {
            format!("unknown key; known keys here: {}", expected.join(", "))
        }
        other => {
            let formatter = UserMessageFormatter.with_localizer(&Bare);
            other.render_with_options(serde_saphyr::render_options! {
                formatter: &formatter as &dyn MessageFormatter,
                snippets: serde_saphyr::SnippetMode::Off,
            })
        }
    };
    YamlError {
        // The unknown key itself ends the path: `rebuild.flak`.
        path: if path == "." { String::new() } else { path },
        line: location.map(|l| l.line() as usize),
        column: location.map(|l| l.column() as usize),
        message,
    }
}

/// Where each key of a document is written: `routing.absolutePaths[0].rule` → its line. Built
/// from the parser's own positions, so flow style, quoting and comments cannot mislead it.
#[derive(Debug, Default)]
pub struct KeyLines(HashMap<String, usize>);

impl KeyLines {
    /// Indexes `text`; a document that does not parse has no lines.
    pub fn of(text: &str) -> Self {
        let mut lines = HashMap::new();
        if let Ok(Some(root)) = serde_saphyr::from_str_with_options::<Option<Node>>(text, options())
        {
            root.index(String::new(), &mut lines);
        }
        KeyLines(lines)
    }

    /// Line of `path`, or of its deepest ancestor that is written (a missing `[5]` falls back to
    /// the list's key).
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(line) = self.0.get(p) {
                return Some(*line);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// A document reduced to its shape, keeping the position of every key and list item.
enum Node {
    Leaf,
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<KeyText>, Node)>),
}

impl Node {
    fn index(self, prefix: String, out: &mut HashMap<String, usize>) {
        match self {
            Node::Leaf => {}
            Node::Seq(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    let path = format!("{prefix}[{i}]");
                    if let Some(line) = line(&item.referenced) {
                        out.entry(path.clone()).or_insert(line);
                    }
                    item.value.index(path, out);
                }
            }
            Node::Map(entries) => {
                for (key, value) in entries {
                    let mut path = prefix.clone();
                    push_key(&mut path, &key.value.0);
                    if let Some(line) = line(&key.referenced) {
                        out.entry(path.clone()).or_insert(line);
                    }
                    value.index(path, out);
                }
            }
        }
    }
}

fn line(l: &Location) -> Option<usize> {
    (l.line() > 0).then_some(l.line() as usize)
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// A mapping key as text, whatever scalar it is written as (`200:` is the key "200").
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
name: app
# comment
routing:
  headers: {X-A: b, \"X-B\": c}
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
    fn key_lines_follow_the_parser() {
        let lines = KeyLines::of(DOC);
        assert_eq!(lines.line_of("name"), Some(1));
        assert_eq!(lines.line_of("routing"), Some(3));
        assert_eq!(lines.line_of("routing.headers.X-B"), Some(4));
        assert_eq!(lines.line_of("routing.absolutePaths[0].rule"), Some(6));
        assert_eq!(lines.line_of("routing.absolutePaths[1].priority"), Some(10));
        assert_eq!(
            lines.line_of("integrations.db.compatible[0].default"),
            Some(15)
        );
        // Missing keys fall back to the deepest written ancestor, or to nothing.
        assert_eq!(lines.line_of("routing.absolutePaths[5].rule"), Some(5));
        assert_eq!(lines.line_of("displayName"), None);
    }

    #[test]
    fn unknown_keys_are_listed_with_their_paths() {
        #[derive(Deserialize)]
        struct Item {
            #[allow(dead_code)]
            rule: String,
        }
        #[derive(Deserialize)]
        struct Doc {
            #[allow(dead_code)]
            items: Vec<Item>,
        }
        let mut unknown = Vec::new();
        parse_lenient::<Doc>("items:\n  - rule: a\n    prio: 1\nextra: 2\n", &mut unknown)
            .expect("parses");
        assert_eq!(unknown, ["items[0].prio", "extra"]);
    }

    #[test]
    fn errors_name_path_and_position() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Doc {
            #[allow(dead_code)]
            n: Vec<u16>,
        }
        let err = parse::<Doc>("n:\n  - 1\n  - lots\n").expect_err("not a number");
        assert_eq!(err.path, "n[1]");
        assert_eq!((err.line, err.column), (Some(3), Some(5)));
        let err = parse::<Doc>("n: []\nm: 1\n").expect_err("unknown key");
        assert_eq!(
            err.to_string(),
            "m: unknown key; known keys here: n at line 2 column 1"
        );
    }
}

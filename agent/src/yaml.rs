//! The agent's side of reading YAML (the parser options and the error shape are
//! `bloud_common::yaml`, shared with the proxy): its wording of unknown keys, the keys a lenient
//! schema skipped, and the line of any key for problems found after parsing.

use std::collections::HashMap;
use std::fmt;

use bloud_common::yaml::{self, line, push_key};
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

pub use bloud_common::yaml::YamlError;

/// Parses one document of `T`; `None` when the document has no content (empty, comments only,
/// a bare `---`).
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<Option<T>, YamlError> {
    yaml::parse_document(text, unknown_key)
}

/// Like [`parse`], also listing the keys `T` does not know (`routing.stripPrefx`), for schemas
/// that accept unknown keys but want them reported.
pub fn parse_lenient<T: DeserializeOwned>(
    text: &str,
    unknown: &mut Vec<String>,
) -> Result<Option<T>, YamlError> {
    yaml::parse_with(text, unknown_key, |de, path| {
        let mut note = |p: serde_ignored::Path<'_>| unknown.push(ignored_path(&p));
        yaml::tracked(serde_ignored::Deserializer::new(de, &mut note), path)
    })
}

/// The unknown key itself ends the path (`rebuild.flak`), so the message only lists the others.
fn unknown_key(_path: &mut String, _key: &str, known: &[&str]) -> String {
    format!("unknown key; known keys here: {}", known.join(", "))
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

/// Where each key of a document is written: `routing.absolutePaths[0].rule` → its line. Built
/// from the parser's own positions, so flow style, quoting and comments cannot mislead it.
#[derive(Debug, Default)]
pub struct KeyLines(HashMap<String, usize>);

impl KeyLines {
    /// Indexes `text`; a document that does not parse has no lines.
    pub fn of(text: &str) -> Self {
        let mut lines = HashMap::new();
        if let Ok(Some(root)) =
            serde_saphyr::from_str_with_options::<Option<Node>>(text, yaml::options())
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
        let err = parse::<Doc>("n: []\nm: 1\n").expect_err("unknown key");
        assert_eq!(
            err.to_string(),
            "m: unknown key; known keys here: n at line 2 column 1"
        );
    }
}

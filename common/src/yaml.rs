//! Reading YAML for bloud-proxy and bloud-agent (serde-saphyr; docs/config-errors.md says why that
//! crate): one set of parser options, so both read a file the same way serde_yaml 0.9 did, and one
//! error shape with key path and position. How an unknown key is worded stays with each crate:
//! the proxy keeps serde_yaml's wording, which Traefik users know, the agent its own.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer};
use serde_saphyr::{Localizer, Location, MessageFormatter, UserMessageFormatter};

/// A YAML problem with the key path and position serde found it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Key path (`http.routers.r.priority`, `routing.absolutePaths[0].rule`), empty for problems
    /// of the document itself.
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// What is wrong, without path or position.
    pub message: String,
}

impl fmt::Display for YamlError {
    /// `http.routers.r.priority: invalid i64 at line 6 column 17`: the shape serde_yaml used,
    /// which the proxy's `Problem`, the agent's errors and people's log searches rely on.
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

/// Words the error for a key the schema does not know. It gets the key path (ending in that key,
/// and free to shorten it), the key, and the keys the schema knows there.
pub type UnknownKey = fn(path: &mut String, key: &str, known: &[&str]) -> String;

/// Parser settings, chosen to read what serde_yaml 0.9 read the same way: upstream Traefik files,
/// catalog metadata and configs written for upstream are plain YAML and must keep their meaning.
pub fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // serde_yaml let a repeated key silently replace the earlier one in maps and rejected
        // it in structs; PassThrough hands both to serde, which does exactly that.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        // serde_yaml did not expand `<<`; it stays an ordinary key (in a typed section: an
        // unknown one).
        merge_keys: serde_saphyr::MergeKeyPolicy::AsOrdinary,
        // YAML 1.2 booleans only, as serde_yaml: `permanent: yes` is a mistake, not true.
        strict_booleans: true,
        // A billion-laughs file must fail fast instead of expanding aliases until memory runs
        // out. Real files reuse an anchor a handful of times; 100,000 replayed events is far
        // beyond that.
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
        },
    }
}

/// Parses one document of `T`; `None` when the document has no content (empty, comments only,
/// a bare `---`).
pub fn parse_document<T: DeserializeOwned>(
    text: &str,
    unknown: UnknownKey,
) -> Result<Option<T>, YamlError> {
    parse_with(text, unknown, |de, path| tracked(de, path))
}

/// Runs `read` on the parser of `text` (with [`options`]), for callers that wrap the parser
/// before deserializing; `read` hands its key path to [`tracked`] so errors carry it.
pub fn parse_with<'de, R, F>(text: &'de str, unknown: UnknownKey, read: F) -> Result<R, YamlError>
where
    F: for<'e> FnOnce(
        serde_saphyr::Deserializer<'de, 'e>,
        &mut String,
    ) -> Result<R, serde_saphyr::Error>,
{
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| read(de, &mut path))
        .map_err(|e| first_error(text, &e, path, unknown))
}

/// Deserializes `T` from `de`; when that fails, `path` is set to the key path it failed at.
pub fn tracked<'de, D: Deserializer<'de>, T: de::Deserialize<'de>>(
    de: D,
    path: &mut String,
) -> Result<T, D::Error> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        *path = key_path(e.path());
        e.into_inner()
    })
}

/// Appends `key` to a dotted key path.
pub fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// The line of a parser position; `None` where the parser had none to give.
pub fn line(location: &Location) -> Option<usize> {
    (location.line() > 0).then_some(location.line() as usize)
}

fn key_path(path: &serde_path_to_error::Path) -> String {
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

/// serde-saphyr's own rendering appends "at line L, column C" or a source snippet; the message
/// is rendered bare so that every error reads the same way whatever produced it.
struct Bare;

impl Localizer for Bare {
    fn attach_location<'a>(&self, base: Cow<'a, str>, _loc: Location) -> Cow<'a, str> {
        base
    }
}

/// The error to report for a failed parse of `text`. Values are read while the text is parsed,
/// so `name: [unclosed` first fails as "expected a string"; a document that is not YAML at all is
/// reported as such, since that is what needs fixing.
fn first_error(
    text: &str,
    e: &serde_saphyr::Error,
    path: String,
    unknown: UnknownKey,
) -> YamlError {
    match serde_saphyr::from_str_with_options::<de::IgnoredAny>(text, options()) {
        Err(syntax) => error(&syntax, String::new(), unknown),
        Ok(_) => error(e, path, unknown),
    }
}

fn error(e: &serde_saphyr::Error, mut path: String, unknown: UnknownKey) -> YamlError {
    let location = e.location().filter(|l| l.line() > 0);
    let message = match e.without_snippet() {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => unknown(&mut path, field, expected),
        other => {
            let formatter = UserMessageFormatter.with_localizer(&Bare);
            other.render_with_options(serde_saphyr::render_options! {
                formatter: &formatter as &dyn MessageFormatter,
                snippets: serde_saphyr::SnippetMode::Off,
            })
        }
    };
    YamlError {
        path: if path == "." { String::new() } else { path },
        line: location.map(|l| l.line() as usize),
        column: location.map(|l| l.column() as usize),
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Doc {
        flag: bool,
        n: Vec<u16>,
        map: BTreeMap<String, String>,
        inner: Inner,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        a: u8,
    }

    /// Any nesting of lists of strings, read value by value like a free-form section.
    #[derive(Debug, Deserialize)]
    #[serde(untagged)]
    enum Any {
        Text(#[allow(dead_code)] String),
        List(#[allow(dead_code)] Vec<Any>),
    }

    /// A wording that shows what it was handed and that it may shorten the path.
    fn wording(path: &mut String, key: &str, known: &[&str]) -> String {
        let before = std::mem::replace(path, "shortened".into());
        format!("{key} in {before}, known: {}", known.join("/"))
    }

    /// `Ok` with the document's Debug (or `empty`), `Err` with the error's Display.
    fn outcome<T: DeserializeOwned + fmt::Debug>(text: &str) -> Result<String, String> {
        match parse_document::<T>(text, wording) {
            Ok(Some(doc)) => Ok(format!("{doc:?}")),
            Ok(None) => Ok("empty".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn plain_yaml_reads_as_serde_yaml_read_it() {
        let cases: &[(&str, &str, Result<&str, &str>)] = &[
            (
                "a key written twice in a map keeps its last value",
                "map: {a: x, a: y}\n",
                Ok(r#"Doc { flag: false, n: [], map: {"a": "y"}, inner: Inner { a: 0 } }"#),
            ),
            (
                "a key written twice in a struct is an error",
                "flag: true\nflag: false\n",
                Err("duplicate field `flag`"),
            ),
            (
                "`<<` is an ordinary key in a map",
                "map: {<<: x}\n",
                Ok(r#"Doc { flag: false, n: [], map: {"<<": "x"}, inner: Inner { a: 0 } }"#),
            ),
            (
                "`<<` is not expanded, so it is an unknown key in a struct",
                "inner: &i {a: 1}\nmap:\n  k: v\n<<: *i\n",
                Err("shortened: << in <<, known: flag/n/map/inner at line 4 column 1"),
            ),
            (
                "anchors and aliases work",
                "map: {a: &v x, b: *v}\ninner: &i {a: 7}\n",
                Ok(
                    r#"Doc { flag: false, n: [], map: {"a": "x", "b": "x"}, inner: Inner { a: 7 } }"#,
                ),
            ),
            (
                "YAML 1.2 booleans are booleans",
                "flag: true\n",
                Ok("Doc { flag: true, n: [], map: {}, inner: Inner { a: 0 } }"),
            ),
            (
                "`yes` is not a boolean",
                "flag: yes\n",
                Err("flag: invalid boolean (true or false expected) at line 1 column 7"),
            ),
            ("an empty document is empty", "", Ok("empty")),
            (
                "a comment-only document is empty",
                "# nothing\n",
                Ok("empty"),
            ),
            ("a bare `---` is empty", "---\n# nothing\n", Ok("empty")),
        ];
        for (what, text, want) in cases {
            let got = outcome::<Doc>(text);
            assert_eq!(got.as_deref().map_err(String::as_str), *want, "{what}");
        }
    }

    #[test]
    fn alias_bombs_are_refused_without_expanding_them() {
        // Ten levels of ten aliases each: 10^10 strings if expanded.
        let names: Vec<char> = ('a'..='j').collect();
        let mut bomb = format!("a: &a [{}]\n", ["x"; 10].join(", "));
        for level in names.windows(2) {
            let refs = vec![format!("*{}", level[0]); 10].join(", ");
            bomb.push_str(&format!("{0}: &{0} [{refs}]\n", level[1]));
        }
        let cases: [(&str, Result<String, String>); 3] = [
            // A typed section never expands them: a list where a string belongs fails at once,
            // and checking the syntax after that error stops at the budget.
            ("typed", outcome::<BTreeMap<String, String>>(&bomb)),
            // A free-form value would expand every alias; the budget stops it.
            ("free-form", outcome::<BTreeMap<String, Any>>(&bomb)),
            // Even skipping a value replays what its aliases point at.
            ("ignored", outcome::<de::IgnoredAny>(&bomb)),
        ];
        let refused = "YAML document too large or too complex: total_replayed_events=100001 > \
            100000 (defined at line 4, column 7) (used at line 5, column 36) at line 5 column 36";
        for (what, got) in cases {
            assert_eq!(got, Err(refused.to_string()), "{what}");
        }
    }

    #[test]
    fn errors_name_path_and_position() {
        // (what, text, path, line and column, Display)
        let cases = [
            (
                "a value of the wrong type",
                "n:\n  - 1\n  - lots\n",
                "n[1]",
                (Some(3), Some(5)),
                "n[1]: invalid u16 at line 3 column 5",
            ),
            (
                "a nested value",
                "inner:\n  a: 300\n",
                "inner.a",
                (Some(2), Some(6)),
                "inner.a: invalid u8 at line 2 column 6",
            ),
            (
                "an unknown key is worded by the caller, who may shorten the path",
                "inner:\n  a: 1\n  b: 2\n",
                "shortened",
                (Some(3), Some(3)),
                "shortened: b in inner.b, known: a at line 3 column 3",
            ),
            (
                "broken syntax is reported before the type error it causes",
                "n: [1, lots\n",
                "",
                (Some(1), Some(4)),
                "unclosed bracket '[' at line 1 column 4",
            ),
        ];
        for (what, text, path, position, display) in cases {
            let err = parse_document::<Doc>(text, wording).expect_err(what);
            assert_eq!(err.path, path, "{what}");
            assert_eq!((err.line, err.column), position, "{what}");
            assert_eq!(err.to_string(), display, "{what}");
        }
    }

    #[test]
    fn display_leaves_out_what_is_unknown() {
        let error = |path: &str, line, column| YamlError {
            path: path.into(),
            line,
            column,
            message: "bad".into(),
        };
        let cases = [
            (
                error("a.b[0]", Some(1), Some(2)),
                "a.b[0]: bad at line 1 column 2",
            ),
            (error("", Some(1), Some(2)), "bad at line 1 column 2"),
            (error("a", None, None), "a: bad"),
            (error("a", Some(1), None), "a: bad"),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn keys_join_into_dotted_paths() {
        let mut path = String::new();
        for (key, want) in [("a", "a"), ("b", "a.b"), ("<<", "a.b.<<")] {
            push_key(&mut path, key);
            assert_eq!(path, want);
        }
    }
}

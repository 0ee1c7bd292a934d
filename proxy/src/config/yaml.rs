//! The one place that reads YAML: parser options and error messages shared by the static file and
//! the route files (serde-saphyr; docs/config-errors.md says why that crate).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeOwned};
use serde::Deserialize;
use serde_saphyr::{Localizer, Location, MessageFormatter, UserMessageFormatter};

/// A YAML problem with the key path and position serde found it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Dotted key path (`http.routers.r.priority`), empty for problems of the document itself.
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for YamlError {
    /// `http.routers.r.priority: invalid i64 at line 6 column 17`: the shape serde_yaml used,
    /// which `Problem`'s Display and people's log searches rely on.
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

/// Parser settings, chosen to read what serde_yaml 0.9 read the same way: upstream Traefik files
/// are plain YAML and must keep their meaning.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // serde_yaml let a repeated key silently replace the earlier one in maps and rejected
        // it in structs; PassThrough hands both to serde, which does exactly that.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        // serde_yaml did not expand `<<`: in a typed section it is an unknown key.
        merge_keys: serde_saphyr::MergeKeyPolicy::AsOrdinary,
        // YAML 1.2 booleans only, as serde_yaml: `permanent: yes` is a mistake, not true.
        strict_booleans: true,
        // A billion-laughs file must fail fast instead of expanding aliases until memory runs
        // out. Route files reuse anchors a handful of times; 100,000 replayed events is far
        // beyond that.
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
        },
    }
}

/// Parses `text` as one document of `T`. An empty or comment-only document, or a bare `---`,
/// reads as `T::default()`, as it did with serde_yaml.
pub fn parse<T: DeserializeOwned + Default>(text: &str) -> Result<T, YamlError> {
    parse_document(text).map(Option::unwrap_or_default)
}

/// Like [`parse`], with `None` for a document without content.
pub fn parse_document<T: DeserializeOwned>(text: &str) -> Result<Option<T>, YamlError> {
    let mut path = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde_path_to_error::deserialize::<_, Option<T>>(de).map_err(|e| {
            path = path_text(e.path());
            e.into_inner()
        })
    });
    parsed.map_err(|e| first_error(text, &e, path))
}

fn path_text(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// serde-saphyr's own rendering appends "at line L, column C" or a source snippet; the message
/// is rendered bare here so every error reads the same way whatever produced it.
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

fn error(e: &serde_saphyr::Error, mut path: String) -> YamlError {
    let location = e.location().filter(|l| l.line() > 0);
    let message = match e.without_snippet() {
        // Traefik users know serde_yaml's wording: the path of the mapping, then the key.
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => {
            if let Some(parent) = path.strip_suffix(field.as_str()) {
                path.truncate(parent.strip_suffix('.').unwrap_or(parent).len());
            }
            let expected: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
            format!(
                "unknown field `{field}`, expected one of {}",
                expected.join(", ")
            )
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
        path: if path == "." { String::new() } else { path },
        line: location.map(|l| l.line() as usize),
        column: location.map(|l| l.column() as usize),
        message,
    }
}

/// A mapping key together with the line it is written on, for errors found after parsing (a
/// router naming a missing service) that must still point at the router.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub line: Option<usize>,
}

impl<'de> Deserialize<'de> for Named {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = serde_saphyr::Spanned::<String>::deserialize(d)?;
        let line = key.referenced.line();
        Ok(Named {
            name: key.value,
            line: (line > 0).then_some(line as usize),
        })
    }
}

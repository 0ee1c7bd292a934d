//! The proxy's side of reading YAML (the shared part is `bloud_common::yaml`): the static file and
//! the route files read empty documents as defaults, word unknown keys as serde_yaml did, and keep
//! the line of every item name.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use bloud_common::yaml;
pub use bloud_common::yaml::YamlError;

/// Parses `text` as one document of `T`. An empty or comment-only document, or a bare `---`,
/// reads as `T::default()`, as it did with serde_yaml.
pub fn parse<T: DeserializeOwned + Default>(text: &str) -> Result<T, YamlError> {
    parse_document(text).map(Option::unwrap_or_default)
}

/// Like [`parse`], with `None` for a document without content.
pub fn parse_document<T: DeserializeOwned>(text: &str) -> Result<Option<T>, YamlError> {
    yaml::parse_document(text, unknown_field)
}

/// Traefik users know serde_yaml's wording: the path of the mapping, then the key.
fn unknown_field(path: &mut String, field: &str, expected: &[&str]) -> String {
    if let Some(parent) = path.strip_suffix(field) {
        path.truncate(parent.strip_suffix('.').unwrap_or(parent).len());
    }
    let expected: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
    format!(
        "unknown field `{field}`, expected one of {}",
        expected.join(", ")
    )
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
        Ok(Named {
            name: key.value,
            line: yaml::line(&key.referenced),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_worded_as_serde_yaml_worded_them() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Inner {
            #[allow(dead_code)]
            a: u8,
        }
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Doc {
            #[allow(dead_code)]
            x: Inner,
        }
        let err = parse_document::<Doc>("x:\n  a: 1\n  b: 2\n").expect_err("unknown key");
        assert_eq!(
            err.to_string(),
            "x: unknown field `b`, expected one of `a` at line 3 column 3"
        );
        let err = parse_document::<Doc>("y: 1\n").expect_err("unknown key");
        assert_eq!(
            err.to_string(),
            "unknown field `y`, expected one of `x` at line 1 column 1"
        );
    }
}

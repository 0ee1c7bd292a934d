//! Configuration: the static file (entry points, providers, …) and the dynamic route files.
//!
//! Parsing is typed (`serde` with `deny_unknown_fields`) so that a misspelt or unsupported key is
//! reported with its key path instead of being silently ignored.

pub(crate) mod dynamic;
pub(crate) mod file_provider;
pub mod static_config;
pub(crate) mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How serious a configuration problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The configuration cannot be used.
    Error,
    /// The configuration is used, but something in it was ignored or shadowed.
    Warning,
}

/// One problem found while loading configuration, located in a file (and a line when known).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub severity: Severity,
    pub message: String,
}

impl Problem {
    pub fn error(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        Problem {
            file: file.to_path_buf(),
            line,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub fn warning(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        Problem {
            file: file.to_path_buf(),
            line,
            severity: Severity::Warning,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        write!(f, "{}: {}{}", self.file.display(), sev, self.message)?;
        // YAML errors already end in "at line L column C"; only add ours when it is missing.
        if let Some(line) = self.line {
            if !self.message.contains(" at line ") {
                write!(f, " (line {line})")?;
            }
        }
        Ok(())
    }
}

/// Problems of a whole load, in the order they were found.
#[derive(Debug, Clone, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Problem::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter().filter(|p| p.is_error())
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Parses a Traefik duration: `10s`, `1m30s`, `250ms`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        if secs < 0.0 || !secs.is_finite() {
            return Err(format!("duration {t:?} must not be negative"));
        }
        return Ok(Duration::from_secs_f64(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration {t:?} lacks a unit (use ms, s, m or h)"))?;
        let (num, tail) = rest.split_at(num_end);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("duration {t:?}: {num:?} is not a number"))?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => {
                return Err(format!(
                    "duration {t:?}: unknown unit {other:?} (use ms, s, m or h)"
                ))
            }
        };
        total += Duration::from_secs_f64(value * scale);
        rest = next;
    }
    Ok(total)
}

/// A duration as written in YAML: either a string with a unit or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YamlDuration(pub Duration);

impl<'de> serde::Deserialize<'de> for YamlDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Num(n) => n.to_string(),
            Raw::Text(s) => s,
        };
        parse_duration(&text)
            .map(YamlDuration)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}

//! Configuration: the static file (entry points, providers, …) and the dynamic route files.
//!
//! Parsing is typed (`serde` with `deny_unknown_fields`) so that a misspelt or unsupported key is
//! reported with its key path instead of being silently ignored.

pub mod dynamic;
pub mod file_provider;
pub mod static_config;

use std::collections::HashMap;
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
        // serde_yaml already appends "at line L column C"; only add ours when it is missing.
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

/// Line number (1-based) reported by serde_yaml, if any.
pub fn yaml_error_line(err: &serde_yaml::Error) -> Option<usize> {
    err.location().map(|l| l.line())
}

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

/// Best-effort line of every key nested under the given parent keys (the first line in the
/// parents' block with that key), for errors that serde cannot locate (e.g. a router naming a
/// missing service). Indentation-based; good enough for the block-style YAML people write by
/// hand and that generators emit. One pass over the text: a scan per item made loading a file
/// of N routers take O(N²).
pub fn find_child_key_lines<'t>(text: &'t str, parents: &[&str]) -> HashMap<&'t str, usize> {
    let mut lines = HashMap::new();
    let mut depth = 0usize;
    let mut min_indent: Option<usize> = None;
    for (idx, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if let Some(min) = min_indent {
            if indent <= min && depth > 0 {
                break;
            }
        }
        if !trimmed.contains(':') {
            continue;
        }
        let key = trimmed
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(|c| c == '"' || c == '\'');
        if depth == parents.len() {
            lines.entry(key).or_insert(idx + 1);
        } else if key == parents[depth] {
            depth += 1;
            min_indent = Some(indent);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The single-key scan `find_child_key_lines` replaced, kept as the reference it must agree
    /// with.
    fn find_key_line(text: &str, path: &[&str]) -> Option<usize> {
        let mut depth = 0usize;
        let mut min_indent: Option<usize> = None;
        for (idx, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if let Some(min) = min_indent {
                if indent <= min && depth > 0 {
                    // Left the block of the previous match without finding the next key.
                    return None;
                }
            }
            let key = trimmed
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(|c| c == '"' || c == '\'');
            if trimmed.contains(':') && key == path[depth] {
                depth += 1;
                if depth == path.len() {
                    return Some(idx + 1);
                }
                min_indent = Some(indent);
            }
        }
        None
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn key_lines() {
        let text = "http:\n  routers:\n    a:\n      rule: x\n    b:\n      rule: y\n  services:\n    b:\n      x: 1\n";
        let routers = find_child_key_lines(text, &["http", "routers"]);
        assert_eq!((routers.get("a"), routers.get("b")), (Some(&3), Some(&5)));
        assert_eq!(
            find_child_key_lines(text, &["http", "services"]).get("b"),
            Some(&8)
        );
        assert!(find_child_key_lines(text, &["http", "middlewares"]).is_empty());
    }

    #[test]
    fn child_key_lines_agree_with_find_key_line() {
        let texts = [
            "http:\n  routers:\n    a:\n      rule: x\n    b:\n      rule: y\n  services:\n    b:\n      x: 1\n",
            // Comments, blank lines, quoted keys, a key repeated deeper, a second `routers:`
            // outside `http`, and a key named like a nested field.
            "# top\nhttp:\n\n  routers:\n    # c\n    \"q.r\":\n      rule: x\n      service: s\n    service:\n      rule: z\n    a:\n      rule: y\n  middlewares:\n    m: {}\nrouters:\n  late: 1\n",
            "routers:\n  a: 1\nhttp:\n  routers: {}\n",
            "",
        ];
        for text in texts {
            for section in ["routers", "middlewares", "services"] {
                let all = find_child_key_lines(text, &["http", section]);
                for key in ["a", "b", "q.r", "rule", "service", "m", "late", "x", "zz"] {
                    assert_eq!(
                        all.get(key).copied(),
                        find_key_line(text, &["http", section, key]),
                        "{section}.{key} in {text:?}"
                    );
                }
            }
        }
    }
}

//! Parsing and validation of one metadata file, and checks across apps.

use std::collections::BTreeMap;
use std::path::Path;

use super::{AppMeta, Catalog, CatalogIssue, SsoStrategy};
use crate::yaml::{self, KeyLines};

/// Longest app name we accept (a DNS label, and well within unit-name limits).
const MAX_NAME_LEN: usize = 63;

/// Whether `name` can be an app name: `[a-z][a-z0-9-]*`, at most 63 characters, not ending in
/// `-`. Such names are safe in URLs, proxy rules, Nix attribute names and file paths.
pub fn is_valid_app_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= MAX_NAME_LEN
        && !name.ends_with('-')
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Collects validation problems as (field path, message).
#[derive(Default)]
struct Problems(Vec<(String, String)>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push((field.into(), message.into()));
    }
}

/// Reads, parses and validates one app. On success returns the app and its warnings; on failure
/// every problem found, each naming the file, the field and (where found) the line.
pub fn load_app(
    file: &Path,
    dir_name: &str,
) -> Result<(AppMeta, Vec<CatalogIssue>), Vec<CatalogIssue>> {
    let issue = |line: Option<usize>, field: Option<String>, message: String| CatalogIssue {
        file: file.to_path_buf(),
        line,
        field,
        message,
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| vec![issue(None, None, format!("cannot read the file: {e}"))])?;

    // Unknown keys are accepted, as upstream does, but listed so that they can be reported.
    let mut unknown = Vec::new();
    let app: AppMeta = match yaml::parse_lenient(&text, &mut unknown) {
        Ok(Some(app)) => app,
        Ok(None) => {
            return Err(vec![issue(
                None,
                None,
                "expected a mapping of metadata keys (name, displayName, …)".to_string(),
            )])
        }
        Err(e) if e.path.is_empty() => {
            return Err(vec![issue(e.line, None, format!("not valid YAML: {e}"))])
        }
        Err(e) => return Err(vec![issue(e.line, Some(e.path), e.message)]),
    };

    let mut problems = Problems::default();
    validate_app(&app, dir_name, &mut problems);
    // Lines are looked up only when there is something to report.
    let lines = || KeyLines::of(&text);
    if !problems.0.is_empty() {
        let lines = lines();
        return Err(problems
            .0
            .into_iter()
            .map(|(field, message)| issue(lines.line_of(&field), Some(field), message))
            .collect());
    }

    let mut warnings: Vec<(String, String)> = unknown
        .into_iter()
        .map(|field| {
            (
                field,
                "unknown key, ignored (check its spelling against docs/catalog.md)".to_string(),
            )
        })
        .collect();
    let has_embed = app.routing.as_ref().is_some_and(|r| r.embed.is_some());
    if has_embed && !app.strip_prefix() {
        warnings.push((
            "routing.embed".to_string(),
            "ignored: rewriting applies only when the prefix is stripped (routing.stripPrefix is false)"
                .to_string(),
        ));
    }
    let warnings = if warnings.is_empty() {
        Vec::new()
    } else {
        let lines = lines();
        warnings
            .into_iter()
            .map(|(field, message)| issue(lines.line_of(&field), Some(field), message))
            .collect()
    };
    Ok((app, warnings))
}

fn validate_app(app: &AppMeta, dir_name: &str, p: &mut Problems) {
    if app.name.is_empty() {
        p.add("name", "required; set it to the directory name");
    } else if !is_valid_app_name(&app.name) {
        p.add(
            "name",
            format!(
                "`{}` is not a valid app name: use lowercase letters, digits and `-`, starting with a letter",
                app.name
            ),
        );
    } else if app.name != dir_name {
        p.add(
            "name",
            format!(
                "`{}` differs from its directory `{dir_name}`; rename one so they match",
                app.name
            ),
        );
    }
    for (field, value) in [
        ("displayName", &app.display_name),
        ("description", &app.description),
        ("category", &app.category),
    ] {
        if value.trim().is_empty() {
            p.add(field, "required and must not be empty");
        }
    }
    if SsoStrategy::parse(&app.sso.strategy).is_none() {
        p.add(
            "sso.strategy",
            format!(
                "unknown strategy `{}`: use native-oidc, forward-auth, ldap or none",
                app.sso.strategy
            ),
        );
    }
    for (field, path) in [
        ("sso.callbackPath", &app.sso.callback_path),
        ("healthCheck.path", &app.health_check.path),
    ] {
        if !path.is_empty() && !path.starts_with('/') {
            p.add(field, format!("`{path}` must start with `/`"));
        }
    }
    validate_integrations(app, p);
    if let Some(routing) = &app.routing {
        validate_headers("routing.headers", &routing.headers, p);
        for (i, abs) in routing.absolute_paths.iter().enumerate() {
            let base = format!("routing.absolutePaths[{i}]");
            if abs.rule.trim().is_empty() {
                p.add(
                    format!("{base}.rule"),
                    "required, e.g. PathPrefix(`/openid`)",
                );
            } else if abs.rule.contains(['\n', '\r']) {
                p.add(format!("{base}.rule"), "must be on one line");
            }
            validate_headers(&format!("{base}.headers"), &abs.headers, p);
        }
        if let Some(embed) = &routing.embed {
            for (i, path) in embed.exclude.iter().enumerate() {
                if let Some(why) = exclude_problem(path) {
                    p.add(
                        format!("routing.embed.exclude[{i}]"),
                        format!("`{path}` {why}"),
                    );
                }
            }
            if let Some(inject) = &embed.inject {
                if inject.config.is_none() && inject.src.is_none() && inject.script.is_none() {
                    p.add(
                        "routing.embed.inject",
                        "give at least one of config, src, script (or leave inject out)",
                    );
                }
                let bad_src = |src: &String| {
                    src.is_empty() || src.bytes().any(|b| b <= b' ' || b == b'"' || b == b'<')
                };
                if inject.src.as_ref().is_some_and(bad_src) {
                    p.add(
                        "routing.embed.inject.src",
                        "must be a URL without spaces, quotes or `<`",
                    );
                }
            }
        }
    }
}

/// Why an `exclude` entry would be rejected by the proxy's `embed` middleware, if it would.
fn exclude_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("must be a root path starting with `/`");
    }
    if path == "/" {
        return Some("would exclude every path: set location/html/css to false instead");
    }
    let odd_byte = |b: u8| b <= b' ' || b == 0x7f || matches!(b, b'?' | b'#' | b'\\');
    if path.bytes().any(odd_byte) || path.contains("//") {
        return Some(
            "must be a plain path (no query, fragment, spaces, control characters, `\\` or `//`)",
        );
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Some("must not contain `.` or `..` segments");
    }
    None
}

fn validate_integrations(app: &AppMeta, p: &mut Problems) {
    for (name, integration) in &app.integrations {
        let base = format!("integrations.{name}");
        if integration.required && integration.compatible.is_empty() {
            p.add(
                format!("{base}.compatible"),
                "a required integration needs at least one compatible app",
            );
        }
        for (i, compat) in integration.compatible.iter().enumerate() {
            let field = format!("{base}.compatible[{i}].app");
            if !is_valid_app_name(&compat.app) {
                p.add(field, format!("`{}` is not a valid app name", compat.app));
            } else if compat.app == app.name {
                p.add(field, "an app cannot integrate with itself");
            }
        }
    }
}

fn validate_headers(base: &str, headers: &BTreeMap<String, String>, p: &mut Problems) {
    for (name, value) in headers {
        if !is_header_name(name) {
            p.add(format!("{base}.{name}"), "not a valid HTTP header name");
        } else if !is_header_value(value) {
            p.add(
                format!("{base}.{name}"),
                "header value contains a control character (line break?)",
            );
        }
    }
}

/// Warnings that need the whole catalog: integrations naming apps that are not in it.
pub fn cross_app_warnings(catalog: &Catalog) -> Vec<CatalogIssue> {
    let mut out = Vec::new();
    for app in catalog.apps() {
        let file = catalog.dir().join(&app.name).join(super::METADATA_FILE);
        // Only read back for the line number, and only when there is something to report.
        let mut lines: Option<KeyLines> = None;
        for (name, integration) in &app.integrations {
            for (i, compat) in integration.compatible.iter().enumerate() {
                if !catalog.contains(&compat.app) {
                    let field = format!("integrations.{name}.compatible[{i}].app");
                    let lines = lines.get_or_insert_with(|| {
                        KeyLines::of(&std::fs::read_to_string(&file).unwrap_or_default())
                    });
                    out.push(CatalogIssue {
                        line: lines.line_of(&field),
                        file: file.clone(),
                        field: Some(field),
                        message: format!(
                            "`{}` is not in the catalog; plans will not offer it",
                            compat.app
                        ),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::is_valid_app_name;

    #[test]
    fn app_names() {
        for ok in ["miniflux", "actual-budget", "a", "app2"] {
            assert!(is_valid_app_name(ok), "{ok}");
        }
        for bad in [
            "", "Miniflux", "2app", "a/b", "../x", "a-", "a b", "a.b", "a_b",
        ] {
            assert!(!is_valid_app_name(bad), "{bad}");
        }
    }
}

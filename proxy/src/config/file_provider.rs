//! Traefik-style file provider: read one file or every `*.yml`/`*.yaml` of a directory (name
//! order, `*.tmp` and dotfiles ignored) and merge them; the first definition of a name wins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::dynamic::{
    CertificateFiles, DynamicFile, MiddlewareConfig, RouterConfig, Section, ServiceConfig,
};
use super::yaml::{self, Named};
use super::Problem;

/// Where the dynamic configuration lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Directory(PathBuf),
    File(PathBuf),
}

/// An item together with the file (and line, when found) that defined it.
#[derive(Debug, Clone)]
pub struct Sourced<T> {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub value: T,
}

/// All dynamic files merged.
#[derive(Debug, Clone, Default)]
pub struct MergedConfig {
    pub routers: BTreeMap<String, Sourced<RouterConfig>>,
    pub middlewares: BTreeMap<String, Sourced<MiddlewareConfig>>,
    pub services: BTreeMap<String, Sourced<ServiceConfig>>,
    /// `tls.certificates` of every file, in file order.
    pub certificates: Vec<Sourced<CertificateFiles>>,
    /// `tls.stores.default.defaultCertificate`: the first file that sets it wins.
    pub default_certificate: Option<Sourced<CertificateFiles>>,
    pub files: Vec<PathBuf>,
    /// Errors and warnings met while reading and merging.
    pub problems: Vec<Problem>,
}

/// True for names the provider reads: `*.yml`/`*.yaml`, not hidden, not temporary.
pub fn is_config_file_name(name: &str) -> bool {
    !name.starts_with('.')
        && !name.ends_with(".tmp")
        && (name.ends_with(".yml") || name.ends_with(".yaml"))
}

/// Lists the files of a source in the order they are merged.
pub fn list_files(source: &Source) -> Result<Vec<PathBuf>, Problem> {
    match source {
        Source::File(f) => Ok(vec![f.clone()]),
        Source::Directory(dir) => {
            let entries = std::fs::read_dir(dir).map_err(|e| {
                Problem::error(dir, None, format!("cannot read route directory: {e}"))
            })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| !t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(is_config_file_name)
                })
                .collect();
            files.sort();
            Ok(files)
        }
    }
}

/// Reads and merges every file of the source.
pub fn load(source: &Source) -> MergedConfig {
    let mut merged = MergedConfig::default();
    let files = match list_files(source) {
        Ok(f) => f,
        Err(p) => {
            merged.problems.push(p);
            return merged;
        }
    };
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => merge_text(&mut merged, &file, &text),
            Err(e) => merged.problems.push(Problem::error(
                &file,
                None,
                format!("cannot read route file: {e}"),
            )),
        }
    }
    merged
}

/// Parses one file's text and merges it into `merged` (used for files and for in-memory YAML).
pub fn merge_text(merged: &mut MergedConfig, file: &Path, text: &str) {
    merged.files.push(file.to_path_buf());
    let parsed: DynamicFile = match yaml::parse(text) {
        Ok(p) => p,
        Err(first) => {
            // Names read with their line cannot appear in the error's key path; read the file
            // again with plain names to report `http.routers.r.priority`, not `http.routers.?`.
            let err = yaml::parse::<DynamicFile<String>>(text)
                .err()
                .unwrap_or(first);
            merged
                .problems
                .push(Problem::error(file, err.line, err.to_string()));
            return;
        }
    };
    if let Some(tls) = parsed.tls {
        merge_tls(merged, file, tls);
    }
    let Some(http) = parsed.http else { return };
    insert_all(
        &mut merged.routers,
        &mut merged.problems,
        file,
        "routers",
        http.routers,
    );
    insert_all(
        &mut merged.middlewares,
        &mut merged.problems,
        file,
        "middlewares",
        http.middlewares,
    );
    insert_all(
        &mut merged.services,
        &mut merged.problems,
        file,
        "services",
        http.services,
    );
}

fn merge_tls(merged: &mut MergedConfig, file: &Path, tls: super::dynamic::TlsConfig) {
    for (i, c) in tls.certificates.into_iter().enumerate() {
        if let Some(stores) = &c.stores {
            if let Some(other) = stores.iter().find(|s| s.as_str() != "default") {
                merged.problems.push(Problem::error(
                    file,
                    None,
                    format!("tls.certificates[{i}].stores: only the store \"default\" exists, not {other:?}"),
                ));
            }
        }
        merged.certificates.push(Sourced {
            file: file.to_path_buf(),
            line: None,
            value: c,
        });
    }
    let default = tls
        .stores
        .and_then(|s| s.default)
        .and_then(|s| s.default_certificate);
    if let Some(d) = default {
        if let Some(first) = &merged.default_certificate {
            merged.problems.push(Problem::warning(
                file,
                None,
                format!(
                    "tls.stores.default.defaultCertificate: already defined in {}, this definition is skipped",
                    first.file.display()
                ),
            ));
        } else {
            merged.default_certificate = Some(Sourced {
                file: file.to_path_buf(),
                line: None,
                value: d,
            });
        }
    }
}

fn insert_all<T>(
    into: &mut BTreeMap<String, Sourced<T>>,
    problems: &mut Vec<Problem>,
    file: &Path,
    section: &str,
    items: Option<Section<Named, T>>,
) {
    let Some(items) = items else { return };
    for (Named { name, line }, value) in items.0 {
        if let Some(first) = into.get(&name) {
            problems.push(Problem::warning(
                file,
                line,
                format!(
                    "http.{section}.{name}: already defined in {}, this definition is skipped",
                    first.file.display()
                ),
            ));
            continue;
        }
        into.insert(
            name,
            Sourced {
                file: file.to_path_buf(),
                line,
                value,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_filter() {
        assert!(is_config_file_name("apps-routes.yml"));
        assert!(is_config_file_name("base.yaml"));
        assert!(!is_config_file_name("apps-routes.yml.tmp"));
        assert!(!is_config_file_name(".apps-routes.yml"));
        assert!(!is_config_file_name("notes.txt"));
    }

    #[test]
    fn first_definition_wins_with_warning() {
        let mut m = MergedConfig::default();
        let a = "http:\n  services:\n    s:\n      loadBalancer:\n        servers:\n        - url: http://127.0.0.1:1\n";
        let b = "http:\n  services:\n    s:\n      loadBalancer:\n        servers:\n        - url: http://127.0.0.1:2\n";
        merge_text(&mut m, Path::new("a.yml"), a);
        merge_text(&mut m, Path::new("b.yml"), b);
        assert_eq!(m.services["s"].file, PathBuf::from("a.yml"));
        assert_eq!(m.problems.len(), 1);
        assert!(!m.problems[0].is_error());
        assert_eq!(m.problems[0].line, Some(3));
        assert!(m.problems[0].message.contains("already defined in a.yml"));
    }

    #[test]
    fn unsupported_feature_is_an_error_with_path_and_line() {
        let mut m = MergedConfig::default();
        let text = "http:\n  middlewares:\n    auth:\n      basicAuth:\n        users: [x]\n";
        merge_text(&mut m, Path::new("x.yml"), text);
        let p = &m.problems[0];
        assert!(p.is_error());
        assert!(p.message.contains("http.middlewares.auth"), "{}", p.message);
        assert!(p.message.contains("basicAuth"), "{}", p.message);
        assert_eq!(p.line, Some(4));
        let text = "tcp:\n  routers: {}\n";
        merge_text(&mut m, Path::new("y.yml"), text);
        assert!(
            m.problems[1].message.contains("tcp"),
            "{}",
            m.problems[1].message
        );
    }

    #[test]
    fn item_lines_come_from_the_parser_whatever_the_style() {
        let mut m = MergedConfig::default();
        let text = "# routers first\nhttp:\n  routers: {a: {rule: x, service: s},\n    # a comment mentioning b: here\n    \"b\": {rule: y, service: s}}\n  services:\n\n    s:\n      loadBalancer: {servers: [{url: 'http://127.0.0.1:1'}]}\n";
        merge_text(&mut m, Path::new("f.yml"), text);
        assert!(m.problems.is_empty(), "{:?}", m.problems);
        assert_eq!(m.routers["a"].line, Some(3));
        assert_eq!(m.routers["b"].line, Some(5));
        assert_eq!(m.services["s"].line, Some(8));
    }

    #[test]
    fn type_errors_name_the_full_key_path_and_line() {
        let mut m = MergedConfig::default();
        let text =
            "http:\n  routers:\n    r:\n      rule: x\n      service: s\n      priority: high\n";
        merge_text(&mut m, Path::new("x.yml"), text);
        let p = &m.problems[0];
        assert!(
            p.message.starts_with("http.routers.r.priority: "),
            "{}",
            p.message
        );
        assert!(p.message.ends_with(" at line 6 column 17"), "{}", p.message);
        assert_eq!(p.line, Some(6));
    }

    #[test]
    fn broken_syntax_is_reported_before_what_it_breaks() {
        let mut m = MergedConfig::default();
        merge_text(&mut m, Path::new("x.yml"), "http:\n  routers: {r: [\n");
        let p = &m.problems[0];
        assert!(!p.message.starts_with("http"), "{}", p.message);
        assert!(p.line.is_some(), "{p:?}");
    }

    #[test]
    fn plain_yaml_reads_as_serde_yaml_read_it() {
        // A name written twice in one file: the last definition, as before.
        let mut m = MergedConfig::default();
        let text =
            "http:\n  routers:\n    r: {rule: a, service: s}\n    r: {rule: b, service: s}\n";
        merge_text(&mut m, Path::new("d.yml"), text);
        assert!(m.problems.is_empty(), "{:?}", m.problems);
        assert_eq!(
            (m.routers["r"].value.rule.as_str(), m.routers["r"].line),
            ("b", Some(4))
        );
        // Anchors and aliases work; merge keys were never expanded and stay unknown keys.
        let mut m = MergedConfig::default();
        let text = "http:\n  routers:\n    a: &r {rule: a, service: s, middlewares: &m [x]}\n    b: {rule: b, service: s, middlewares: *m}\n    c:\n      <<: *r\n";
        merge_text(&mut m, Path::new("a.yml"), text);
        assert_eq!(m.problems.len(), 1, "{:?}", m.problems);
        assert!(
            m.problems[0]
                .message
                .starts_with("http.routers.c: unknown field `<<`"),
            "{}",
            m.problems[0]
        );
        assert_eq!(m.problems[0].line, Some(6));
        // Only YAML 1.2 booleans.
        let mut m = MergedConfig::default();
        let text =
            "http:\n  middlewares:\n    m: {redirectScheme: {scheme: https, permanent: yes}}\n";
        merge_text(&mut m, Path::new("b.yml"), text);
        assert!(
            m.problems[0]
                .message
                .contains("http.middlewares.m.redirectScheme.permanent"),
            "{}",
            m.problems[0]
        );
        // A file of comments only (the agent's "no routable apps") or a bare `---` is empty.
        let mut m = MergedConfig::default();
        merge_text(&mut m, Path::new("e.yml"), "# No routable apps installed\n");
        merge_text(&mut m, Path::new("f.yml"), "---\n# nothing\n");
        assert!(m.problems.is_empty(), "{:?}", m.problems);
    }

    #[test]
    fn alias_bombs_are_refused_without_expanding_them() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i", "j"])
        {
            let refs = vec![format!("*{prev}"); 10].join(", ");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        // 10^10 strings if expanded. Typed sections never expand them (a list where a string
        // belongs fails at once), and checking the syntax after that error stops at the budget.
        text.push_str("http:\n  routers:\n    bomb: {rule: x, service: s, entryPoints: *j}\n");
        let mut m = MergedConfig::default();
        merge_text(&mut m, Path::new("bomb.yml"), &text);
        assert!(m.routers.is_empty());
        assert!(m.problems[0].is_error());
        assert!(
            m.problems[0].message.contains("too large or too complex"),
            "{}",
            m.problems[0]
        );
    }

    #[test]
    fn directory_skips_tmp_and_dotfiles() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("b.yml"), "http: {}\n").expect("write");
        std::fs::write(dir.path().join("a.yaml"), "# empty\n").expect("write");
        std::fs::write(dir.path().join("c.yml.tmp"), "garbage: [").expect("write");
        std::fs::write(dir.path().join(".hidden.yml"), "garbage: [").expect("write");
        let m = load(&Source::Directory(dir.path().to_path_buf()));
        assert!(m.problems.is_empty(), "{:?}", m.problems);
        let names: Vec<_> = m
            .files
            .iter()
            .filter_map(|f| f.file_name().and_then(|n| n.to_str()).map(String::from))
            .collect();
        assert_eq!(names, vec!["a.yaml", "b.yml"]);
    }
}

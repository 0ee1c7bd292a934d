//! Traefik rule grammar: `Path`, `PathPrefix`, `PathRegexp`, `Host`, `HostRegexp`, `Method`,
//! `Header`, `HeaderRegexp`, `Query`, `QueryRegexp`, combined with `&&`, `||`, `!` and
//! parentheses; arguments in backticks or quotes. Rules are compiled once (regexes included) into
//! a [`Matcher`] that inspects a [`RequestView`] without allocating.

use std::fmt;

use http::HeaderMap;
use regex::Regex;

/// The parts of a request that rules look at.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// Host without port, as sent by the client (compared case-insensitively).
    pub host: &'a str,
    /// Path as sent (raw, not percent-decoded), without the query.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

/// A rule that failed to parse or compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {}: {message} (at character {position})", excerpt(.rule, *.position))]
pub struct RuleError {
    pub rule: String,
    pub position: usize,
    pub message: String,
}

/// The rule as it goes into an error message: whole when short, else the part around
/// `position`, so a 4 KB rule does not become a 4 KB log line.
fn excerpt(rule: &str, position: usize) -> String {
    const KEEP: usize = 40;
    if rule.len() <= 3 * KEEP {
        return format!("{rule:?}");
    }
    let floor = |mut i: usize| {
        while !rule.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = floor(position.saturating_sub(KEEP).min(rule.len()));
    let end = floor((position + KEEP).min(rule.len()));
    format!(
        "{}{:?}{} ({} characters)",
        if start > 0 { "…" } else { "" },
        &rule[start..end],
        if end < rule.len() { "…" } else { "" },
        rule.chars().count()
    )
}

/// Compiled rule.
#[derive(Debug, Clone)]
pub enum Matcher {
    Path(Box<str>),
    PathPrefix(Box<str>),
    /// The regex, and the literal prefix every match must start with when the pattern has one
    /// (see [`regex_literal_prefix`]).
    PathRegexp(Regex, Option<Box<str>>),
    Host(Box<str>),
    HostRegexp(Regex),
    Method(Box<str>),
    Header(http::HeaderName, Box<str>),
    HeaderRegexp(http::HeaderName, Regex),
    Query(Box<str>, Option<Box<str>>),
    QueryRegexp(Box<str>, Regex),
    And(Vec<Matcher>),
    Or(Vec<Matcher>),
    Not(Box<Matcher>),
}

impl Matcher {
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        match self {
            Matcher::Path(p) => req.path == &**p,
            Matcher::PathPrefix(p) => req.path.starts_with(&**p),
            Matcher::PathRegexp(re, _) => re.is_match(req.path),
            Matcher::Host(h) => req.host.eq_ignore_ascii_case(h),
            Matcher::HostRegexp(re) => re.is_match(req.host),
            Matcher::Method(m) => req.method.eq_ignore_ascii_case(m),
            Matcher::Header(name, value) => req
                .headers
                .get_all(name)
                .iter()
                .any(|v| v.as_bytes() == value.as_bytes()),
            Matcher::HeaderRegexp(name, re) => req
                .headers
                .get_all(name)
                .iter()
                .any(|v| v.to_str().is_ok_and(|s| re.is_match(s))),
            Matcher::Query(key, value) => query_pairs(req.query)
                .any(|(k, v)| *k == **key && value.as_deref().is_none_or(|want| v == want)),
            Matcher::QueryRegexp(key, re) => {
                query_pairs(req.query).any(|(k, v)| *k == **key && re.is_match(&v))
            }
            Matcher::And(all) => all.iter().all(|m| m.matches(req)),
            Matcher::Or(any) => any.iter().any(|m| m.matches(req)),
            Matcher::Not(m) => !m.matches(req),
        }
    }

    /// A literal prefix every matching path must start with, used to index routers.
    pub fn required_path_prefix(&self) -> Option<&str> {
        match self {
            Matcher::Path(p) | Matcher::PathPrefix(p) => Some(p),
            Matcher::PathRegexp(_, prefix) => prefix.as_deref(),
            Matcher::And(all) => all
                .iter()
                .filter_map(Matcher::required_path_prefix)
                .max_by_key(|p| p.len()),
            Matcher::Or(any) => {
                // The common prefix of every branch's required prefix.
                let mut prefixes = any.iter().map(Matcher::required_path_prefix);
                let mut common = prefixes.next()??;
                for p in prefixes {
                    let p = p?;
                    let mut n = common
                        .bytes()
                        .zip(p.bytes())
                        .take_while(|(a, b)| a == b)
                        .count();
                    // `/café` and `/cafè` share the first byte of `é`/`è`: cut before it.
                    while !common.is_char_boundary(n) {
                        n -= 1;
                    }
                    common = &common[..n];
                }
                Some(common)
            }
            _ => None,
        }
    }

    /// Hosts (lowercased, as the `Host` matcher compares them) one of which the request's host
    /// must equal for the rule to match, used to index routers by host. `None` when the rule
    /// can match other hosts too (no `Host`, `HostRegexp`, a negation, an `||` with a host-free
    /// branch, ...).
    pub fn required_hosts(&self) -> Option<Vec<&str>> {
        match self {
            Matcher::Host(h) => Some(vec![h]),
            // Every part must match: any part's host set is a valid requirement; take the
            // smallest.
            Matcher::And(all) => all
                .iter()
                .filter_map(Matcher::required_hosts)
                .min_by_key(Vec::len),
            // One branch must match: the union, if every branch names hosts.
            Matcher::Or(any) => {
                let mut hosts = Vec::new();
                for m in any {
                    hosts.extend(m.required_hosts()?);
                }
                hosts.sort_unstable();
                hosts.dedup();
                Some(hosts)
            }
            _ => None,
        }
    }
}

/// The literal text every match of a `PathRegexp` pattern starts with, when the pattern is
/// anchored at the start (`^`) and begins with literal characters: `^/r/app/[0-9]+$` gives
/// `/r/app/`. The prefix ends before the first metacharacter; a character followed by a
/// quantifier (`?`, `*`, `+`, `{`) is left out; escaped punctuation (`\.`, `\/`) counts as
/// literal, any other escape (`\d`, `\x41`, ...) ends it. No prefix (`None`) for patterns
/// without a leading `^` (flags such as `(?i)` or `(?m)` come before it, so they end up here
/// too), with `|` outside any group (`^/a|/b`), or when nothing literal follows the `^`.
/// Wrong answers here would make routers unreachable, so every doubt means `None`.
pub fn regex_literal_prefix(pattern: &str) -> Option<String> {
    let body = pattern.strip_prefix('^')?;
    if has_top_level_alternation(pattern) {
        return None;
    }
    let mut prefix = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        let literal = match c {
            '\\' => match chars.next() {
                // `\<` and `\>` are word-boundary assertions, not literals.
                Some(e) if e.is_ascii_punctuation() && e != '<' && e != '>' => e,
                _ => break,
            },
            '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' => break,
            c => c,
        };
        if matches!(chars.peek(), Some('?' | '*' | '+' | '{')) {
            // The character may be absent (or repeated): it is not part of the prefix.
            break;
        }
        prefix.push(literal);
    }
    (!prefix.is_empty()).then_some(prefix)
}

/// True when `|` appears outside parentheses. Character classes make `(`, `)` and `|` literal
/// and nest in the regex crate's syntax; rather than parse them, a pattern with both `[` and
/// `|` counts as alternated.
fn has_top_level_alternation(pattern: &str) -> bool {
    if !pattern.contains('|') {
        return false;
    }
    if pattern.contains('[') {
        return true;
    }
    let mut depth = 0usize;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '|' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// Query pairs, percent-decoded (`+` as space) only when needed.
fn query_pairs(
    query: Option<&str>,
) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
}

fn form_decode(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// How deep parentheses and `!` may nest in one rule. Parsing, matching and dropping a rule all
/// recurse once per level, so an unbounded depth lets a small file (2,000 `(` in 4 KB) overflow
/// the stack of the process that loads it; real rules nest two or three levels.
pub const MAX_NESTING: usize = 32;

/// Parses and compiles a rule string.
pub fn parse(rule: &str) -> Result<Matcher, RuleError> {
    let mut p = Parser {
        src: rule,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.pos >= rule.len() {
        return Err(p.error("the rule is empty"));
    }
    let m = p.parse_or()?;
    p.skip_ws();
    if p.pos < rule.len() {
        return Err(p.error("unexpected text after the end of the rule"));
    }
    Ok(m)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// Open parentheses and `!` around the current position.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, message: impl Into<String>) -> RuleError {
        RuleError {
            rule: self.src.to_string(),
            position: self.pos,
            message: message.into(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn parse_or(&mut self) -> Result<Matcher, RuleError> {
        let mut items = vec![self.parse_and()?];
        while self.eat("||") {
            items.push(self.parse_and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Matcher::Or(Vec::new()))
        } else {
            Matcher::Or(items)
        })
    }

    fn parse_and(&mut self) -> Result<Matcher, RuleError> {
        let mut items = vec![self.parse_unary()?];
        while self.eat("&&") {
            items.push(self.parse_unary()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Matcher::And(Vec::new()))
        } else {
            Matcher::And(items)
        })
    }

    fn parse_unary(&mut self) -> Result<Matcher, RuleError> {
        if self.eat("!") {
            self.enter()?;
            let inner = self.parse_unary()?;
            self.depth -= 1;
            return Ok(Matcher::Not(Box::new(inner)));
        }
        if self.eat("(") {
            self.enter()?;
            let inner = self.parse_or()?;
            if !self.eat(")") {
                return Err(self.error("missing closing parenthesis"));
            }
            self.depth -= 1;
            return Ok(inner);
        }
        self.parse_matcher()
    }

    fn enter(&mut self) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            self.pos -= 1; // point at the `(` or `!` that went one level too deep
            return Err(self.error(format!(
                "parentheses and `!` nest more than {MAX_NESTING} levels deep; split the rule into simpler routers"
            )));
        }
        Ok(())
    }

    fn parse_matcher(&mut self) -> Result<Matcher, RuleError> {
        self.skip_ws();
        let start = self.pos;
        let name_len = self
            .rest()
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(self.rest().len());
        if name_len == 0 {
            return Err(self.error("expected a matcher such as PathPrefix(`/x`)"));
        }
        let name = &self.src[start..start + name_len];
        self.pos += name_len;
        if !self.eat("(") {
            return Err(self.error(format!("expected '(' after {name}")));
        }
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.parse_string()?);
                if self.eat(")") {
                    break;
                }
                if !self.eat(",") {
                    return Err(self.error("expected ',' or ')' between arguments"));
                }
            }
        }
        self.pos_error_at(start, name, args)
    }

    fn pos_error_at(
        &mut self,
        start: usize,
        name: &str,
        args: Vec<String>,
    ) -> Result<Matcher, RuleError> {
        let fail = |msg: String| RuleError {
            rule: self.src.to_string(),
            position: start,
            message: msg,
        };
        let want = |n: usize| -> Result<(), RuleError> {
            if args.len() == n {
                Ok(())
            } else {
                Err(fail(format!(
                    "{name} takes {n} argument(s), got {}",
                    args.len()
                )))
            }
        };
        let regex = |s: &str| Regex::new(s).map_err(|e| fail(format!("{name}: bad regex: {e}")));
        let header_name = |s: &str| {
            http::HeaderName::from_bytes(s.as_bytes())
                .map_err(|_| fail(format!("{name}: {s:?} is not a header name")))
        };
        // Traefik v2 accepted several values (meaning "any of"); keep accepting them.
        let any_of =
            |make: &dyn Fn(&str) -> Result<Matcher, RuleError>| -> Result<Matcher, RuleError> {
                if args.is_empty() {
                    return Err(fail(format!("{name} needs an argument")));
                }
                let mut ms = args
                    .iter()
                    .map(|a| make(a))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if ms.len() == 1 {
                    ms.remove(0)
                } else {
                    Matcher::Or(ms)
                })
            };
        match name {
            "Path" => any_of(&|a| {
                if !a.starts_with('/') {
                    return Err(fail(format!("Path: {a:?} must start with '/'")));
                }
                Ok(Matcher::Path(a.into()))
            }),
            "PathPrefix" => any_of(&|a| {
                if !a.starts_with('/') {
                    return Err(fail(format!("PathPrefix: {a:?} must start with '/'")));
                }
                Ok(Matcher::PathPrefix(a.into()))
            }),
            "PathRegexp" => {
                want(1)?;
                let re = regex(&args[0])?;
                Ok(Matcher::PathRegexp(
                    re,
                    regex_literal_prefix(&args[0]).map(Into::into),
                ))
            }
            "Host" => any_of(&|a| Ok(Matcher::Host(a.to_ascii_lowercase().into()))),
            "HostRegexp" => {
                want(1)?;
                Ok(Matcher::HostRegexp(regex(&format!("(?i){}", args[0]))?))
            }
            "Method" => any_of(&|a| Ok(Matcher::Method(a.to_ascii_uppercase().into()))),
            "Header" => {
                want(2)?;
                Ok(Matcher::Header(header_name(&args[0])?, args[1].as_str().into()))
            }
            "HeaderRegexp" => {
                want(2)?;
                Ok(Matcher::HeaderRegexp(header_name(&args[0])?, regex(&args[1])?))
            }
            "Query" => match args.len() {
                1 => Ok(Matcher::Query(args[0].as_str().into(), None)),
                2 => Ok(Matcher::Query(
                    args[0].as_str().into(),
                    Some(args[1].as_str().into()),
                )),
                n => Err(fail(format!("Query takes 1 or 2 arguments, got {n}"))),
            },
            "QueryRegexp" => {
                want(2)?;
                Ok(Matcher::QueryRegexp(args[0].as_str().into(), regex(&args[1])?))
            }
            other => Err(fail(format!(
                "unknown or unsupported matcher {other}; supported: Path, PathPrefix, PathRegexp, Host, HostRegexp, Method, Header, HeaderRegexp, Query, QueryRegexp"
            ))),
        }
    }

    fn parse_string(&mut self) -> Result<String, RuleError> {
        self.skip_ws();
        let rest = self.rest();
        let quote = rest
            .chars()
            .next()
            .ok_or_else(|| self.error("unexpected end of rule"))?;
        match quote {
            '`' => {
                let end = rest[1..]
                    .find('`')
                    .ok_or_else(|| self.error("unterminated `backtick` argument"))?;
                let s = rest[1..1 + end].to_string();
                self.pos += end + 2;
                Ok(s)
            }
            '"' | '\'' => {
                let mut out = String::new();
                let mut chars = rest[1..].char_indices();
                while let Some((i, c)) = chars.next() {
                    if c == quote {
                        self.pos += i + 2;
                        return Ok(out);
                    }
                    if c == '\\' {
                        match chars.next() {
                            Some((_, n)) => out.push(n),
                            None => break,
                        }
                    } else {
                        out.push(c);
                    }
                }
                Err(self.error("unterminated quoted argument"))
            }
            _ => Err(self.error("arguments must be in backticks or quotes, e.g. PathPrefix(`/x`)")),
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Path(p) => write!(f, "Path(`{p}`)"),
            Matcher::PathPrefix(p) => write!(f, "PathPrefix(`{p}`)"),
            Matcher::PathRegexp(r, _) => write!(f, "PathRegexp(`{r}`)"),
            Matcher::Host(h) => write!(f, "Host(`{h}`)"),
            Matcher::HostRegexp(r) => write!(f, "HostRegexp(`{r}`)"),
            Matcher::Method(m) => write!(f, "Method(`{m}`)"),
            Matcher::Header(k, v) => write!(f, "Header(`{k}`, `{v}`)"),
            Matcher::HeaderRegexp(k, v) => write!(f, "HeaderRegexp(`{k}`, `{v}`)"),
            Matcher::Query(k, Some(v)) => write!(f, "Query(`{k}`, `{v}`)"),
            Matcher::Query(k, None) => write!(f, "Query(`{k}`)"),
            Matcher::QueryRegexp(k, v) => write!(f, "QueryRegexp(`{k}`, `{v}`)"),
            Matcher::And(v) | Matcher::Or(v) => {
                let op = if matches!(self, Matcher::And(_)) {
                    " && "
                } else {
                    " || "
                };
                write!(f, "(")?;
                for (i, m) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, "{op}")?;
                    }
                    write!(f, "{m}")?;
                }
                write!(f, ")")
            }
            Matcher::Not(m) => write!(f, "!{m}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(
        method: &'a str,
        host: &'a str,
        path: &'a str,
        query: Option<&'a str>,
        headers: &'a HeaderMap,
    ) -> RequestView<'a> {
        RequestView {
            method,
            host,
            path,
            query,
            headers,
        }
    }

    fn m(rule: &str, path: &str) -> bool {
        let h = HeaderMap::new();
        parse(rule)
            .expect(rule)
            .matches(&req("GET", "bloud.local", path, None, &h))
    }

    #[test]
    fn path_prefix_is_a_raw_string_prefix() {
        assert!(m("PathPrefix(`/api`)", "/api"));
        assert!(m("PathPrefix(`/api`)", "/apix"));
        assert!(m("PathPrefix(`/api`)", "/api/v3/x"));
        assert!(!m("PathPrefix(`/api`)", "/ap"));
        assert!(m(
            "PathPrefix(\"/embed/miniflux\")",
            "/embed/miniflux/login"
        ));
    }

    #[test]
    fn path_is_exact() {
        assert!(m("Path(`/embed/miniflux/login`)", "/embed/miniflux/login"));
        assert!(!m(
            "Path(`/embed/miniflux/login`)",
            "/embed/miniflux/login/"
        ));
    }

    #[test]
    fn combinators_and_precedence() {
        let rule = "Path(`/embed/a`) || PathPrefix(`/embed/a/`)";
        assert!(m(rule, "/embed/a"));
        assert!(m(rule, "/embed/a/x"));
        assert!(!m(rule, "/embed/ab"));
        // && binds tighter than ||
        let rule = "PathPrefix(`/x`) || PathPrefix(`/a`) && !PathPrefix(`/a/private`)";
        assert!(m(rule, "/x/a/private"));
        assert!(m(rule, "/a/public"));
        assert!(!m(rule, "/a/private/1"));
        assert!(!m("!(PathPrefix(`/a`) || PathPrefix(`/b`))", "/b"));
        assert!(m("!(PathPrefix(`/a`) || PathPrefix(`/b`))", "/c"));
    }

    #[test]
    fn regex_host_method_header_query() {
        let mut h = HeaderMap::new();
        h.insert("x-app", http::HeaderValue::from_static("radarr"));
        let r = req(
            "post",
            "Bloud.Local",
            "/api/v3/movie/12",
            Some("page=2&q=a%20b"),
            &h,
        );
        let ok = |rule: &str| parse(rule).expect(rule).matches(&r);
        assert!(ok("PathRegexp(`^/api/v[0-9]+/movie/[0-9]+$`)"));
        assert!(!ok("PathRegexp(`^/api/v2`)"));
        assert!(ok("Host(`bloud.local`)"));
        assert!(!ok("Host(`other.local`)"));
        assert!(ok("HostRegexp(`^bloud\\.local$`)"));
        assert!(ok("Method(`POST`)"));
        assert!(!ok("Method(`GET`)"));
        assert!(ok("Header(`X-App`, `radarr`)"));
        assert!(!ok("Header(`X-App`, `sonarr`)"));
        assert!(ok("HeaderRegexp(`X-App`, `^rad`)"));
        assert!(ok("Query(`page`, `2`)"));
        assert!(ok("Query(`q`, `a b`)"));
        assert!(ok("Query(`page`)"));
        assert!(!ok("Query(`page`, `3`)"));
        assert!(ok("QueryRegexp(`page`, `^[0-9]$`)"));
        assert!(ok(
            "Host(`bloud.local`) && Method(`POST`) && PathPrefix(`/api`)"
        ));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = parse("PathPrefix(`/a`) &&").expect_err("dangling");
        assert!(e.message.contains("matcher"), "{e}");
        let e = parse("Pathprefix(`/a`)").expect_err("typo");
        assert!(e.message.contains("Pathprefix"), "{e}");
        assert_eq!(e.position, 0);
        assert!(parse("PathPrefix(`/a`").is_err());
        assert!(parse("PathPrefix(/a)").is_err());
        assert!(parse("PathRegexp(`(`)").is_err());
        assert!(parse("PathPrefix(`a`)").is_err());
        assert!(parse("").is_err());
        assert!(parse("(PathPrefix(`/a`)").is_err());
        assert!(parse("Header(`x`)").is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |open: &str, n: usize| {
            format!(
                "{}PathPrefix(`/a`){}",
                open.repeat(n),
                ")".repeat(if open == "(" { n } else { 0 })
            )
        };
        // The deepest allowed rule still parses and matches.
        for open in ["(", "!"] {
            let ok = nested(open, MAX_NESTING);
            assert!(parse(&ok).is_ok(), "{open} x {MAX_NESTING}");
            let e = parse(&nested(open, MAX_NESTING + 1)).expect_err("one level too deep");
            assert!(e.message.contains("nest more than 32"), "{e}");
            assert_eq!(
                e.position, MAX_NESTING,
                "{open}: points at the first level too deep"
            );
        }
        // What crashed the proxy: 2,000 parentheses in a 4 KB rule. Now a plain error, and
        // its message quotes the part around the problem, not the whole rule.
        let e = parse(&nested("(", 2_000)).expect_err("deep");
        assert!(e.message.contains("nest more than"), "{e}");
        let shown = e.to_string();
        assert!(shown.len() < 300, "{shown}");
        assert!(shown.contains("(4016 characters)"), "{shown}");
        let mixed = format!("{}PathPrefix(`/a`)", "!(".repeat(1_000));
        assert!(parse(&mixed).is_err());
        // Depth is about nesting, not length: many siblings are fine.
        let wide = vec!["(PathPrefix(`/a`))"; 500].join(" || ");
        assert!(parse(&wide).is_ok());
    }

    #[test]
    fn required_prefixes_for_indexing() {
        let p = |r: &str| {
            parse(r)
                .expect(r)
                .required_path_prefix()
                .map(str::to_string)
        };
        assert_eq!(p("PathPrefix(`/embed/a`)").as_deref(), Some("/embed/a"));
        assert_eq!(
            p("Path(`/embed/a`) || PathPrefix(`/embed/a/`)").as_deref(),
            Some("/embed/a")
        );
        assert_eq!(
            p("Host(`x`) && PathPrefix(`/api`)").as_deref(),
            Some("/api")
        );
        assert_eq!(p("Host(`x`)"), None);
        assert_eq!(p("!PathPrefix(`/a`)"), None);
        assert_eq!(p("PathPrefix(`/a`) || Host(`x`)"), None);
        assert_eq!(
            p("PathRegexp(`^/r/app-1/[0-9]+$`)").as_deref(),
            Some("/r/app-1/")
        );
        assert_eq!(
            p("Host(`x`) && PathRegexp(`^/api/v[0-9]+`)").as_deref(),
            Some("/api/v")
        );
        assert_eq!(p("PathRegexp(`/r/[0-9]+`)"), None);
    }

    #[test]
    fn regex_literal_prefix_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("^/r/app-24/[0-9]+$", Some("/r/app-24/")),
            ("^/embed/app$", Some("/embed/app")),
            ("^/api/v[0-9]+/movie", Some("/api/v")),
            ("^/api/(v1|v2)/x", Some("/api/")),
            ("^/a.b", Some("/a")),
            // Escaped punctuation is literal; other escapes end the prefix.
            ("^/static\\.v2/\\d+", Some("/static.v2/")),
            ("^\\/x\\-y", Some("/x-y")),
            ("^/x\\d", Some("/x")),
            ("^/x\\w+", Some("/x")),
            ("^/x/\\<y", Some("/x/")),
            // A quantified character is optional or repeated: not part of the prefix.
            ("^/abc?d", Some("/ab")),
            ("^/abc*", Some("/ab")),
            ("^/abc+", Some("/ab")),
            ("^/abc{2}", Some("/ab")),
            ("^/a\\.?b", Some("/a")),
            ("^/?x", None),
            // Top-level alternation: the second branch need not start with the first's text.
            ("^/a|/b", None),
            ("^/a/(x)|/b", None),
            ("^/a[|]b", None),
            // Not anchored, anchored only per line, or flags before the anchor.
            ("/a/b", None),
            ("(?i)^/Embed/app", None),
            ("(?m)^/a", None),
            ("^(?i)/Embed/app", None),
            ("^(/a)", None),
            ("^.*", None),
            ("^", None),
            ("^\\A/a", None),
            ("^/caf\u{e9}/[a-z]", Some("/caf\u{e9}/")),
        ];
        let paths = [
            "/r/app-24/1",
            "/embed/app",
            "/api/v3/movie",
            "/api/v1/x",
            "/axb",
            "/static.v2/12",
            "/x-y",
            "/x1",
            "/xyz",
            "/x/y",
            "/abd",
            "/abcd",
            "/ab",
            "/abcc",
            "/a.b",
            "/b",
            "/Embed/app",
            "/EMBED/APP",
            "x",
            "/caf\u{e9}/a",
        ];
        for (pattern, want) in cases {
            let got = regex_literal_prefix(pattern);
            assert_eq!(got.as_deref(), *want, "pattern {pattern:?}");
            // The prefix must be sound: every path the regex accepts starts with it.
            let Some(prefix) = &got else { continue };
            let re = Regex::new(pattern).expect(pattern);
            let mut matched = 0;
            for path in paths {
                if re.is_match(path) {
                    matched += 1;
                    assert!(
                        path.starts_with(prefix.as_str()),
                        "{pattern:?} matches {path:?} without prefix {prefix:?}"
                    );
                }
            }
            assert!(matched > 0, "no sample path exercises {pattern:?}");
        }
    }

    #[test]
    fn required_hosts_for_indexing() {
        let h = |r: &str| {
            parse(r)
                .expect(r)
                .required_hosts()
                .map(|v| v.into_iter().map(str::to_string).collect::<Vec<_>>())
        };
        let v = |hs: &[&str]| Some(hs.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(h("Host(`App.Local`)"), v(&["app.local"]));
        assert_eq!(h("Host(`a`) && PathPrefix(`/`)"), v(&["a"]));
        assert_eq!(h("Host(`a`, `b`)"), v(&["a", "b"]));
        assert_eq!(h("Host(`b`) || Host(`a`) || Host(`B`)"), v(&["a", "b"]));
        assert_eq!(
            h("(Host(`a`) || Host(`b`)) && Host(`a`) && Method(`GET`)"),
            v(&["a"])
        );
        assert_eq!(
            h("Host(`a`) && PathPrefix(`/x`) || Host(`b`)"),
            v(&["a", "b"])
        );
        assert_eq!(h("Host(`a`) || PathPrefix(`/x`)"), None);
        assert_eq!(h("!Host(`a`)"), None);
        assert_eq!(h("HostRegexp(`^a$`)"), None);
        assert_eq!(h("PathPrefix(`/`)"), None);
    }

    /// Found by the `rule_parser` fuzz target: the common prefix of `||` branches was cut
    /// inside a multi-byte character, and the panic took down `check`, start-up and reloads.
    #[test]
    fn common_prefix_of_alternatives_ends_on_a_character_boundary() {
        for (rule, prefix) in [
            ("PathPrefix(`/café`) || PathPrefix(`/cafè`)", "/caf"),
            ("Path(`/日本`) || Path(`/日付`)", "/日"),
            ("PathPrefix(`/é`) || PathPrefix(`/e`)", "/"),
        ] {
            let m = parse(rule).expect(rule);
            assert_eq!(m.required_path_prefix(), Some(prefix), "{rule}");
        }
    }

    #[test]
    fn a_table_with_non_ascii_alternatives_builds_and_routes() {
        let yaml = "http:\n  routers:\n    cafe:\n      rule: \"PathPrefix(`/café`) || PathPrefix(`/cafè`)\"\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n";
        let table = crate::RouteTable::from_yaml(&[("r.yml", yaml)]).expect("valid file");
        let headers = HeaderMap::new();
        let hit = |path| {
            table
                .route("web", &req("GET", "h", path, None, &headers))
                .map(|r| r.name.to_string())
        };
        assert_eq!(hit("/cafè/menu").as_deref(), Some("cafe"));
        assert_eq!(hit("/café").as_deref(), Some("cafe"));
        assert_eq!(hit("/cafe"), None);
    }
}

//! The JSON API (`/api/http/routers|middlewares|services`, `/api/tls/certificates`,
//! `/api/reload`) over the live table.

use serde_json::{json, Value};

use crate::service::Service;
use crate::state::ReloadReport;
use crate::table::RouteTable;

/// JSON body for an API path, or `None` when the path is unknown.
pub fn api(table: &RouteTable, reload: &ReloadReport, path: &str) -> Option<String> {
    let path = path.trim_end_matches('/');
    let value = match path {
        "/api/http/routers" => routers(table),
        "/api/http/middlewares" => middlewares(table),
        "/api/http/services" => services(table),
        "/api/tls/certificates" => json!(table.tls.loaded),
        "/api/reload" => json!({
            "generation": table.generation,
            "lastReload": reload,
            "files": table.files,
            "warnings": table.warnings,
        }),
        "/api/overview" => json!({
            "http": {
                "routers": { "total": table.routers.len() },
                "middlewares": { "total": table.middlewares.len() },
                "services": { "total": table.services.len() },
            },
            "generation": table.generation,
            "lastReloadOk": reload.ok,
        }),
        _ => return None,
    };
    Some(value.to_string())
}

/// Warnings recorded for an item of a section (e.g. a shadowed duplicate definition).
fn warnings_for(table: &RouteTable, section: &str, name: &str) -> Vec<String> {
    let needle = format!("http.{section}.{name}:");
    table
        .warnings
        .iter()
        .filter(|w| w.message.starts_with(&needle))
        .map(|w| w.to_string())
        .collect()
}

fn routers(table: &RouteTable) -> Value {
    Value::Array(
        table
            .routers
            .iter()
            .map(|r| {
                let warnings = warnings_for(table, "routers", &r.name);
                json!({
                    "name": format!("{}@{}", r.name, if r.file.is_some() { "file" } else { "internal" }),
                    "rule": r.rule,
                    "priority": r.priority,
                    "entryPoints": r.entry_points,
                    "middlewares": r.middleware_names,
                    "service": r.service_name,
                    "status": "enabled",
                    "provider": if r.file.is_some() { "file" } else { "internal" },
                    "source": r.file.as_ref().map(|f| f.display().to_string()),
                    "line": r.line,
                    "warnings": warnings,
                })
            })
            .collect(),
    )
}

fn middlewares(table: &RouteTable) -> Value {
    Value::Array(
        table
            .middlewares
            .iter()
            .map(|(name, m)| {
                json!({
                    "name": format!("{name}@file"),
                    "type": m.kind.to_ascii_lowercase(),
                    "status": "enabled",
                    "provider": "file",
                    "source": m.file.display().to_string(),
                    "usedBy": m.used_by,
                    "warnings": warnings_for(table, "middlewares", name),
                })
            })
            .collect(),
    )
}

fn services(table: &RouteTable) -> Value {
    Value::Array(
        table
            .services
            .iter()
            .map(|(name, s)| {
                let (servers, pass_host, status): (Vec<Value>, bool, Value) = match &*s.service {
                    Service::LoadBalancer(lb) => (
                        lb.servers
                            .iter()
                            .map(|u| json!({ "url": u.url, "status": if u.is_healthy() { "UP" } else { "DOWN" } }))
                            .collect(),
                        lb.pass_host_header,
                        json!(lb.health_check.as_ref().map(|h| json!({
                            "path": h.path,
                            "interval": format!("{}s", h.interval.as_secs_f64()),
                            "timeout": format!("{}s", h.timeout.as_secs_f64()),
                        }))),
                    ),
                    Service::Internal(_) => (Vec::new(), true, Value::Null),
                };
                json!({
                    "name": format!("{name}@file"),
                    "type": "loadbalancer",
                    "loadBalancer": { "servers": servers, "passHostHeader": pass_host, "healthCheck": status },
                    "status": "enabled",
                    "provider": "file",
                    "source": s.file.as_ref().map(|f| f.display().to_string()),
                    "usedBy": s.used_by,
                    "warnings": warnings_for(table, "services", name),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_items_with_source() {
        let text = "http:\n  routers:\n    r:\n      rule: PathPrefix(`/x`)\n      service: s\n      middlewares: [h]\n  middlewares:\n    h:\n      headers:\n        customResponseHeaders: {X-A: b}\n  services:\n    s:\n      loadBalancer:\n        servers: [{url: 'http://127.0.0.1:1'}]\n";
        let t = RouteTable::from_yaml(&[("apps.yml", text)]).expect("valid");
        let report = ReloadReport::default();
        let r: Value = serde_json::from_str(&api(&t, &report, "/api/http/routers").expect("known"))
            .expect("json");
        assert_eq!(r[0]["name"], "r@file");
        assert_eq!(r[0]["source"], "apps.yml");
        assert_eq!(r[0]["line"], 3);
        let m: Value =
            serde_json::from_str(&api(&t, &report, "/api/http/middlewares/").expect("known"))
                .expect("json");
        assert_eq!(m[0]["usedBy"][0], "r");
        let s: Value =
            serde_json::from_str(&api(&t, &report, "/api/http/services").expect("known"))
                .expect("json");
        assert_eq!(s[0]["loadBalancer"]["servers"][0]["status"], "UP");
        assert!(api(&t, &report, "/api/nope").is_none());
    }
}

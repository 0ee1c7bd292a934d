//! The box-local CA for clients to trust, the HTTPS status, and the HTTP-to-HTTPS redirect
//! switch (docs/agent.md "HTTPS").

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{error, Api};
use crate::tls;

/// How browsers and OSes recognise a CA certificate download.
const CA_CONTENT_TYPE: &str = "application/x-x509-ca-cert";

fn disabled() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "HTTPS is off on this box (agent setting tls.enabled)",
    )
}

fn ca_download(api: &Api, der: bool) -> Response {
    if !api.service.config.tls.enabled {
        return disabled();
    }
    let Some((pem, info)) = tls::ca_certificate(&api.service.config) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the box-local CA is not created yet; try again in a moment",
        );
    };
    let (body, name) = if der {
        (info.der, "bloud-local-ca.cer")
    } else {
        (pem.into_bytes(), "bloud-local-ca.crt")
    };
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CA_CONTENT_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

/// `GET /api/tls/ca.crt`: the CA certificate, PEM. Public: a device fetches it before it can
/// sign in over HTTPS.
pub async fn ca_pem(State(api): State<Api>) -> Response {
    ca_download(&api, false)
}

/// `GET /api/tls/ca.der`: the same certificate, DER (Windows and Android prefer it).
pub async fn ca_der(State(api): State<Api>) -> Response {
    ca_download(&api, true)
}

/// `GET /api/tls/status`: what the trust page shows. Public, like the CA itself.
pub async fn status(State(api): State<Api>, headers: HeaderMap) -> Response {
    let config = &api.service.config;
    let https = tls::request_is_https(&headers);
    if !config.tls.enabled {
        return Json(serde_json::json!({ "enabled": false, "https": https })).into_response();
    }
    let ca = tls::ca_certificate(config).map(|(_, info)| {
        serde_json::json!({
            "name": info.common_name,
            "fingerprintSha256": info.fingerprint(),
            "notAfter": info.not_after.unix_timestamp(),
        })
    });
    let cert = tls::server_certificate(&config.tls.dir).map(|info| {
        serde_json::json!({
            "notAfter": info.not_after.unix_timestamp(),
            "names": info.dns_names,
            "addresses": info.addresses,
        })
    });
    Json(serde_json::json!({
        "enabled": true,
        "https": https,
        "httpsPort": config.tls.https_port,
        "redirect": tls::redirect_enabled(config),
        "ca": ca,
        "certificate": cert,
    }))
    .into_response()
}

#[derive(Deserialize)]
pub struct RedirectBody {
    enabled: bool,
}

/// `PUT /api/tls/redirect` (admin): turns the HTTP-to-HTTPS redirect on or off. Turning it on
/// needs the request itself to come over HTTPS: the admin's browser has shown it trusts the CA,
/// so the redirect does not lock them out of the box.
pub async fn set_redirect(
    State(api): State<Api>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let config = &api.service.config;
    if !config.tls.enabled {
        return disabled();
    }
    let Ok(RedirectBody { enabled }) = serde_json::from_slice(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected {\"enabled\": true|false}",
        );
    };
    if enabled && !tls::request_is_https(&headers) {
        return error(
            StatusCode::CONFLICT,
            "open the shell over https:// first: the redirect can only be turned on from a browser that trusts the box's CA",
        );
    }
    let config = config.clone();
    match tokio::task::spawn_blocking(move || tls::set_redirect(&config, enabled)).await {
        Ok(Ok(())) => Json(serde_json::json!({ "redirect": enabled })).into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "HTTPS redirect");
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

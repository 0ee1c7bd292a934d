//! The web shell (`webDir`) at `/` with SPA fallback, and the 404 page for `/embed/…`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use super::Api;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A request for `/embed/<app>/…` reached the agent: the proxy has no route for that app, so it
/// is not installed (or not yet running). Never the shell: the iframe would nest the shell.
pub async fn embed_not_installed(uri: Uri) -> Response {
    let app = uri
        .path()
        .trim_start_matches("/embed")
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    let name = if app.is_empty() { "this app" } else { app };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>App not installed</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:3rem;color:#333}}</style></head>\
         <body><h1>App not installed</h1><p><strong>{}</strong> is not installed on this Bloud, \
         or it has no route yet. Install it from the app catalog, then reload.</p></body></html>",
        escape(name)
    );
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        Html(body),
    )
        .into_response()
}

/// Static files from `webDir`; unknown paths get `index.html` (client-side routes).
pub async fn shell(State(api): State<Api>, req: Request) -> Response {
    let dir = api.service.config.web_dir.clone();
    let index = dir.join("index.html");
    if !index.is_file() {
        return placeholder(&dir);
    }
    let service = ServeDir::new(&dir)
        .append_index_html_on_directories(true)
        .fallback(ServeFile::new(index));
    match service.oneshot(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serve the shell: {e}"),
        )
            .into_response(),
    }
}

fn placeholder(dir: &std::path::Path) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Bloud</title></head><body>\
         <h1>Bloud agent</h1><p>The agent is running, but the web shell is not built: \
         <code>{}/index.html</code> does not exist. Build it (<code>cd web &amp;&amp; npm ci &amp;&amp; \
         npm run build</code>) or set <code>webDir</code>. The API is at <code>/api</code>.</p>\
         </body></html>",
        escape(&dir.display().to_string())
    );
    Html(body).into_response()
}

//! SSE plumbing shared by the streams: `data: <json>\n\n` frames (upstream's framing, no event
//! names) and a keep-alive comment every 15 s so idle connections are not dropped by anything
//! in between. Streams have no time limit.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;

pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn frame(data: &str) -> Result<Event, Infallible> {
    Ok(Event::default().data(data))
}

pub fn respond<S>(stream: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut resp = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response();
    // Tells buffering reverse proxies (nginx-style) to pass frames through at once.
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

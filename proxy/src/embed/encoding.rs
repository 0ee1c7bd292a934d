//! Which response bodies get rewritten, the header edits that go with it, and the
//! decode → rewrite → re-encode pipeline for compressed bodies.

use std::io::Write;
use std::sync::Mutex;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_ENCODING, CONTENT_LENGTH,
    CONTENT_RANGE, CONTENT_TYPE, ETAG, UPGRADE, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::config::EmbedRewriter;
use super::css::CssStream;
use super::html::HtmlStream;
use super::location::Origins;
use super::EmbedError;

/// Compressed input is decoded in slices of this size, so one slice's expansion (not a whole
/// chunk's) is what is held at a time, and the caps below are checked as it grows.
const DECODE_SLICE: usize = 4 * 1024;
/// Decoded bytes one response may reach at most (a page or stylesheet is far smaller).
pub const MAX_DECODED: u64 = 64 * 1024 * 1024;
/// Past [`RATIO_FLOOR`] decoded bytes, the body may be at most this many times what was
/// received: HTML and CSS compress 5-20:1; gzip's ceiling is about 1000:1, which only crafted
/// bodies reach.
pub const MAX_RATIO: u64 = 100;
pub const RATIO_FLOOR: u64 = 512 * 1024;
/// On-the-fly levels: fast enough to stay far above the rewriter's own cost.
const GZIP_LEVEL: u32 = 5;
const BROTLI_QUALITY: u32 = 4;
const BROTLI_LGWIN: u32 = 22;

/// The kind of body rewriter a response gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Html,
    Css,
}

/// A `Content-Encoding` the pipeline reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    fn parse(token: &str) -> Option<Coding> {
        match token.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Coding::Identity),
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Brotli),
            "zstd" => Some(Coding::Zstd),
            _ => None,
        }
    }

    /// The `Content-Encoding` token, `None` for identity.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some("gzip"),
            Coding::Deflate => Some("deflate"),
            Coding::Brotli => Some("br"),
            Coding::Zstd => Some("zstd"),
        }
    }
}

/// What to do with one response body, decided from its headers in `response_filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPlan {
    pub kind: BodyKind,
    /// The upstream's `Content-Encoding`.
    pub decode: Coding,
    /// What the client gets: the upstream's body was compressed and the client accepts `br`
    /// or `gzip`, otherwise identity. Uncompressed upstream bodies stay uncompressed.
    pub encode: Coding,
    /// `charset` parameter of the `Content-Type`.
    pub charset: Option<String>,
}

impl EmbedRewriter {
    /// Decides whether this response's body is rewritten. `None` for HEAD, 1xx/204/304/206,
    /// upgrades, ranges, attachments, anything but `text/html`/`text/css` (so SSE, media and
    /// `application/octet-stream` always stream untouched), bodies in a `Content-Encoding` the
    /// pipeline cannot read, and charsets that are not ASCII-compatible.
    pub fn plan_body(
        &self,
        method: &Method,
        request_headers: &HeaderMap,
        status: StatusCode,
        response_headers: &HeaderMap,
    ) -> Option<BodyPlan> {
        if method == Method::HEAD || method == Method::CONNECT {
            return None;
        }
        if status.is_informational()
            || matches!(
                status,
                StatusCode::NO_CONTENT
                    | StatusCode::RESET_CONTENT
                    | StatusCode::NOT_MODIFIED
                    | StatusCode::PARTIAL_CONTENT
            )
        {
            return None;
        }
        if request_headers.contains_key(UPGRADE)
            || response_headers.contains_key(UPGRADE)
            || response_headers.contains_key(CONTENT_RANGE)
        {
            return None;
        }
        if header_str(response_headers, &CONTENT_DISPOSITION).is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("attachment")
        }) {
            return None;
        }
        let content_type = header_str(response_headers, &CONTENT_TYPE)?;
        let mut params = content_type.split(';');
        let essence = params.next()?.trim();
        let cfg = self.config();
        let kind = if essence.eq_ignore_ascii_case("text/html")
            && (cfg.html || cfg.inject.is_some() || cfg.shim)
        {
            BodyKind::Html
        } else if essence.eq_ignore_ascii_case("text/css") && cfg.css {
            BodyKind::Css
        } else {
            return None;
        };
        let charset = params.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| v.trim().trim_matches('"').to_owned())
        });
        if let Some(label) = &charset {
            let ascii = encoding_rs::Encoding::for_label_no_replacement(label.as_bytes())
                .is_some_and(|e| e.is_ascii_compatible());
            if !ascii {
                return None;
            }
        }
        let mut decode = Coding::Identity;
        for value in response_headers.get_all(CONTENT_ENCODING) {
            let value = std::str::from_utf8(value.as_bytes()).ok()?;
            for token in value.split(',') {
                match Coding::parse(token)? {
                    Coding::Identity => {}
                    // Stacked codings are legal but unseen in practice: leave them alone.
                    c if decode != Coding::Identity => {
                        tracing::debug!(coding = ?c, "embed: stacked Content-Encoding, body not rewritten");
                        return None;
                    }
                    c => decode = c,
                }
            }
        }
        let encode = if decode == Coding::Identity {
            Coding::Identity
        } else {
            negotiate(request_headers)
        };
        Some(BodyPlan {
            kind,
            decode,
            encode,
            charset,
        })
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &http::header::HeaderName) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
}

/// `br` if the client accepts it, else `gzip`, else identity (`q=0` refuses).
fn negotiate(request_headers: &HeaderMap) -> Coding {
    let mut br = None;
    let mut gzip = None;
    let mut star = None;
    for value in request_headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = std::str::from_utf8(value.as_bytes()) else {
            continue;
        };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("q")
                        .then(|| v.trim().parse::<f32>().ok())?
                })
                .unwrap_or(1.0);
            let accepted = q > 0.0;
            match name.as_str() {
                "br" => br = Some(accepted),
                "gzip" | "x-gzip" => gzip = Some(accepted),
                "*" => star = Some(accepted),
                _ => {}
            }
        }
    }
    if br.or(star) == Some(true) {
        Coding::Brotli
    } else if gzip.or(star) == Some(true) {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}

impl BodyPlan {
    /// Header edits for a rewritten body (call in `response_filter` after [`EmbedRewriter::plan_body`]):
    /// drops `Content-Length` and digests of the original bytes, sets `Content-Encoding` to
    /// [`BodyPlan::encode`], weakens a strong `ETag`, drops `Accept-Ranges`, and adds
    /// `Accept-Encoding` to `Vary` when the encoding was negotiated. `Vary` is otherwise kept.
    pub fn apply_headers(&self, headers: &mut HeaderMap) {
        for name in ["content-md5", "digest", "content-digest", "repr-digest"] {
            headers.remove(name);
        }
        headers.remove(CONTENT_LENGTH);
        headers.remove(ACCEPT_RANGES);
        headers.remove(CONTENT_ENCODING);
        if let Some(token) = self.encode.token() {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(token));
        }
        if let Some(etag) = headers.get(ETAG) {
            let bytes = etag.as_bytes();
            if !bytes.starts_with(b"W/") {
                let mut weak = b"W/".to_vec();
                weak.extend_from_slice(bytes);
                match HeaderValue::from_bytes(&weak) {
                    Ok(v) => {
                        headers.insert(ETAG, v);
                    }
                    Err(_) => {
                        headers.remove(ETAG);
                    }
                }
            }
        }
        if self.decode != Coding::Identity {
            let varies = headers.get_all(VARY).iter().any(|v| {
                std::str::from_utf8(v.as_bytes()).is_ok_and(|s| {
                    s.split(',').any(|t| {
                        t.trim() == "*" || t.trim().eq_ignore_ascii_case("accept-encoding")
                    })
                })
            });
            if !varies {
                headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
            }
        }
    }

    /// Starts the body pipeline for this response, with the route's usual shim tag.
    pub fn start(&self, rw: &EmbedRewriter, origins: &Origins) -> BodyRewriter {
        self.start_with_shim(rw, origins, rw.shim_tag())
    }

    /// Starts the body pipeline; an HTML document gets `shim_tag` (from
    /// [`EmbedRewriter::shim_tag_for`], which fits it to the response's CSP) first.
    pub fn start_with_shim(
        &self,
        rw: &EmbedRewriter,
        origins: &Origins,
        shim_tag: Option<std::sync::Arc<str>>,
    ) -> BodyRewriter {
        let stage = match self.kind {
            BodyKind::Html => Stage::Html(Box::new(
                HtmlStream::new(rw, origins, self.charset.as_deref()).with_shim_tag(shim_tag),
            )),
            BodyKind::Css => Stage::Css(CssStream::new(rw.clone())),
        };
        let encoder = match self.encode {
            Coding::Gzip => Some(Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            ))),
            Coding::Brotli => Some(Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                BROTLI_QUALITY,
                BROTLI_LGWIN,
            )))),
            _ => None,
        };
        let pipeline = Pipeline {
            decoder: Decoder::new(self.decode),
            stage,
            encoder,
            done: false,
            received: 0,
        };
        BodyRewriter {
            pipeline: Mutex::new(pipeline),
        }
    }
}

/// Decode → rewrite → encode for one body. `Send + Sync` for a Pingora CTX.
#[derive(Debug)]
pub struct BodyRewriter {
    pipeline: Mutex<Pipeline>,
}

impl BodyRewriter {
    /// Feeds the next upstream chunk (as received, still encoded); returns bytes for the client.
    /// An error means the upstream body is corrupt: end the response (nothing sensible can
    /// follow bytes that do not decode).
    pub fn write(&mut self, chunk: &[u8]) -> Result<Bytes, EmbedError> {
        self.pipeline
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .write(chunk)
    }

    /// Ends the body: returns the rewriter's held bytes and the encoder's trailer.
    pub fn finish(&mut self) -> Result<Bytes, EmbedError> {
        self.pipeline
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .finish()
    }
}

#[derive(Debug)]
struct Pipeline {
    decoder: Option<Decoder>,
    stage: Stage,
    encoder: Option<Encoder>,
    done: bool,
    /// Encoded bytes fed to the decoder so far.
    received: u64,
}

#[derive(Debug)]
enum Stage {
    Html(Box<HtmlStream>),
    Css(CssStream),
}

impl Stage {
    fn write(&mut self, data: &[u8]) -> Bytes {
        match self {
            Stage::Html(h) => h.write(data),
            Stage::Css(c) => c.write(data),
        }
    }

    fn finish(&mut self) -> Bytes {
        match self {
            Stage::Html(h) => h.finish(),
            Stage::Css(c) => c.finish(),
        }
    }
}

impl Pipeline {
    fn write(&mut self, chunk: &[u8]) -> Result<Bytes, EmbedError> {
        if self.done {
            return Ok(Bytes::new());
        }
        let Some(decoder) = self.decoder.as_mut() else {
            let rewritten = self.stage.write(chunk);
            return self.encode(&rewritten, false);
        };
        let mut out = Vec::new();
        for slice in chunk.chunks(DECODE_SLICE) {
            self.received += slice.len() as u64;
            let decoded = decoder.write(slice, self.received)?;
            if decoded.is_empty() {
                continue;
            }
            let rewritten = self.stage.write(&decoded);
            match self.encoder.as_mut() {
                Some(enc) => enc.write(&rewritten)?,
                None => out.extend_from_slice(&rewritten),
            }
        }
        match self.encoder.as_mut() {
            Some(enc) => enc.flush(),
            None => Ok(Bytes::from(out)),
        }
    }

    fn finish(&mut self) -> Result<Bytes, EmbedError> {
        if self.done {
            return Ok(Bytes::new());
        }
        self.done = true;
        let mut out = Vec::new();
        if let Some(decoder) = self.decoder.take() {
            let decoded = decoder.finish(self.received)?;
            let rewritten = self.stage.write(&decoded);
            self.push(&rewritten, &mut out)?;
        }
        let tail = self.stage.finish();
        self.push(&tail, &mut out)?;
        if let Some(enc) = self.encoder.take() {
            out.extend_from_slice(&enc.finish()?);
        }
        Ok(Bytes::from(out))
    }

    fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), EmbedError> {
        match self.encoder.as_mut() {
            Some(enc) => enc.write(data),
            None => {
                out.extend_from_slice(data);
                Ok(())
            }
        }
    }

    fn encode(&mut self, data: &Bytes, _last: bool) -> Result<Bytes, EmbedError> {
        match self.encoder.as_mut() {
            Some(enc) => {
                enc.write(data)?;
                enc.flush()
            }
            None => Ok(data.clone()),
        }
    }
}

/// Decoded bytes allowed in all after `received` encoded bytes.
fn allowed(received: u64) -> u64 {
    received
        .saturating_mul(MAX_RATIO)
        .clamp(RATIO_FLOOR, MAX_DECODED)
}

/// Where a decoder writes: refuses output past `allowed`, so a bomb stops within one of the
/// decoder's internal buffers (≤ 32 KiB) of the cap instead of after a whole slice.
#[derive(Default)]
struct Sink {
    buf: Vec<u8>,
    total: u64,
    allowed: u64,
    exceeded: bool,
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.total + data.len() as u64 > self.allowed {
            self.exceeded = true;
            return Err(std::io::Error::other("decoded size cap"));
        }
        self.total += data.len() as u64;
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Decoder {
    Gzip(flate2::write::MultiGzDecoder<Sink>),
    /// `deflate` is zlib-wrapped by the RFC, raw in some servers: decided on the first bytes.
    DeflateUndecided(Vec<u8>),
    Zlib(flate2::write::ZlibDecoder<Sink>),
    RawDeflate(flate2::write::DeflateDecoder<Sink>),
    Brotli(Box<brotli::DecompressorWriter<Sink>>),
    Zstd(zstd::stream::write::Decoder<'static, Sink>),
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decoder::Gzip(_) => "Decoder::Gzip",
            Decoder::DeflateUndecided(_) => "Decoder::DeflateUndecided",
            Decoder::Zlib(_) => "Decoder::Zlib",
            Decoder::RawDeflate(_) => "Decoder::RawDeflate",
            Decoder::Brotli(_) => "Decoder::Brotli",
            Decoder::Zstd(_) => "Decoder::Zstd",
        })
    }
}

impl Decoder {
    fn new(coding: Coding) -> Option<Decoder> {
        match coding {
            Coding::Identity => None,
            Coding::Gzip => Some(Decoder::Gzip(flate2::write::MultiGzDecoder::new(
                Sink::default(),
            ))),
            Coding::Deflate => Some(Decoder::DeflateUndecided(Vec::new())),
            Coding::Brotli => Some(Decoder::Brotli(Box::new(brotli::DecompressorWriter::new(
                Sink::default(),
                4096,
            )))),
            // zstd can only fail to allocate its context here.
            Coding::Zstd => zstd::stream::write::Decoder::new(Sink::default())
                .map(Decoder::Zstd)
                .map_err(|e| tracing::error!(error = %e, "embed: zstd decoder unavailable"))
                .ok(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Decoder::Gzip(_) => "gzip",
            Decoder::DeflateUndecided(_) | Decoder::Zlib(_) | Decoder::RawDeflate(_) => "deflate",
            Decoder::Brotli(_) => "br",
            Decoder::Zstd(_) => "zstd",
        }
    }

    fn sink(&mut self) -> Option<&mut Sink> {
        match self {
            Decoder::Gzip(d) => Some(d.get_mut()),
            Decoder::Zlib(d) => Some(d.get_mut()),
            Decoder::RawDeflate(d) => Some(d.get_mut()),
            Decoder::Brotli(d) => Some(d.get_mut()),
            Decoder::Zstd(d) => Some(d.get_mut()),
            Decoder::DeflateUndecided(_) => None,
        }
    }

    /// The cap error when the sink refused output, else the codec's error.
    fn failed(&mut self, source: std::io::Error, received: u64) -> EmbedError {
        let coding = self.name();
        match self.sink() {
            Some(sink) if sink.exceeded => EmbedError::TooLarge {
                coding,
                decoded: sink.allowed,
                received,
                max: MAX_DECODED,
                ratio: MAX_RATIO,
                floor: RATIO_FLOOR,
            },
            _ => EmbedError::Decode { coding, source },
        }
    }

    /// Decodes one slice, `received` encoded bytes in all so far; returns what it produced.
    fn write(&mut self, data: &[u8], received: u64) -> Result<Vec<u8>, EmbedError> {
        if let Some(sink) = self.sink() {
            sink.allowed = allowed(received);
        }
        if let Decoder::DeflateUndecided(head) = self {
            head.extend_from_slice(data);
            if head.len() < 2 {
                return Ok(Vec::new());
            }
            let head = std::mem::take(head);
            // RFC 1950 header: CM = 8 and the check bits make the first two bytes % 31 == 0.
            let zlib =
                head[0] & 0x0f == 8 && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
            *self = if zlib {
                Decoder::Zlib(flate2::write::ZlibDecoder::new(Sink::default()))
            } else {
                Decoder::RawDeflate(flate2::write::DeflateDecoder::new(Sink::default()))
            };
            return self.write(&head, received);
        }
        let result = match self {
            Decoder::Gzip(d) => d.write_all(data).and_then(|_| d.flush()),
            Decoder::Zlib(d) => d.write_all(data).and_then(|_| d.flush()),
            Decoder::RawDeflate(d) => d.write_all(data).and_then(|_| d.flush()),
            Decoder::Brotli(d) => d.write_all(data).and_then(|_| d.flush()),
            Decoder::Zstd(d) => d.write_all(data).and_then(|_| d.flush()),
            Decoder::DeflateUndecided(_) => Ok(()),
        };
        if let Err(e) = result {
            return Err(self.failed(e, received));
        }
        Ok(self
            .sink()
            .map(|s| std::mem::take(&mut s.buf))
            .unwrap_or_default())
    }

    /// Ends the stream; a body cut short is an error.
    fn finish(mut self, received: u64) -> Result<Vec<u8>, EmbedError> {
        let allowed = allowed(received);
        if let Some(sink) = self.sink() {
            sink.allowed = allowed;
        }
        let coding = self.name();
        let cap = |sink: &Sink, source: std::io::Error| {
            if sink.exceeded {
                EmbedError::TooLarge {
                    coding,
                    decoded: sink.allowed,
                    received,
                    max: MAX_DECODED,
                    ratio: MAX_RATIO,
                    floor: RATIO_FLOOR,
                }
            } else {
                EmbedError::Decode { coding, source }
            }
        };
        match self {
            Decoder::Gzip(mut d) => match d.try_finish() {
                Ok(()) => Ok(std::mem::take(&mut d.get_mut().buf)),
                Err(e) => Err(cap(d.get_ref(), e)),
            },
            Decoder::Zlib(mut d) => match d.try_finish() {
                Ok(()) => Ok(std::mem::take(&mut d.get_mut().buf)),
                Err(e) => Err(cap(d.get_ref(), e)),
            },
            Decoder::RawDeflate(mut d) => match d.try_finish() {
                Ok(()) => Ok(std::mem::take(&mut d.get_mut().buf)),
                Err(e) => Err(cap(d.get_ref(), e)),
            },
            Decoder::Brotli(mut d) => match d.close() {
                Ok(()) => Ok(std::mem::take(&mut d.get_mut().buf)),
                Err(e) => Err(cap(d.get_ref(), e)),
            },
            Decoder::Zstd(mut d) => match d.flush() {
                Ok(()) => Ok(std::mem::take(&mut d.get_mut().buf)),
                Err(e) => Err(cap(d.get_ref(), e)),
            },
            Decoder::DeflateUndecided(head) if head.is_empty() => Ok(Vec::new()),
            Decoder::DeflateUndecided(head) => {
                let mut d = flate2::write::DeflateDecoder::new(Sink {
                    allowed,
                    ..Sink::default()
                });
                match d.write_all(&head).and_then(|_| d.try_finish()) {
                    Ok(()) => Ok(std::mem::take(&mut d.get_mut().buf)),
                    Err(e) => Err(cap(d.get_ref(), e)),
                }
            }
        }
    }
}

enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoder::Gzip(_) => "Encoder::Gzip",
            Encoder::Brotli(_) => "Encoder::Brotli",
        })
    }
}

fn encode_err(coding: &'static str) -> impl FnOnce(std::io::Error) -> EmbedError {
    move |source| EmbedError::Encode { coding, source }
}

impl Encoder {
    fn name(&self) -> &'static str {
        match self {
            Encoder::Gzip(_) => "gzip",
            Encoder::Brotli(_) => "br",
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), EmbedError> {
        if data.is_empty() {
            return Ok(());
        }
        let err = encode_err(self.name());
        match self {
            Encoder::Gzip(e) => e.write_all(data).map_err(err),
            Encoder::Brotli(e) => e.write_all(data).map_err(err),
        }
    }

    /// Emits everything written so far (a sync flush), so the client sees output per chunk.
    fn flush(&mut self) -> Result<Bytes, EmbedError> {
        let err = encode_err(self.name());
        let out = match self {
            Encoder::Gzip(e) => {
                e.flush().map_err(err)?;
                e.get_mut()
            }
            Encoder::Brotli(e) => {
                e.flush().map_err(err)?;
                e.get_mut()
            }
        };
        Ok(Bytes::from(std::mem::take(out)))
    }

    fn finish(self) -> Result<Bytes, EmbedError> {
        let err = encode_err(self.name());
        match self {
            Encoder::Gzip(e) => e.finish().map(Bytes::from).map_err(err),
            Encoder::Brotli(e) => Ok(Bytes::from(e.into_inner())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::EmbedConfig;
    use super::*;
    use std::io::Read;

    fn rw() -> EmbedRewriter {
        // The shim's placement has its own tests (shim_tests.rs); these pin the codecs.
        EmbedConfig {
            shim: false,
            ..EmbedConfig::new("/embed/app")
        }
        .compile()
        .expect("valid")
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn plan(
        method: Method,
        status: u16,
        req: &[(&'static str, &'static str)],
        resp: &[(&'static str, &'static str)],
    ) -> Option<BodyPlan> {
        let status = StatusCode::from_u16(status).expect("status");
        rw().plan_body(&method, &headers(req), status, &headers(resp))
    }

    const HTML: &[(&str, &str)] = &[("content-type", "text/html; charset=utf-8")];

    #[test]
    fn only_html_and_css_bodies_are_rewritten() {
        let p = plan(Method::GET, 200, &[], HTML).expect("html");
        assert_eq!(
            (p.kind, p.decode, p.encode),
            (BodyKind::Html, Coding::Identity, Coding::Identity)
        );
        assert_eq!(p.charset.as_deref(), Some("utf-8"));
        let css = plan(Method::GET, 404, &[], &[("content-type", "TEXT/CSS")]).expect("css");
        assert_eq!(css.kind, BodyKind::Css);
        for ct in [
            "text/event-stream",
            "application/octet-stream",
            "video/mp4",
            "audio/mpeg",
            "image/svg+xml",
            "application/javascript",
            "application/json",
            "multipart/x-mixed-replace; boundary=x",
        ] {
            let resp = [("content-type", ct)];
            assert_eq!(plan(Method::GET, 200, &[], &resp), None, "{ct}");
        }
        assert_eq!(plan(Method::GET, 200, &[], &[]), None, "no content-type");
    }

    #[test]
    fn statuses_methods_and_framing_that_are_never_rewritten() {
        assert_eq!(plan(Method::HEAD, 200, &[], HTML), None);
        for status in [101, 103, 204, 206, 304] {
            assert_eq!(plan(Method::GET, status, &[], HTML), None, "{status}");
        }
        assert!(plan(Method::POST, 500, &[], HTML).is_some());
        assert_eq!(
            plan(Method::GET, 200, &[("upgrade", "websocket")], HTML),
            None
        );
        let ranged = [
            ("content-type", "text/html"),
            ("content-range", "bytes 0-9/100"),
        ];
        assert_eq!(plan(Method::GET, 200, &[], &ranged), None);
        let download = [
            ("content-type", "text/html"),
            ("content-disposition", "attachment; filename=a.html"),
        ];
        assert_eq!(plan(Method::GET, 200, &[], &download), None);
        let utf16 = [("content-type", "text/html; charset=utf-16le")];
        assert_eq!(plan(Method::GET, 200, &[], &utf16), None);
        let unknown = [
            ("content-type", "text/html"),
            ("content-encoding", "compress"),
        ];
        assert_eq!(plan(Method::GET, 200, &[], &unknown), None);
        let stacked = [
            ("content-type", "text/html"),
            ("content-encoding", "gzip, br"),
        ];
        assert_eq!(plan(Method::GET, 200, &[], &stacked), None);
    }

    #[test]
    fn switches_follow_the_config() {
        let mut cfg = EmbedConfig::new("/embed/app");
        cfg.html = false;
        cfg.css = false;
        let rw = cfg.compile().expect("valid");
        let shim_only = rw.plan_body(
            &Method::GET,
            &HeaderMap::new(),
            StatusCode::OK,
            &headers(HTML),
        );
        assert!(
            shim_only.is_some(),
            "the shim alone still needs the HTML stream"
        );
        cfg.shim = false;
        let rw = cfg.compile().expect("valid");
        let get = |ct: &'static str| {
            rw.plan_body(
                &Method::GET,
                &HeaderMap::new(),
                StatusCode::OK,
                &headers(&[("content-type", ct)]),
            )
        };
        assert_eq!(get("text/html"), None);
        assert_eq!(get("text/css"), None);
        cfg.inject = Some(super::super::config::InjectConfig {
            config: None,
            src: Some("/x.js".into()),
            script: None,
        });
        let rw = cfg.compile().expect("valid");
        let p = rw.plan_body(
            &Method::GET,
            &HeaderMap::new(),
            StatusCode::OK,
            &headers(HTML),
        );
        assert!(p.is_some(), "inject alone still needs the HTML stream");
    }

    #[test]
    fn encoding_negotiation() {
        let gz = [("content-type", "text/html"), ("content-encoding", "gzip")];
        let cases: &[(&str, Coding)] = &[
            ("gzip, deflate, br, zstd", Coding::Brotli),
            ("gzip", Coding::Gzip),
            ("br;q=0, gzip;q=0.5", Coding::Gzip),
            ("identity", Coding::Identity),
            ("*", Coding::Brotli),
            ("*;q=0", Coding::Identity),
            ("", Coding::Identity),
        ];
        for (accept, want) in cases {
            let p = plan(Method::GET, 200, &[("accept-encoding", accept)], &gz).expect("plan");
            assert_eq!(p.decode, Coding::Gzip);
            assert_eq!(p.encode, *want, "Accept-Encoding: {accept}");
        }
        let plain = plan(Method::GET, 200, &[("accept-encoding", "br")], HTML).expect("plan");
        assert_eq!(
            plain.encode,
            Coding::Identity,
            "identity upstream bodies are not compressed"
        );
    }

    #[test]
    fn header_edits() {
        let p = BodyPlan {
            kind: BodyKind::Html,
            decode: Coding::Gzip,
            encode: Coding::Brotli,
            charset: None,
        };
        let mut h = headers(&[
            ("content-type", "text/html"),
            ("content-length", "123"),
            ("content-encoding", "gzip"),
            ("content-md5", "abc"),
            ("etag", "\"v1\""),
            ("accept-ranges", "bytes"),
            ("vary", "Cookie"),
            ("cache-control", "no-cache"),
        ]);
        p.apply_headers(&mut h);
        assert!(!h.contains_key(CONTENT_LENGTH) && !h.contains_key("content-md5"));
        assert!(!h.contains_key(ACCEPT_RANGES));
        assert_eq!(h[CONTENT_ENCODING], "br");
        assert_eq!(h[ETAG], "W/\"v1\"");
        let vary: Vec<_> = h.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Cookie", "Accept-Encoding"]);
        assert_eq!(h["cache-control"], "no-cache");

        let identity = BodyPlan {
            encode: Coding::Identity,
            decode: Coding::Identity,
            ..p
        };
        let mut h = headers(&[
            ("etag", "W/\"weak\""),
            ("vary", "accept-encoding"),
            ("content-encoding", "identity"),
        ]);
        identity.apply_headers(&mut h);
        assert_eq!(h[ETAG], "W/\"weak\"");
        assert!(!h.contains_key(CONTENT_ENCODING));
        assert_eq!(h.get_all(VARY).iter().count(), 1);
    }

    const PAGE: &str = "<!doctype html><html><head><link rel=stylesheet href=\"/app.css\"></head>\
        <body><img src=\"/logo.png\"><a href=\"https://other.example/\">x</a></body></html>";
    const PAGE_OUT: &str = "<!doctype html><html><head><link rel=stylesheet href=\"/embed/app/app.css\"></head>\
        <body><img src=\"/embed/app/logo.png\"><a href=\"https://other.example/\">x</a></body></html>";

    fn run(plan: &BodyPlan, body: &[u8], chunk: usize) -> Vec<u8> {
        let mut b = plan.start(&rw(), &Origins::default());
        let mut out = Vec::new();
        for piece in body.chunks(chunk.max(1)) {
            out.extend_from_slice(&b.write(piece).expect("write"));
        }
        out.extend_from_slice(&b.finish().expect("finish"));
        out
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .expect("valid gzip output");
        out
    }

    fn brotli_encode(data: &[u8]) -> Vec<u8> {
        let mut w = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
        w.write_all(data).expect("br");
        w.into_inner()
    }

    fn unbrotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        brotli::Decompressor::new(data, 4096)
            .read_to_end(&mut out)
            .expect("valid br output");
        out
    }

    fn plan_for(decode: Coding, encode: Coding) -> BodyPlan {
        BodyPlan {
            kind: BodyKind::Html,
            decode,
            encode,
            charset: None,
        }
    }

    #[test]
    fn gzip_round_trip() {
        let p = plan_for(Coding::Gzip, Coding::Gzip);
        for chunk in [1, 7, 100, 1 << 20] {
            let out = run(&p, &gzip(PAGE.as_bytes()), chunk);
            assert_eq!(
                String::from_utf8_lossy(&gunzip(&out)),
                PAGE_OUT,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn brotli_round_trip() {
        let p = plan_for(Coding::Brotli, Coding::Brotli);
        for chunk in [1, 13, 1 << 20] {
            let out = run(&p, &brotli_encode(PAGE.as_bytes()), chunk);
            assert_eq!(
                String::from_utf8_lossy(&unbrotli(&out)),
                PAGE_OUT,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn cross_codings_and_identity_output() {
        let zstd_body = zstd::encode_all(PAGE.as_bytes(), 3).expect("zstd");
        let out = run(&plan_for(Coding::Zstd, Coding::Gzip), &zstd_body, 5);
        assert_eq!(String::from_utf8_lossy(&gunzip(&out)), PAGE_OUT);

        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(PAGE.as_bytes()).expect("zlib");
        let zlib_body = z.finish().expect("zlib");
        let out = run(&plan_for(Coding::Deflate, Coding::Identity), &zlib_body, 1);
        assert_eq!(
            String::from_utf8_lossy(&out),
            PAGE_OUT,
            "zlib-wrapped deflate"
        );

        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(PAGE.as_bytes()).expect("deflate");
        let raw_body = d.finish().expect("deflate");
        let out = run(&plan_for(Coding::Deflate, Coding::Brotli), &raw_body, 3);
        assert_eq!(
            String::from_utf8_lossy(&unbrotli(&out)),
            PAGE_OUT,
            "raw deflate"
        );

        let out = run(
            &plan_for(Coding::Identity, Coding::Identity),
            PAGE.as_bytes(),
            2,
        );
        assert_eq!(String::from_utf8_lossy(&out), PAGE_OUT);
    }

    #[test]
    fn css_through_gzip() {
        let p = BodyPlan {
            kind: BodyKind::Css,
            ..plan_for(Coding::Gzip, Coding::Gzip)
        };
        let out = run(&p, &gzip(b"a{b:url(/x.png)}"), 3);
        assert_eq!(gunzip(&out), b"a{b:url(/embed/app/x.png)}");
    }

    #[test]
    fn output_streams_per_chunk() {
        let p = plan_for(Coding::Gzip, Coding::Gzip);
        let body = gzip(PAGE.repeat(50).as_bytes());
        let mut b = p.start(&rw(), &Origins::default());
        let first = b.write(&body[..body.len() / 2]).expect("write");
        assert!(
            !first.is_empty(),
            "half the body must produce output before the end"
        );
    }

    #[test]
    fn corrupt_upstream_body_is_an_error() {
        let p = plan_for(Coding::Gzip, Coding::Identity);
        let mut b = p.start(&rw(), &Origins::default());
        let err = b.write(b"this is not gzip at all").expect_err("corrupt");
        assert!(err.to_string().contains("gzip"), "{err}");
        let mut body = gzip(PAGE.as_bytes());
        body.truncate(body.len() - 8);
        let mut b = p.start(&rw(), &Origins::default());
        let mut result = b.write(&body).map(|_| ());
        if result.is_ok() {
            result = b.finish().map(|_| ());
        }
        assert!(result.is_err(), "a truncated gzip body must be reported");
    }

    /// 8 MiB of spaces in every coding (a few KiB each): past the ratio cap, cut with
    /// `TooLarge`, and no single write hands back more than the cap's floor plus one slice.
    #[test]
    fn decompression_bombs_are_cut_in_every_coding() {
        let plain = vec![b' '; 8 << 20];
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        zlib.write_all(&plain).expect("zlib");
        let mut zstd_body = Vec::new();
        zstd::stream::copy_encode(&plain[..], &mut zstd_body, 19).expect("zstd");
        let cases = [
            (Coding::Gzip, gzip(&plain)),
            (Coding::Deflate, zlib.finish().expect("zlib")),
            (Coding::Brotli, brotli_encode(&plain)),
            (Coding::Zstd, zstd_body),
        ];
        for (coding, body) in cases {
            assert!(body.len() < 64 * 1024, "{coding:?}: {} bytes", body.len());
            let mut b = plan_for(coding, Coding::Identity).start(&rw(), &Origins::default());
            let mut passed = 0usize;
            let mut err = None;
            for piece in body.chunks(16 * 1024) {
                match b.write(piece) {
                    Ok(out) => {
                        assert!(out.len() as u64 <= RATIO_FLOOR, "{coding:?}: {}", out.len());
                        passed += out.len();
                    }
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            let err = match err {
                Some(e) => e,
                None => b.finish().expect_err("the bomb must be cut"),
            };
            assert!(
                matches!(err, EmbedError::TooLarge { .. }),
                "{coding:?}: {err}"
            );
            assert!(
                passed as u64 <= RATIO_FLOOR,
                "{coding:?}: {passed} bytes passed"
            );
        }
    }

    /// A large page that compresses as pages do passes whole.
    #[test]
    fn a_large_ordinary_page_is_not_cut() {
        let mut page = String::new();
        let mut i = 0u64;
        while page.len() < 4 << 20 {
            page.push_str(&format!(
                "<p id=\"p{i}\">item {} of the list</p>\n",
                i * 7919 % 100_003
            ));
            i += 1;
        }
        let out = run(
            &plan_for(Coding::Gzip, Coding::Identity),
            &gzip(page.as_bytes()),
            16 * 1024,
        );
        assert_eq!(out.len(), page.len());
    }

    #[test]
    fn pipeline_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<BodyRewriter>();
        check::<HtmlStream>();
        check::<CssStream>();
        check::<EmbedRewriter>();
    }
}

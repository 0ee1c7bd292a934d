//! Bare Pingora pass-through: the baseline that bloud-proxy is compared against in
//! `benches/load/run`. One thread, one static upstream, no routing table, no middlewares.
//! It strips one fixed path prefix only so that the harness origin (which answers 200 solely
//! for the stripped path) accepts its requests; that is a byte-slice compare and one copy.
//!
//! Usage: passthrough LISTEN_ADDR UPSTREAM_ADDR [STRIP_PREFIX]

use anyhow::{bail, Context};
use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

struct Passthrough {
    upstream: String,
    strip: Vec<u8>,
}

#[async_trait]
impl ProxyHttp for Passthrough {
    type CTX = ();
    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }

    async fn upstream_request_filter(
        &self,
        _s: &mut Session,
        req: &mut RequestHeader,
        _c: &mut (),
    ) -> Result<()> {
        if self.strip.is_empty() {
            return Ok(());
        }
        let rest = req
            .raw_path()
            .strip_prefix(self.strip.as_slice())
            .map(<[u8]>::to_vec);
        if let Some(rest) = rest {
            let path = if rest.is_empty() { b"/".to_vec() } else { rest };
            req.set_raw_path(&path)?;
            req.insert_header("X-Forwarded-Prefix", self.strip.as_slice())?;
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, upstream) = match args.as_slice() {
        [l, u, ..] => (l.clone(), u.clone()),
        _ => bail!("usage: passthrough LISTEN_ADDR UPSTREAM_ADDR [STRIP_PREFIX]"),
    };
    upstream
        .parse::<std::net::SocketAddr>()
        .with_context(|| format!("UPSTREAM_ADDR {upstream:?} must be ip:port"))?;
    let strip = args.get(2).cloned().unwrap_or_default().into_bytes();

    // Same knobs as the measured anchor rig: one thread, no work stealing.
    let conf = ServerConf {
        threads: 1,
        work_stealing: false,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut svc = http_proxy_service(&server.configuration, Passthrough { upstream, strip });
    svc.add_tcp(&listen);
    server.add_service(svc);
    server.run_forever()
}

//! Process wiring: the control thread (signals, reloads, file watching, health checks), the
//! Pingora server with one proxy service per entry point, the pid file and shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::access_log::AccessLog;
use crate::config::static_config::{parse_listen_address, StaticConfig};
use crate::edge::Trust;
use crate::limits::{EntryLimits, Gate};
use crate::metrics::Metrics;
use crate::proxy::EntryProxy;
use crate::reload::{self, Reloader, Trigger};
use crate::state::{Shared, UpstreamTimeouts};
use crate::table::RouteTable;

/// Runtime for everything that is not request handling. Started first thing in `main`, so that
/// SIGHUP is handled (never fatal) from the very beginning.
pub struct Control {
    pub handle: tokio::runtime::Handle,
    pub triggers_tx: mpsc::UnboundedSender<Trigger>,
    triggers_rx: Option<mpsc::UnboundedReceiver<Trigger>>,
}

impl Control {
    pub fn start() -> anyhow::Result<Control> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) =
            std::sync::mpsc::channel::<Result<tokio::runtime::Handle, String>>();
        let hup_tx = tx.clone();
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ =
                            ready_tx.send(Err(format!("cannot start the control runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut hup = match signal(SignalKind::hangup()) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx
                                .send(Err(format!("cannot install the SIGHUP handler: {e}")));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(tokio::runtime::Handle::current()));
                    while hup.recv().await.is_some() {
                        tracing::info!("SIGHUP received: reloading routes");
                        let _ = hup_tx.send(Trigger::Signal);
                    }
                });
            })
            .context("cannot start the control thread")?;
        let handle = ready_rx
            .recv()
            .map_err(|_| anyhow!("the control thread exited during start-up"))?
            .map_err(|e| anyhow!(e))?;
        Ok(Control {
            handle,
            triggers_tx: tx,
            triggers_rx: Some(rx),
        })
    }
}

/// Sets up logging from `log.level` (RUST_LOG wins when set).
pub fn init_logging(cfg: &StaticConfig) {
    let level = cfg
        .log
        .as_ref()
        .and_then(|l| l.level.as_deref())
        .and_then(crate::config::static_config::log_level_filter)
        .unwrap_or("info");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},pingora_core=warn,pingora_proxy=warn,pingora=warn"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs the proxy until SIGTERM/SIGINT. `control` must have been started first.
pub fn run(config_path: &Path, mut control: Control) -> anyhow::Result<()> {
    let (cfg, warnings) = StaticConfig::load(config_path).map_err(|p| anyhow!("{p}"))?;
    init_logging(&cfg);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    // Pingora binds inside a service task and, when the port is taken, only retries and panics
    // there while the process lives on serving nothing. Binding each address once here first
    // turns the common failures (port in use, no permission) into a clear exit.
    let mut listeners = Vec::with_capacity(cfg.entry_points.len());
    for (name, ep) in &cfg.entry_points {
        let addr = parse_listen_address(&ep.address)
            .map_err(|e| anyhow!("entryPoints.{name}.address: {e}"))?;
        check_bindable(name, addr)?;
        listeners.push(addr);
    }

    let cfg = Arc::new(cfg);
    let metrics = Arc::new(Metrics::default());

    let access_log = match &cfg.access_log {
        Some(a) => {
            Some(AccessLog::start(a, metrics.clone()).context("cannot open the access log")?)
        }
        None => None,
    };
    let timeouts = upstream_timeouts(&cfg);

    // Initial table: a broken route file must not keep the proxy down; serve 404s and log.
    let opts = reload::build_options(&cfg, metrics.clone(), 1);
    let (table, initial_ok, problems) = match reload::load_table(&cfg, &opts) {
        Ok(t) => {
            let w = t.warnings.clone();
            (t, true, w)
        }
        Err(problems) => (RouteTable::empty(&opts), false, problems.0),
    };
    for p in &problems {
        if p.is_error() {
            tracing::error!(file = %p.file.display(), "configuration rejected, starting without routes: {p}");
        } else {
            tracing::warn!(file = %p.file.display(), "{p}");
        }
    }
    metrics.record_reload(initial_ok, 1);
    crate::health_check::spawn_for_table(&control.handle, &table);
    let shared = Arc::new(Shared::new(table, metrics.clone(), access_log, timeouts));
    shared.set_reload_report(crate::state::ReloadReport {
        ok: initial_ok,
        at: 0,
        generation: 1,
        problems,
    });

    let reloader = Arc::new(Reloader {
        config: cfg.clone(),
        shared: shared.clone(),
        runtime: control.handle.clone(),
    });
    if let Some(rx) = control.triggers_rx.take() {
        control.handle.spawn(reloader.run(rx));
    }
    let _watcher = match (cfg.watch(), cfg.dynamic_source()) {
        (true, Some(source)) => match reload::watch(&source, control.triggers_tx.clone()) {
            Ok(w) => Some(w),
            Err(p) => {
                tracing::warn!("{p}; reload with SIGHUP instead");
                None
            }
        },
        _ => None,
    };

    let pid_file = cfg.pid_file.clone();
    if let Some(p) = &pid_file {
        write_pid_file(p)?;
    }

    let grace = cfg.grace_period();
    let tmp = std::env::temp_dir();
    let pid = std::process::id();
    let conf = ServerConf {
        threads: cfg.threads(),
        // One current-thread runtime per worker thread: no cross-thread task stealing or
        // wake-ups on the request path (measured in docs/performance.md).
        work_stealing: false,
        grace_period_seconds: Some(grace.as_secs()),
        graceful_shutdown_timeout_seconds: Some(2),
        // Private paths: Pingora's defaults in /tmp would collide between instances.
        pid_file: tmp
            .join(format!("bloud-proxy-{pid}.pingora.pid"))
            .to_string_lossy()
            .into_owned(),
        upgrade_sock: tmp
            .join(format!("bloud-proxy-{pid}.upgrade.sock"))
            .to_string_lossy()
            .into_owned(),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let fd_share = crate::limits::fd_share(&cfg);
    for ((name, ep), addr) in cfg.entry_points.iter().zip(listeners) {
        let trust = Trust::new(ep.forwarded_headers.as_ref())
            .map_err(|e| anyhow!("entryPoints.{name}: {e}"))?;
        let limits = EntryLimits::resolve(ep, fd_share);
        let proxy = EntryProxy {
            shared: shared.clone(),
            entry_point: name.as_str().into(),
            trust,
            limits,
            tls: ep.is_tls(),
        };
        let mut http = pingora::proxy::HttpProxy::new(proxy, server.configuration.clone());
        http.handle_init_modules();
        if ep.is_tls() {
            crate::tls::h2::configure(&mut http, &limits);
        }
        let gate = Gate::new(http, limits, timeouts.response_header, metrics.clone());
        let mut service =
            pingora::services::listening::Service::new(format!("entryPoint {name}"), gate);
        if ep.is_tls() {
            service.add_tls_with_settings(
                &addr.to_string(),
                None,
                crate::tls::h2::listener_settings(shared.clone())
                    .map_err(|e| anyhow!("entryPoints.{name}.http.tls: {e}"))?,
            );
        } else {
            service.add_tcp(&addr.to_string());
        }
        server.add_service(service);
        tracing::info!(
            entry_point = %name,
            %addr,
            tls = ep.is_tls(),
            max_connections = limits.max_connections,
            "listening"
        );
    }

    server.run(RunArgs {
        shutdown_signal: Box::new(Signals {
            shared: shared.clone(),
            grace,
            pid_file: pid_file.clone(),
        }),
    });
    if let Some(p) = &pid_file {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// Binds `addr` and lets it go again, so a port that cannot be had fails start-up with advice.
fn check_bindable(entry_point: &str, addr: SocketAddr) -> anyhow::Result<()> {
    let err = match std::net::TcpListener::bind(addr) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let advice = match err.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "another program listens there (an old Traefik or bloud-proxy?); \
             `ss -ltnp 'sport = :{}'` names it",
            addr.port()
        ),
        std::io::ErrorKind::PermissionDenied => "ports below 1024 need CAP_NET_BIND_SERVICE \
             (the NixOS module grants it) or root; or use a port above 1023"
            .to_string(),
        std::io::ErrorKind::AddrNotAvailable => {
            "no network interface has this address; use \":PORT\" for all of them".to_string()
        }
        _ => "check the address in the static configuration".to_string(),
    };
    Err(anyhow!(
        "entryPoints.{entry_point}: cannot listen on {addr}: {err}; {advice}"
    ))
}

fn upstream_timeouts(cfg: &StaticConfig) -> UpstreamTimeouts {
    let mut t = UpstreamTimeouts::default();
    if let Some(ft) = cfg
        .servers_transport
        .as_ref()
        .and_then(|s| s.forwarding_timeouts.as_ref())
    {
        if let Some(d) = ft.dial_timeout {
            t.dial = d.0;
        }
        if let Some(d) = ft.response_header_timeout {
            t.response_header = (!d.0.is_zero()).then_some(d.0);
        }
        if let Some(d) = ft.idle_conn_timeout {
            t.idle = (!d.0.is_zero()).then_some(d.0);
        }
    }
    t
}

fn write_pid_file(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("pidFile: cannot create directory {}", dir.display()))?;
    }
    std::fs::write(path, format!("{}\n", std::process::id()))
        .with_context(|| format!("pidFile: cannot write {}", path.display()))
}

/// SIGTERM drains and exits as soon as no request is in flight (at the latest after the grace
/// period; Pingora itself would always sleep the whole grace period). SIGINT exits at once.
struct Signals {
    shared: Arc<Shared>,
    grace: Duration,
    pid_file: Option<PathBuf>,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut term), Ok(mut int), Ok(mut quit)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::quit()),
        ) else {
            tracing::error!("cannot install shutdown signal handlers; waiting forever");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {
                tracing::info!(grace = ?self.grace, "SIGTERM received: draining");
                self.shared.shutting_down.store(true, Ordering::Relaxed);
                start_drain_watch(self.shared.clone(), self.grace, self.pid_file.clone());
                ShutdownSignal::GracefulTerminate
            }
            _ = int.recv() => {
                tracing::info!("SIGINT received: exiting");
                ShutdownSignal::FastShutdown
            }
            _ = quit.recv() => {
                tracing::info!("SIGQUIT received: handing listeners over and draining");
                self.shared.shutting_down.store(true, Ordering::Relaxed);
                ShutdownSignal::GracefulUpgrade
            }
        }
    }
}

fn start_drain_watch(shared: Arc<Shared>, grace: Duration, pid_file: Option<PathBuf>) {
    let spawned = std::thread::Builder::new()
        .name("drain".into())
        .spawn(move || {
            let start = Instant::now();
            // Let the listeners close before counting.
            std::thread::sleep(Duration::from_millis(200));
            while start.elapsed() < grace {
                if shared.metrics.open_connections.get() <= 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            tracing::info!(after = ?start.elapsed(), "drained: exiting");
            // Let the access-log writer catch up.
            std::thread::sleep(Duration::from_millis(50));
            if let Some(p) = &pid_file {
                let _ = std::fs::remove_file(p);
            }
            std::process::exit(0);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the drain watcher; waiting for the full grace period");
    }
}

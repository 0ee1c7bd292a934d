//! Starting the service: open storage, recover from an interrupted run, start the queue and the
//! health monitor, write the routes, then serve the API on `listen` (sessions only) and on the
//! CLI's Unix socket `socket` (peer credentials only).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::middleware;
use axum::{Extension, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, Api};
use crate::config::Config;
use crate::csrf;
use crate::health;
use crate::login_limit::LoginGuard;
use crate::nixgen;
use crate::orchestrator::Orchestrator;
use crate::queue::{OpKind, Queue, QueueError};
use crate::service::{status, Service, ServiceError};
use crate::socket::{self, Peer, Policy};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(
        "cannot listen on {addr}: {source}; is another bloud-agent running? (setting `listen`)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Socket(#[from] socket::SocketError),
}

/// A running agent.
pub struct Running {
    pub addr: SocketAddr,
    /// The CLI's Unix socket.
    pub socket: PathBuf,
    pub service: Arc<Service>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops accepting, gives open requests (not streams) a moment, then ends.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Runs until the server task ends (it only ends through `shutdown`).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Opens everything and starts serving.
pub async fn start(config: Config) -> Result<Running, ServerError> {
    let listen = config.listen;
    // Listeners first: a second agent on the same address or socket stops here, before it
    // recovers the queue or rewrites the routes of the one already running.
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: listen,
        source,
    })?;
    // The address actually bound (`listen` may ask for port 0): generated routes point at it.
    let mut config = config;
    config.listen = addr;
    let policy = Arc::new(Policy::new(&config.admin_group));
    let socket_path = config.socket.clone();
    let unix = socket::bind(&socket_path, &policy).await?;
    let service = match Service::open(config) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            let _ = std::fs::remove_file(&socket_path);
            return Err(e.into());
        }
    };
    let queue = Queue::start(
        Arc::new(Orchestrator {
            service: service.clone(),
        }),
        service.db.clone(),
        service.config.batch_window,
    );
    recover(&service, &queue)?;
    if let Err(e) = service.regenerate_routes() {
        tracing::warn!(error = %e, "routes not written at startup");
    }
    tokio::spawn(health::monitor(service.clone(), health::MONITOR_INTERVAL));
    if service.config.tls.enabled {
        // The first check runs before the agent answers, so the CA can be downloaded at once.
        let config = Arc::new(service.config.clone());
        let first = config.clone();
        let _ = tokio::task::spawn_blocking(move || crate::tls::check_once(&first)).await;
        tokio::spawn(async move {
            tokio::time::sleep(crate::tls::CHECK_INTERVAL).await;
            crate::tls::monitor(config, crate::tls::CHECK_INTERVAL).await
        });
    }

    let api = Api {
        service: service.clone(),
        queue,
    };
    let login = LoginGuard::new(service.config.login);
    let origins = Arc::new(csrf::Origins::new(&service.config.public_url));
    // The same API on both listeners; only the socket's gate can make a request `LocalAdmin`.
    let common = |router: Router| {
        router
            .layer(Extension(login.clone()))
            .layer(middleware::from_fn_with_state(origins.clone(), csrf::guard))
    };
    let tcp_app = common(api::router(api.clone()));
    let socket_app =
        common(api::router(api)).layer(middleware::from_fn_with_state(policy, socket::gate));

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let tcp = axum::serve(
        listener,
        tcp_app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopped(stop_rx.clone()));
    let uds = axum::serve(
        unix,
        socket_app.into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(stopped(stop_rx));
    let task = tokio::spawn(async move {
        let (tcp, uds) = tokio::join!(async { tcp.await }, async { uds.await });
        for (which, result) in [("tcp", tcp), ("socket", uds)] {
            if let Err(e) = result {
                tracing::error!(error = %e, listener = which, "server stopped");
            }
        }
    });
    tracing::info!(%addr, socket = %socket_path.display(), "bloud-agent listening");
    Ok(Running {
        addr,
        socket: socket_path,
        service,
        stop: stop_tx,
        task,
    })
}

/// Makes the stored state truthful after a restart (or a crash):
/// - rebuilds that were running are `interrupted`;
/// - an operation that was running is reported failed: its apps go from `installing` to
///   `failed` (and are disabled in the Nix state, so the next rebuild does not deploy them
///   half-way), from `uninstalling` to `error`;
/// - queued operations that had not started run again;
/// - `starting` apps are health-checked again.
fn recover(service: &Arc<Service>, queue: &Queue) -> Result<(), ServerError> {
    let interrupted_rebuilds = service.db.mark_interrupted_rebuilds()?;
    let recovered = queue.recover()?;
    if interrupted_rebuilds > 0 || !recovered.interrupted.is_empty() {
        tracing::warn!(
            rebuilds = interrupted_rebuilds,
            operations = recovered.interrupted.len(),
            "the previous run stopped during an operation; marking it failed"
        );
    }
    for op in &recovered.interrupted {
        tracing::warn!(app = %op.app, kind = ?op.kind, "operation interrupted by a restart");
        if let OpKind::Uninstall { .. } = op.kind {
            service.set_status(&op.app, status::ERROR);
        }
    }
    let catalog = service.catalog();
    let nix_dir = service.nix_dir();
    let mut state = nixgen::load_state(&nix_dir).ok();
    let mut state_changed = false;
    for app in service.db.list_apps()? {
        match app.status.as_str() {
            status::INSTALLING => {
                service.set_status(&app.name, status::FAILED);
                if let Some(state) = state.as_mut() {
                    state_changed |= state.apply_uninstall(&catalog, &app.name);
                }
            }
            status::UNINSTALLING => service.set_status(&app.name, status::ERROR),
            status::STARTING => health::spawn_wait_healthy(service.clone(), app.name.clone()),
            _ => {}
        }
    }
    if let (true, Some(state)) = (state_changed, state) {
        if let Err(e) = nixgen::write_atomic(&nix_dir, &state) {
            tracing::error!(error = %e, "cannot disable interrupted apps in apps.nix");
        }
    }
    if !recovered.pending.is_empty() {
        tracing::info!(
            operations = recovered.pending.len(),
            "queued operations resumed"
        );
    }
    queue.resume(recovered.pending)?;
    Ok(())
}

//! `bloud-agent`: see `bloud-agent --help`.

use std::process::ExitCode;

use bloud_agent::cli::{self, Command};
use bloud_agent::config::Config;
use tracing_subscriber::EnvFilter;

fn init_logging() {
    let filter = EnvFilter::try_from_env("BLOUD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() -> ExitCode {
    let cli = cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Serve { config } => serve(config),
        Command::Install {
            app,
            choices,
            target,
        } => operation(&target, &app, true, choices.into_iter().collect(), false),
        Command::Uninstall {
            app,
            clear_data,
            target,
        } => operation(&target, &app, false, Default::default(), clear_data),
        Command::DemoApp { port, name, .. } => runtime()
            .and_then(|rt| rt.block_on(bloud_agent::demo::demo_app(port, name)))
            .map(|_| true),
        Command::DemoRebuild { rollback } => bloud_agent::demo::demo_rebuild(rollback),
        Command::DemoStop { run_dir } => bloud_agent::demo::demo_stop(&run_dir),
        Command::AppsNix { catalog, list } => apps_nix(&catalog, &list),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bloud-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn apps_nix(catalog: &std::path::Path, list: &std::path::Path) -> anyhow::Result<bool> {
    use bloud_agent::apps_list;
    let load = bloud_agent::catalog::Catalog::load(catalog);
    if !load.errors.is_empty() {
        anyhow::bail!("the catalog {} has errors; refusing", catalog.display());
    }
    let names = match apps_list::read_no_follow(list)? {
        Some(bytes) => apps_list::parse(&bytes, &load.catalog)?,
        None => {
            eprintln!("apps-nix: no app list; the module enables no app");
            Vec::new()
        }
    };
    // Names printed here come from the catalog (validated), not from the file as such.
    eprintln!(
        "apps-nix: enabling {} app(s): {}",
        names.len(),
        names.join(" ")
    );
    print!("{}", apps_list::generate(&load.catalog, &names));
    Ok(true)
}

fn serve(config: Option<std::path::PathBuf>) -> anyhow::Result<bool> {
    let config = Config::load(config.as_deref())?;
    runtime()?.block_on(async move {
        // Handlers first: once the agent answers, a SIGTERM must be a clean stop, not the
        // default action (a supervisor or test that stops it right after /api/health saw it die).
        let stop = shutdown_signal()?;
        let running = bloud_agent::server::start(config).await?;
        stop.await;
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok(true)
    })
}

/// Registers SIGTERM and SIGINT handlers now; the returned future ends at the first signal.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use anyhow::Context;
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

fn operation(
    target: &cli::Target,
    app: &str,
    install: bool,
    choices: std::collections::BTreeMap<String, String>,
    clear_data: bool,
) -> anyhow::Result<bool> {
    let agent = cli::AgentClient::new(target.socket_path()?)?;
    runtime()?.block_on(cli::run_operation(
        &agent, app, install, choices, clear_data,
    ))
}

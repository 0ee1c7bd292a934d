//! `bloud-proxy`: command-line entry point.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bloud_proxy::config::static_config::StaticConfig;
use bloud_proxy::config::Problem;
use bloud_proxy::server;

#[derive(Parser)]
#[command(
    name = "bloud-proxy",
    version,
    about = "Bloud's reverse proxy: Traefik-compatible route files on Pingora",
    long_about = "Bloud's reverse proxy: reads a Traefik-style static file (entry points, file \
provider, ping, metrics, api, access log, pid file, life cycle) and Traefik-compatible dynamic \
route files (routers, middlewares, services), and serves them on Pingora.\n\n\
`bloud-proxy --config FILE` is the same as `bloud-proxy run --config FILE`.\n\
Routes reload on SIGHUP and, with `providers.file.watch: true`, when files in the route \
directory change; a file with errors keeps the previous routes live.\n\
SIGTERM stops accepting, drains in-flight requests and exits within lifeCycle.graceTimeOut.\n\
`bloud-proxy check --config FILE` validates everything and prints each problem as `file: message`."
)]
struct Cli {
    /// Static configuration file (YAML).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy (the default).
    Run,
    /// Load the static file and every route file, print each problem as `file: message`, and
    /// exit 1 if any is an error (0 otherwise; warnings do not fail).
    Check,
}

fn main() -> ExitCode {
    // First of all: make SIGHUP harmless (its default action would kill the process).
    let control = match server::Control::start() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bloud-proxy: {e:#}");
            return ExitCode::from(1);
        }
    };
    let cli = Cli::parse();
    let Some(config) = cli.config else {
        eprintln!("bloud-proxy: --config FILE is required (see --help)");
        return ExitCode::from(2);
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => match server::run(&config, control) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bloud-proxy: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Check => check(&config),
    }
}

fn check(config: &std::path::Path) -> ExitCode {
    let mut problems: Vec<Problem> = Vec::new();
    match StaticConfig::load(config) {
        Err(p) => problems.push(p),
        Ok((cfg, warnings)) => {
            problems.extend(warnings);
            let opts = bloud_proxy::reload::build_options(&cfg, Default::default(), 1);
            match bloud_proxy::reload::load_table(&cfg, &opts) {
                Ok(t) => {
                    problems.extend(t.warnings);
                    // Without any certificate every handshake on an HTTPS entry point fails.
                    for (name, ep) in &cfg.entry_points {
                        if ep.is_tls() && t.tls.is_empty() {
                            problems.push(Problem::warning(
                                config,
                                None,
                                format!(
                                    "entryPoints.{name}.http.tls: no route file names a certificate \
                                     (tls.certificates), so every TLS handshake there fails"
                                ),
                            ));
                        }
                    }
                }
                Err(p) => problems.extend(p.0),
            }
        }
    }
    for p in &problems {
        println!("{p}");
    }
    if problems.iter().any(Problem::is_error) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

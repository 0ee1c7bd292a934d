//! `GET /api/apps/{name}/logs`: the app's log as SSE, one raw text line per frame (upstream's
//! shape): the last 100 lines, then new ones as they come. A demo app's log file when there is
//! one, else the app's user unit in the journal. The reader process ends with the stream.

use std::process::Stdio;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::stream;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::{error, sse, Api};

/// The journal reader on NixOS (services get a bare PATH).
const JOURNALCTL: &str = "/run/current-system/sw/bin/journalctl";

fn command(api: &Api, app: &str) -> Command {
    let demo_log = api
        .service
        .config
        .data_dir
        .join("demo")
        .join(format!("{app}.log"));
    if demo_log.is_file() {
        let mut c = Command::new("tail");
        c.args(["-n", "100", "-F"]).arg(demo_log);
        return c;
    }
    let program = if std::path::Path::new(JOURNALCTL).exists() {
        JOURNALCTL
    } else {
        "journalctl"
    };
    let mut c = Command::new(program);
    c.args([
        "--user",
        "-u",
        &format!("podman-{app}.service"),
        "-f",
        "-n",
        "100",
        "--no-pager",
        "-o",
        "short-iso",
    ]);
    c
}

pub async fn app_logs(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match api.service.db.get_app(&name) {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::NOT_FOUND, "App not found"),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
    let mut cmd = command(&api, &name);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // The stream owns the child: a client that leaves ends the reader.
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(app = %name, error = %e, "cannot start the log reader");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to start log stream: {e}"),
            );
        }
    };
    let Some(stdout) = child.stdout.take() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Failed to start log stream",
        );
    };
    struct Reader {
        _child: Child,
        lines: tokio::io::Lines<BufReader<ChildStdout>>,
    }
    let reader = Reader {
        _child: child,
        lines: BufReader::new(stdout).lines(),
    };
    let frames = stream::unfold(reader, |mut r| async move {
        match r.lines.next_line().await {
            Ok(Some(line)) => Some((sse::frame(&line), r)),
            _ => None,
        }
    });
    sse::respond(frames)
}

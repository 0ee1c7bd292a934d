//! Start-up failures a user meets first: the port is taken (an old Traefik still runs).

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::proxy::BIN;

#[tokio::test]
async fn port_in_use_exits_at_once_naming_the_address() -> anyhow::Result<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?;
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("routes"))?;
    let cfg = dir.path().join("static.yml");
    std::fs::write(
        &cfg,
        format!(
            "entryPoints:\n  web: {{ address: \"{addr}\" }}\nproviders:\n  file: {{ directory: \"{}\" }}\npidFile: \"{}\"\n",
            dir.path().join("routes").display(),
            dir.path().join("proxy.pid").display()
        ),
    )?;
    let child = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let Ok(out) = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await
    else {
        anyhow::bail!("bloud-proxy kept running for 10 s although {addr} is taken");
    };
    let out = out?;
    let status = out.status;
    let stderr = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(!status.success(), "exit status {status}; stderr:\n{stderr}");
    anyhow::ensure!(
        stderr.contains(&addr.to_string()) && stderr.contains("entryPoints.web"),
        "the error must name the entry point and the address; stderr:\n{stderr}"
    );
    anyhow::ensure!(
        stderr.contains("ss -ltnp"),
        "the error must say how to find the other program; stderr:\n{stderr}"
    );
    anyhow::ensure!(
        !dir.path().join("proxy.pid").exists(),
        "no pid file for a proxy that never ran (the agent would signal a dead pid)"
    );
    drop(taken);
    Ok(())
}

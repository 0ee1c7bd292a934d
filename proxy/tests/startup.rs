//! Start-up failures a user meets first: the port is taken (an old Traefik still runs).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bloud-proxy");

#[test]
fn port_in_use_exits_at_once_naming_the_address() -> anyhow::Result<()> {
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
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("bloud-proxy kept running for 10 s although {addr} is taken");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr)?;
    }
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

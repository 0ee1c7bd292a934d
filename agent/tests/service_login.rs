//! Login abuse against a real `bloud-agent serve` process: guessing backs off with 429 and
//! `Retry-After` (per account and per client, the same for unknown names), and a flood of
//! parallel logins stays within a memory bound.

mod common;

use std::time::Duration;

use common::*;

const USER: &str = "alice";
const PASSWORD: &str = "password123";

fn config_file(dirs: &Dirs) -> std::path::PathBuf {
    let path = dirs.path("agent.yaml");
    std::fs::write(
        &path,
        format!(
            "appsDir: {}\ndataDir: {}\nroutesDir: {}\nproxyPidFile: {}\nwebDir: {}\n\
             rebuild: {{mode: command, command: [\"true\"]}}\n",
            dirs.path("apps").display(),
            dirs.path("data").display(),
            dirs.path("routes").display(),
            dirs.path("proxy.pid").display(),
            dirs.path("web").display(),
        ),
    )
    .unwrap();
    path
}

async fn setup(base: &str) {
    let r = client()
        .post(format!("{base}/api/setup/create-user"))
        .json(&serde_json::json!({"username": USER, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// One login attempt: (status, Retry-After seconds, error message).
async fn login(
    c: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
    client_ip: &str,
) -> (u16, Option<u64>, String) {
    let r = c
        .post(format!("{base}/api/auth/login"))
        // The proxy's client address header: the agent's peer is loopback, as behind the proxy.
        .header("X-Real-Ip", client_ip)
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    (
        status,
        retry,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn guessing_backs_off_with_429_then_recovers_after_the_window() {
    let dirs = Dirs::new();
    let file = config_file(&dirs);
    let agent = AgentProcess::start(
        &file,
        &[
            ("BLOUD_LOGIN_MAX_FAILURES", "5"),
            ("BLOUD_LOGIN_WINDOW", "3s"),
        ],
    )
    .await;
    let base = agent.base.clone();
    setup(&base).await;
    let c = client();

    // 100 wrong passwords from one client, then the right one.
    let mut statuses = Vec::new();
    for _ in 0..100 {
        statuses.push(login(&c, &base, USER, "wrong-password", "192.168.1.50").await);
    }
    assert!(statuses[..5].iter().all(|s| s.0 == 401), "{statuses:?}");
    assert!(
        statuses[5..].iter().all(|s| s.0 == 429 && s.1.is_some()),
        "{statuses:?}"
    );
    let (status, retry, message) = login(&c, &base, USER, PASSWORD, "192.168.1.50").await;
    assert_eq!(status, 429, "the right password after 100 guesses");
    assert_eq!(message, "Too many failed logins; try again later");
    let retry = retry.expect("Retry-After");
    assert!((1..=3).contains(&retry), "Retry-After: {retry}");

    // The account is locked from every client; the client is locked for every account.
    let (status, _, _) = login(&c, &base, USER, PASSWORD, "192.168.1.51").await;
    assert_eq!(status, 429, "the locked account from another client");
    let (status, _, _) = login(&c, &base, "bob", "whatever-pass", "192.168.1.50").await;
    assert_eq!(status, 429, "another account from the locked client");

    // An unknown name behaves like a known one: same statuses, same messages.
    let mut unknown = Vec::new();
    for _ in 0..6 {
        unknown.push(login(&c, &base, "nobody", "wrong-password", "192.168.1.60").await);
    }
    for (known, other) in statuses[..6].iter().zip(&unknown) {
        assert_eq!((known.0, &known.2), (other.0, &other.2));
    }

    // After the window the right password works again: poll until it does, as told.
    wait_for("the lock to end", Duration::from_secs(15), || {
        let c = c.clone();
        let base = base.clone();
        async move {
            let (status, _, _) = login(&c, &base, USER, PASSWORD, "192.168.1.50").await;
            (status == 200).then_some(())
        }
    })
    .await;
}

/// VmRSS and VmHWM (peak) of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// 500 parallel wrong-password logins: the agent's peak memory grows by less than 64 MiB (each
/// argon2 check holds 19 MiB; unbounded, this took gigabytes), and the overflow gets 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_stays_within_the_memory_bound() {
    let dirs = Dirs::new();
    let file = config_file(&dirs);
    // No backoff in the way: only the password-check bound is measured.
    let agent = AgentProcess::start(&file, &[("BLOUD_LOGIN_MAX_FAILURES", "1000000")]).await;
    let base = agent.base.clone();
    setup(&base).await;
    let pid = agent.child.id();
    let (rss_before, _) = memory_kib(pid);

    let c = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let attempts: Vec<_> = (0..500)
        .map(|i| {
            let c = c.clone();
            let base = base.clone();
            tokio::spawn(async move {
                login(
                    &c,
                    &base,
                    USER,
                    "wrong-password",
                    &format!("10.1.{}.{}", i / 250, i % 250),
                )
                .await
                .0
            })
        })
        .collect();
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    for a in attempts {
        *counts.entry(a.await.unwrap()).or_default() += 1;
    }
    let (_, peak) = memory_kib(pid);
    let growth_mib = peak.saturating_sub(rss_before) as f64 / 1024.0;
    eprintln!("500 parallel logins: {counts:?}; RSS before {rss_before} KiB, peak {peak} KiB, growth {growth_mib:.1} MiB");
    assert!(growth_mib < 64.0, "peak memory grew by {growth_mib:.1} MiB");
    assert!(counts.get(&429).copied().unwrap_or(0) > 0, "{counts:?}");
    assert!(counts.get(&401).copied().unwrap_or(0) > 0, "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 500);
    assert!(counts.keys().all(|s| *s == 401 || *s == 429), "{counts:?}");
    // Still answering, and the right password still works.
    let (status, _, _) = login(&c, &base, USER, PASSWORD, "10.9.9.9").await;
    assert_eq!(status, 200);
}

//! A rebuild that runs longer than two minutes (upstream cut every request and stream at 60 s):
//! it completes, the install request gets its result, and the SSE log stream stays open the
//! whole time, delivering lines as they are printed.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test]
async fn a_rebuild_longer_than_two_minutes_streams_and_completes() {
    let dirs = Dirs::new();
    write_catalog(
        &dirs.path("apps"),
        &[TestApp {
            name: "alpha",
            port: None,
            extra: "",
        }],
    );
    // 26 steps, 5 s apart, with one 20 s silence after step 13 (longer than the 15 s
    // keep-alive interval): about 145 s.
    let script = "for i in $(seq 1 26); do echo \"step $i\"; if [ $i = 13 ]; then sleep 20; else sleep 5; fi; done; echo finished";
    let running = bloud_agent::server::start(config(
        &dirs,
        &["sh", "-c", script],
        Duration::from_millis(10),
    ))
    .await
    .unwrap();
    let base = base_of(&running);
    let mut stream = SseReader::open(&format!("{base}/api/rebuilds/stream")).await;

    let started = Instant::now();
    let install = tokio::spawn({
        let base = base.clone();
        async move {
            let c = admin_with(&base, None);
            let r = c
                .post(format!("{base}/api/apps/alpha/install"))
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    });

    let mut step_times: Vec<(u32, Duration)> = Vec::new();
    let mut keep_alives = 0;
    let complete = tokio::time::timeout(Duration::from_secs(200), async {
        loop {
            match stream
                .next()
                .await
                .expect("the stream stays open until the rebuild completes")
            {
                Err(_) => keep_alives += 1,
                Ok(data) => {
                    let ev: serde_json::Value = serde_json::from_str(&data).unwrap();
                    let msg = ev["message"].as_str().unwrap();
                    if let Some(n) = msg.strip_prefix("step ") {
                        step_times.push((n.parse().unwrap(), started.elapsed()));
                    }
                    if ev["type"] == "complete" {
                        return ev;
                    }
                }
            }
        }
    })
    .await
    .expect("the rebuild completes within 200 s");
    let elapsed = started.elapsed();
    assert_eq!(complete["success"], true, "{complete}");
    assert!(elapsed > Duration::from_secs(120), "{elapsed:?}");
    assert_eq!(step_times.len(), 26);
    // Lines arrive as printed, not in one burst at the end.
    let (_, t13) = step_times[12];
    assert!(
        t13 > Duration::from_secs(55) && t13 < Duration::from_secs(100),
        "step 13 at {t13:?}"
    );
    assert!(keep_alives >= 1, "idle keep-alive comments are sent");

    let (status, result) = tokio::time::timeout(Duration::from_secs(30), install)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["success"], true);

    // The stream is still usable after the rebuild: a new client replays the finished log.
    let mut late = SseReader::open(&format!("{base}/api/rebuilds/stream")).await;
    let first = late.next_json().await.unwrap();
    assert!(first["message"]
        .as_str()
        .unwrap()
        .starts_with("Running: sh -c"));
    running.shutdown().await;
}

//! Figures for BENCHMARKS.md: the release binary against the in-process fake server with the
//! bundled posts: start-up to `READY=1`, idle resident memory, and wake-ups while idle.
//!
//! Run: `cargo bench --bench daemon`.

#[path = "../tests/it/fake_server.rs"]
#[allow(dead_code, unused_imports)]
mod fake_server;
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use fake_server::{FakeOptions, FakeServer};
use support::{perennial_run, proc_status_field, sigterm};
use tokio::net::UnixDatagram;

const RUNS: usize = 10;
const IDLE: Duration = Duration::from_secs(20);

/// Voluntary and involuntary context switches of every thread of `pid`: each wake-up of
/// any thread counts at least one.
fn context_switches(pid: u32) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches")
                || line.starts_with("nonvoluntary_ctxt_switches")
            {
                total += line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

async fn wait_for(socket: &UnixDatagram, message: &str) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let length = tokio::time::timeout(Duration::from_secs(30), socket.recv(&mut buffer))
            .await
            .expect("a notification")
            .unwrap();
        if &buffer[..length] == message.as_bytes() {
            return;
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    // The bundled schedule (weekdays 09:30 and 15:30 in Denver): no slot during the run
    // unless it happens to start within a minute of one.
    std::fs::write(dir.path().join("config.toml"), fake.bundled_config()).unwrap();
    let mut startup = Vec::new();
    let mut rss = Vec::new();
    let mut hwm = Vec::new();
    let mut wakeups = Vec::new();
    for run in 0..RUNS {
        let socket_path = dir.path().join(format!("notify-{run}.sock"));
        let socket = UnixDatagram::bind(&socket_path).unwrap();
        let start = Instant::now();
        let mut child = perennial_run(&fake.token())
            .current_dir(dir.path())
            .env("NOTIFY_SOCKET", &socket_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        wait_for(&socket, "READY=1").await;
        startup.push(start.elapsed());
        let pid = child.id().unwrap();
        if run == 0 {
            // Settle, then count context switches over an idle stretch: every wake-up of
            // any of its threads is one.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let before = context_switches(pid);
            tokio::time::sleep(IDLE).await;
            let total = context_switches(pid) - before;
            wakeups.push(total);
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        rss.push(proc_status_field(pid, "VmRSS"));
        hwm.push(proc_status_field(pid, "VmHWM"));
        assert!(sigterm(pid));
        let status = child.wait().await.unwrap();
        assert_eq!(status.code(), Some(0));
        let _ = std::fs::remove_file(&socket_path);
    }
    startup.sort();
    rss.sort();
    hwm.sort();
    println!(
        "start-up to READY=1: median {:.1} ms (min {:.1}, max {:.1}) over {RUNS} runs",
        startup[RUNS / 2].as_secs_f64() * 1000.0,
        startup[0].as_secs_f64() * 1000.0,
        startup[RUNS - 1].as_secs_f64() * 1000.0
    );
    println!(
        "resident memory after READY: median {} KiB (min {}, max {}); peak (VmHWM) median {} KiB",
        rss[RUNS / 2],
        rss[0],
        rss[RUNS - 1],
        hwm[RUNS / 2]
    );
    println!(
        "context switches of all its threads in {} s idle: {}",
        IDLE.as_secs(),
        wakeups[0]
    );
}

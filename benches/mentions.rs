//! Figures for BENCHMARKS.md: mention-to-reply latency of the release binary against the
//! in-process fake server on loopback, caps off.
//!
//! 1. One at a time: the fake server pushes a mention on the stream, the clock runs until
//!    the reply is stored; 1,000 times. p50 and p99.
//! 2. A burst: 1,000 mentions pushed at once; each one's latency (queueing included), the
//!    time until the last reply, and the binary's peak resident memory (VmHWM).
//!
//! Run: `cargo bench --bench mentions`.

#[path = "../tests/it/fake_server.rs"]
#[allow(dead_code, unused_imports)]
mod fake_server;
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use fake_server::{FakeOptions, FakeServer};
use perennial::posts::config::Visibility;
use support::{caps_off, perennial_run, proc_status_field, sigterm};

const MENTIONS: usize = 1000;
const BOUND: Duration = Duration::from_secs(120);

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

fn report(label: &str, latencies: &mut [Duration]) {
    latencies.sort();
    println!(
        "{label}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} mentions",
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
        latencies.last().unwrap().as_secs_f64() * 1000.0,
        latencies.len()
    );
}

fn mention(fake: &FakeServer, index: usize) {
    fake.add_mention(
        &format!("user{index}@example.org"),
        "<p><span class=\"h-card\"><a class=\"u-url mention\" href=\"https://example.social/@bot\">@<span>bot</span></a></span> how do I package my Python code?</p>",
        Visibility::Public,
        None,
        false,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    // The bundled config and guides, with the caps off.
    let config = caps_off(fake.bundled_config());
    std::fs::write(dir.path().join("config.toml"), &config).unwrap();

    let mut child = perennial_run(&fake.token())
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    tokio::time::timeout(BOUND, fake.wait_for_stream_count(1))
        .await
        .expect("the binary opens the stream");
    // Let the start-up catch-up finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = proc_status_field(pid, "VmRSS");

    // 1. One at a time.
    let mut latencies = Vec::with_capacity(MENTIONS);
    for index in 0..MENTIONS {
        let expected = fake.statuses().len() + 1;
        let start = Instant::now();
        mention(&fake, index);
        tokio::time::timeout(BOUND, fake.wait_for_statuses(expected))
            .await
            .expect("a reply");
        latencies.push(start.elapsed());
    }
    report("one at a time", &mut latencies);

    // 2. A burst.
    let already = fake.statuses().len();
    let watcher = {
        let fake = fake.clone();
        tokio::spawn(async move {
            let mut arrivals = Vec::with_capacity(MENTIONS);
            for n in 1..=MENTIONS {
                fake.wait_for_statuses(already + n).await;
                arrivals.push(Instant::now());
            }
            arrivals
        })
    };
    let start = Instant::now();
    let mut pushed = Vec::with_capacity(MENTIONS);
    for index in 0..MENTIONS {
        pushed.push(Instant::now());
        mention(&fake, MENTIONS + index);
    }
    let arrivals = tokio::time::timeout(BOUND, watcher)
        .await
        .expect("every reply of the burst")
        .unwrap();
    let total = start.elapsed();
    // Replies go out in the order the mentions came (one stream, one at a time).
    let mut burst: Vec<Duration> = arrivals
        .iter()
        .zip(&pushed)
        .map(|(arrived, pushed)| arrived.duration_since(*pushed))
        .collect();
    report("burst of 1,000 (queueing included)", &mut burst);
    println!(
        "burst: all {MENTIONS} replies in {:.0} ms ({:.0} replies/s)",
        total.as_secs_f64() * 1000.0,
        MENTIONS as f64 / total.as_secs_f64()
    );
    println!(
        "resident memory: {} KiB before, {} KiB after; peak (VmHWM) {} KiB",
        rss_before,
        proc_status_field(pid, "VmRSS"),
        proc_status_field(pid, "VmHWM")
    );
    let replies = fake.statuses().len();
    assert_eq!(replies, 2 * MENTIONS, "exactly one reply each");
    assert!(sigterm(pid));
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(0));
}

//! Issue 14, item 12: `check`, `preview` and `queue` fit posts as the daemon does once it has
//! seen the server (its software and limits, kept in the state), and say which rules they used.
//! At 500 characters, two bundled posts come out differently on Mastodon and GoToSocial.

use std::path::Path;
use std::process::{Command, Output};

use perennial::state::{ServerSeen, State, StateStore};
use perennial::text::count::Software;

use crate::support::repository_root;

/// Thread of 4 under Mastodon's rules at 500, of 5 under GoToSocial's.
const THREAD: &str = "packaging-tips/ci-trusted-publishing";
/// As is under Mastodon's rules at 500 (495), truncated under GoToSocial's.
const AS_IS: &str = "who-we-are/code-of-conduct";

fn seen(url: &str, software: Software) -> ServerSeen {
    ServerSeen {
        url: url.into(),
        software,
        max_characters: 500,
        characters_reserved_per_url: 23,
        max_media_attachments: 4,
        description_limit: 1500,
        image_size_limit: None,
        video_size_limit: None,
        account_id: "1".into(),
        acct: "bot".into(),
        at: "2026-12-04T10:00:00Z".parse().unwrap(),
    }
}

/// A state folder whose state says the daemon saw `server`.
fn state_with(server: Option<ServerSeen>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let state = State {
        server,
        ..State::default()
    };
    StateStore::new(dir.path()).save(&state).unwrap();
    dir
}

/// Runs the binary on the bundled config with `state_dir` as its state folder.
fn run(state_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(repository_root())
        .args(args)
        .env_remove("PERENNIAL_TOKEN")
        .env("STATE_DIRECTORY", state_dir)
        .output()
        .expect("the perennial binary runs")
}

fn preview(state_dir: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["preview", "--json", THREAD, AS_IS];
    args.extend_from_slice(extra);
    let output = run(state_dir, &args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn statuses(posts: &[serde_json::Value]) -> Vec<serde_json::Value> {
    posts.iter().map(|post| post["statuses"].clone()).collect()
}

fn parts(posts: &[serde_json::Value], id: &str) -> usize {
    let post = posts.iter().find(|post| post["post"] == id).unwrap();
    post["statuses"].as_array().unwrap().len()
}

#[test]
fn preview_fits_for_gotosocial_once_the_daemon_saw_it() {
    let state = state_with(Some(seen("https://fosstodon.org", Software::Gotosocial)));
    let posts = preview(state.path(), &[]);
    assert_eq!(parts(&posts, THREAD), 5);
    assert_eq!(posts[0]["software"], "gotosocial");
    assert_eq!(posts[0]["limit"], 500);
    assert_eq!(
        posts[0]["fitted"],
        "fitted for gotosocial, 500 characters, as the daemon saw https://fosstodon.org on 2026-12-04"
    );
    // Exactly GoToSocial's composition: the same as asking for its rules by hand.
    let empty = tempfile::tempdir().unwrap();
    let by_hand = preview(
        empty.path(),
        &["--software", "gotosocial", "--limit", "500"],
    );
    assert_eq!(statuses(&posts), statuses(&by_hand));
    // And not Mastodon's: both posts come out differently.
    let mastodon = preview(empty.path(), &[]);
    assert_ne!(statuses(&posts)[0], statuses(&mastodon)[0]);
    assert_ne!(statuses(&posts)[1], statuses(&mastodon)[1]);
}

#[test]
fn preview_uses_mastodon_defaults_before_the_daemon_connected_and_says_so() {
    let empty = tempfile::tempdir().unwrap();
    let posts = preview(empty.path(), &[]);
    assert_eq!(parts(&posts, THREAD), 4);
    assert_eq!(posts[0]["software"], "mastodon");
    assert_eq!(
        posts[0]["fitted"],
        "fitted for mastodon, 500 characters (the defaults: the daemon has not connected yet)"
    );
    let human = run(empty.path(), &["preview", AS_IS]);
    let stderr = String::from_utf8_lossy(&human.stderr);
    assert_eq!(
        stderr
            .matches("fitted for mastodon, 500 characters")
            .count(),
        1,
        "{stderr}"
    );
}

#[test]
fn preview_ignores_what_the_daemon_saw_of_another_server() {
    let state = state_with(Some(seen("https://other.example", Software::Gotosocial)));
    let posts = preview(state.path(), &[]);
    assert_eq!(parts(&posts, THREAD), 4);
    assert_eq!(posts[0]["software"], "mastodon");
    assert!(
        posts[0]["fitted"]
            .as_str()
            .unwrap()
            .contains("the daemon last saw https://other.example, not https://fosstodon.org"),
        "{}",
        posts[0]["fitted"]
    );
    // A trailing slash is the same server.
    let state = state_with(Some(seen("https://fosstodon.org/", Software::Gotosocial)));
    assert_eq!(parts(&preview(state.path(), &[]), THREAD), 5);
}

#[test]
fn an_unreadable_state_gives_the_defaults_without_failing_preview_or_check() {
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join("state.json"), "{\"version\": 1, \"hist").unwrap();
    let posts = preview(state.path(), &[]);
    assert_eq!(parts(&posts, THREAD), 4);
    assert!(
        posts[0]["fitted"]
            .as_str()
            .unwrap()
            .contains("the state file cannot be read"),
        "{}",
        posts[0]["fitted"]
    );
    let check = run(state.path(), &["check"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn check_and_queue_fit_for_the_server_the_daemon_saw_and_say_so() {
    let state = state_with(Some(seen("https://fosstodon.org", Software::Gotosocial)));
    let check = run(state.path(), &["check"]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with(&format!("ok     {THREAD}"))
                && line.ends_with("thread of 5")),
        "{stdout}"
    );
    assert_eq!(
        stderr
            .matches("fitted for gotosocial, 500 characters, as the daemon saw")
            .count(),
        1,
        "{stderr}"
    );

    let queue = run(
        state.path(),
        &[
            "queue",
            "--days",
            "30",
            "--from",
            "2026-11-22T20:00:00-07:00",
            "--json",
        ],
    );
    assert_eq!(queue.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&queue.stdout).unwrap();
    assert_eq!(report["software"], "gotosocial");
    assert!(report["fitted"]
        .as_str()
        .unwrap()
        .contains("as the daemon saw https://fosstodon.org"));
    let thread = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["post"] == THREAD)
        .expect("the thread is planned within 30 days");
    assert_eq!(thread["statuses"], 5, "{thread}");
    assert_eq!(thread["fit"], "thread of 5");
}

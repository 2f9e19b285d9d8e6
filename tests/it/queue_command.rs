//! `perennial queue` run as a user runs it, on the bundled config and posts.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::repository_root;

fn queue(state_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(repository_root())
        .arg("queue")
        .args(args)
        .env_remove("PERENNIAL_TOKEN")
        .env("STATE_DIRECTORY", state_dir)
        .output()
        .expect("the perennial binary runs")
}

#[test]
fn queue_json_plans_the_bundled_posts_in_the_configured_zone() {
    let state = tempfile::tempdir().unwrap();
    let output = queue(
        state.path(),
        &[
            "--days",
            "14",
            "--from",
            "2028-01-02T20:00:00-07:00",
            "--json",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["timezone"], "America/Denver");
    let entries = report["entries"].as_array().unwrap();
    // Two weekday slots for two weeks, plus the call for volunteers on 11 January.
    assert_eq!(entries.len(), 21, "{entries:#?}");
    let adhoc: Vec<&serde_json::Value> =
        entries.iter().filter(|e| e["reason"] == "adhoc").collect();
    assert_eq!(adhoc.len(), 1);
    assert_eq!(adhoc[0]["post"], "calls/volunteers-winter-2028");
    assert!(adhoc[0]["at"]
        .as_str()
        .unwrap()
        .starts_with("2028-01-11T09:30:00-07:00"));
    // Every time is RFC 3339 with the zone's offset, in whole seconds; the zone once.
    assert_eq!(report["from"], "2028-01-02T20:00:00-07:00");
    assert_eq!(report["until"], "2028-01-16T20:00:00-07:00");
    for entry in entries {
        let at = entry["at"].as_str().unwrap();
        assert!(at.ends_with("-07:00") && at.len() == 25, "{at}");
        assert!(at.parse::<jiff::Timestamp>().is_ok(), "{at}");
        assert!(entry["length"].as_u64().unwrap() <= entry["limit"].as_u64().unwrap());
        assert!(entry["fit"].is_string(), "{entry}");
    }
    // Every evergreen post (16) goes out before any repeats, plus the call; the two event
    // posts are outside their windows.
    let posts: Vec<&str> = entries
        .iter()
        .map(|e| e["post"].as_str().unwrap())
        .collect();
    let distinct: std::collections::BTreeSet<&str> = posts.iter().copied().collect();
    assert_eq!(distinct.len(), 17, "{posts:?}");
    let first_repeat = (0..posts.len())
        .find(|&i| posts[..i].contains(&posts[i]))
        .unwrap();
    assert_eq!(first_repeat, 17, "{posts:?}");
    // Nothing was written: queue only reads the state.
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
}

#[test]
fn a_from_that_is_not_a_time_says_what_is_expected() {
    let state = tempfile::tempdir().unwrap();
    let output = queue(state.path(), &["--from", "tomorrow"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "expected a date and time with its UTC offset, like 2027-02-01T09:00:00-07:00"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("four digit integer"), "{stderr}");
}

#[test]
fn queue_prints_a_readable_plan() {
    let state = tempfile::tempdir().unwrap();
    let output = queue(
        state.path(),
        &["--days", "3", "--from", "2028-01-10T00:00:00-07:00"],
    );
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "Plan from Mon 2028-01-10 00:00 to Thu 2028-01-13 00:00 (America/Denver):"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  Tue 2028-01-11 09:30  ad hoc  calls/volunteers-winter-2028")),
        "{text}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains("  slot  ")).count(),
        6,
        "{text}"
    );
}

#[test]
fn queue_refuses_a_corrupt_state_file() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("state.json");
    std::fs::write(&file, "{\"version\": 1, \"history\": [").unwrap();
    let output = queue(state.path(), &["--days", "3"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "{\"version\": 1, \"history\": ["
    );
}

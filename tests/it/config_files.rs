//! Config files: every invalid fixture gives exactly its expected messages.

use std::path::Path;

use perennial::posts::config::{Config, Slots};

use crate::support::{assert_all_match, assert_paired, fixtures, render_without_file};

const INVALID: &str = "tests/data/config/invalid";

#[test]
fn every_invalid_config_fixture_gives_exactly_its_expected_messages() {
    assert_paired(INVALID, "toml", "expected");
    let results = fixtures(INVALID, "toml")
        .into_iter()
        .map(|path| {
            let actual = match Config::load(&path) {
                Ok(_) => "loaded without error\n".to_string(),
                Err(errors) => render_without_file(&errors),
            };
            let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
            (path.display().to_string(), actual, expected)
        })
        .collect();
    assert_all_match(results);
}

#[test]
fn a_minimal_config_gets_the_documented_defaults() {
    let config = Config::parse(
        Path::new("/etc/perennial/config.toml"),
        "[server]\nurl = \"https://example.social/\"\n",
    )
    .unwrap();
    assert_eq!(config.server.url, "https://example.social");
    assert_eq!(config.posts.dir, Path::new("/etc/perennial/posts"));
    assert_eq!(config.state.dir, Path::new("/etc/perennial/state"));
    assert_eq!(config.posts.max_thread, 5);
    assert_eq!(config.schedule.timezone_name, "UTC");
    assert_eq!(config.schedule.grace, jiff::SignedDuration::from_mins(30));
    assert_eq!(
        config.schedule.repeat_after,
        jiff::SignedDuration::from_hours(720)
    );
    assert!(
        matches!(&config.schedule.slots, Slots::Times { times, days } if times.len() == 2 && days.len() == 7)
    );
    assert_eq!(config.mentions.per_account_per_hour, 3);
    assert_eq!(config.schedule.weight_of("anything"), 1.0);
}

#[test]
fn every_gives_interval_slots_and_durations_accept_days() {
    let config = Config::parse(
        Path::new("c.toml"),
        "[server]\nurl = \"https://a.example\"\n[schedule]\nevery = \"1h 30m\"\nrepeat_after = \"2d\"\n",
    )
    .unwrap();
    assert_eq!(
        config.schedule.slots,
        Slots::Every(jiff::SignedDuration::from_mins(90))
    );
    assert_eq!(
        config.schedule.repeat_after,
        jiff::SignedDuration::from_hours(48)
    );
}

#[test]
fn grace_of_the_minimum_loads_and_jitter_longer_than_grace_is_allowed() {
    // A slot's `grace` counts from its jittered time, so a jitter longer than `grace` never
    // pushes a slot out of its window (the crash soak runs `every = "1s"`, `grace = "10s"`).
    let config = Config::parse(
        Path::new("c.toml"),
        "[server]\nurl = \"https://a.example\"\n[schedule]\ntimes = [\"09:30\"]\njitter = \"2h\"\ngrace = \"10s\"\n",
    )
    .unwrap();
    assert_eq!(config.schedule.grace, perennial::posts::config::MIN_GRACE);
    let errors = Config::parse(
        Path::new("c.toml"),
        "[server]\nurl = \"https://a.example\"\n[schedule]\ngrace = \"9s\"\n",
    )
    .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].column), (4, 9));
}

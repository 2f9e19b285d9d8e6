//! Integration tests: data-driven fixtures through the library, and the real binary run as a
//! user runs it. One test binary (as ripgrep does) so the crate is linked once.

/// An in-process fake Mastodon server on 127.0.0.1 with fault injection.
#[path = "it/fake_server.rs"]
#[allow(dead_code)]
pub mod fake_server;
#[path = "it/support.rs"]
mod support;

#[path = "it/bundled.rs"]
mod bundled;
#[path = "it/check_command.rs"]
mod check_command;
#[path = "it/compose_props.rs"]
mod compose_props;
#[path = "it/config_files.rs"]
mod config_files;
#[path = "it/crash_soak.rs"]
mod crash_soak;
#[path = "it/daemon_binary.rs"]
mod daemon_binary;
#[path = "it/daemon_runs.rs"]
mod daemon_runs;
#[path = "it/fuzz_regressions.rs"]
mod fuzz_regressions;
#[path = "it/login_command.rs"]
mod login_command;
#[path = "it/mention_corpus.rs"]
mod mention_corpus;
#[path = "it/mention_listener.rs"]
mod mention_listener;
#[path = "it/mention_replies.rs"]
mod mention_replies;
#[path = "it/mentions_daemon.rs"]
mod mentions_daemon;
#[path = "it/never_silent.rs"]
mod never_silent;
#[path = "it/offline_fit.rs"]
mod offline_fit;
#[path = "it/plan_rotation.rs"]
mod plan_rotation;
#[path = "it/post_files.rs"]
mod post_files;
#[path = "it/posts_folder.rs"]
mod posts_folder;
#[path = "it/preview_command.rs"]
mod preview_command;
#[path = "it/queue_command.rs"]
mod queue_command;
#[path = "it/real_gotosocial.rs"]
mod real_gotosocial;
#[path = "it/repository.rs"]
mod repository;
#[path = "it/server_api.rs"]
mod server_api;
#[path = "it/state_over_years.rs"]
mod state_over_years;
#[path = "it/state_store.rs"]
mod state_store;
#[path = "it/systemd_notify.rs"]
mod systemd_notify;
#[path = "it/systemd_units.rs"]
mod systemd_units;
#[path = "it/tidy.rs"]
mod tidy;
#[path = "it/token_and_logging.rs"]
mod token_and_logging;
#[path = "it/watch_files.rs"]
mod watch_files;
#[path = "it/year_simulation.rs"]
mod year_simulation;

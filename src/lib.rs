//! perennial: keeps a community's fediverse account alive.

pub mod cli;
pub mod clock;
pub mod commands;
pub mod compose;
pub mod config;
pub mod count;
pub mod daemon;
pub mod diagnostic;
#[doc(hidden)]
pub mod fuzz_checks;
pub mod html;
pub mod library;
pub mod logging;
pub mod markdown;
pub mod mentions;
pub mod plan;
pub mod post;
pub mod publish;
pub mod reply;
pub mod retry;
pub mod schedule;
pub mod server;
pub mod show;
pub mod state;
pub mod systemd;
pub mod token;
pub mod watch;

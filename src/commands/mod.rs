//! One module per subcommand; each returns the process exit code.

pub mod check;
pub mod login;
pub mod preview;
pub mod queue;
pub mod run;

use crate::compose::FitSettings;
use crate::config::{Config, SoftwareSetting};
use crate::count::{Counter, Software};
use crate::state::StateStore;

/// Mastodon's default `characters_reserved_per_url`, used until the server says otherwise.
pub const DEFAULT_CHARACTERS_PER_URL: usize = 23;
/// fosstodon.org's and Mastodon's default limit, used offline when the config sets none.
pub const DEFAULT_MAX_CHARACTERS: usize = 500;

/// The counter to fit posts with when the server is not asked: the config's `software`
/// (`auto` means Mastodon's rules) and `max_characters` (else 500), unless overridden.
pub fn offline_counter(
    config: &Config,
    software: Option<Software>,
    limit: Option<usize>,
) -> Counter {
    let software = software.unwrap_or(match config.server.software {
        SoftwareSetting::Fixed(software) => software,
        SoftwareSetting::Auto => Software::Mastodon,
    });
    let limit = limit
        .or(config.server.max_characters)
        .unwrap_or(DEFAULT_MAX_CHARACTERS);
    Counter::new(software, limit, DEFAULT_CHARACTERS_PER_URL)
}

/// The fitting settings of `config` for `counter`.
pub fn fit_settings<'a>(config: &'a Config, counter: &'a Counter) -> FitSettings<'a> {
    FitSettings {
        counter,
        long_posts: config.posts.long_posts,
        max_thread: config.posts.max_thread,
        default_hashtags: &config.posts.hashtags,
        visibility: config.posts.visibility,
        language: &config.posts.language,
    }
}

/// The state store of `config`: `$STATE_DIRECTORY` (systemd's `StateDirectory=`) wins over
/// `[state] dir`.
pub fn open_state(config: &Config) -> StateStore {
    let env = std::env::var_os("STATE_DIRECTORY");
    StateStore::new(crate::state::resolve_state_dir(
        env.as_deref(),
        &config.state.dir,
    ))
}

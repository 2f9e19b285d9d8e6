//! How posts are fitted when the server is not asked (`check`, `preview`, `queue`, `post
//! --dry-run`, and the daemon before it has connected): with what the daemon last saw of the
//! server ([`ServerSeen`], kept in the state), so that what they show is what the daemon sends.

use super::{ServerSeen, StateStore};
use crate::posts::config::software_name;
use crate::posts::config::{Config, SoftwareSetting};
use crate::text::count::{Counter, Software};

/// Mastodon's default `characters_reserved_per_url`, used until the server says otherwise.
pub const DEFAULT_CHARACTERS_PER_URL: usize = 23;
/// fosstodon.org's and Mastodon's default limit, used offline when the config sets none.
pub const DEFAULT_MAX_CHARACTERS: usize = 500;

/// The counter to fit posts with when the server is not asked: the config's `software`
/// (`auto` means Mastodon's rules) and `max_characters` (else 500), unless overridden.
/// What the daemon saw of the server is not used here; see [`offline_fit`].
pub fn offline_counter(
    config: &Config,
    software: Option<Software>,
    limit: Option<usize>,
) -> Counter {
    offline_fit_with(config, None, software, limit).counter
}

/// How offline commands fit posts, and a sentence saying where that came from (printed once
/// by each command, so a reader knows whether it is what the daemon will send).
#[derive(Debug, Clone)]
pub struct OfflineFit {
    pub counter: Counter,
    /// E.g. "fitted for gotosocial, 500 characters, as the daemon saw https://a.example on
    /// 2026-12-04".
    pub source: String,
    /// The media size limits that go with it ([`media_limits_seen`]).
    pub media: crate::posts::post::MediaLimits,
}

/// The fit that offline commands (`check`, `preview`, `queue`, `post --dry-run`) use, so
/// that what they show is what the daemon sends: what the daemon last saw of the server
/// (`seen`, from the state's `server`) when it saw the server the config names (trailing
/// slash ignored), as the daemon fits: the config's fixed `software` and its `max_characters`
/// win over the server's; else Mastodon's rules at 500 (the defaults).
pub fn offline_fit(config: &Config, seen: Option<&ServerSeen>) -> OfflineFit {
    offline_fit_with(config, seen, None, None)
}

/// [`offline_fit`] with `preview`'s `--software` and `--limit`, which win over everything.
pub fn offline_fit_with(
    config: &Config,
    seen: Option<&ServerSeen>,
    software: Option<Software>,
    limit: Option<usize>,
) -> OfflineFit {
    let same_server = same_server(config, seen);
    let (software, software_from) = match (software, config.server.software, same_server) {
        (Some(software), _, _) => (software, Some("--software")),
        (None, SoftwareSetting::Fixed(software), _) => (software, Some("the config's `software`")),
        (None, SoftwareSetting::Auto, Some(seen)) => (seen.software, None),
        (None, SoftwareSetting::Auto, None) => (Software::Mastodon, None),
    };
    let (limit, limit_from) = match (limit, config.server.max_characters, same_server) {
        (Some(limit), _, _) => (limit, Some("--limit")),
        (None, Some(limit), _) => (limit, Some("the config's `max_characters`")),
        (None, None, Some(seen)) => (seen.max_characters, None),
        (None, None, None) => (DEFAULT_MAX_CHARACTERS, None),
    };
    let per_url = same_server.map_or(DEFAULT_CHARACTERS_PER_URL, |seen| {
        seen.characters_reserved_per_url
    });
    let counter = Counter::new(software, limit, per_url);
    let mut source = format!(
        "fitted for {}, {} characters",
        software_name(software),
        counter.limit()
    );
    let fixed: Vec<&str> = software_from.into_iter().chain(limit_from).collect();
    match (same_server, seen) {
        (Some(seen), _) => source.push_str(&format!(
            ", as the daemon saw {} on {}",
            seen.url,
            seen.at.strftime("%Y-%m-%d")
        )),
        (None, Some(seen)) => source.push_str(&format!(
            " (the defaults: the daemon last saw {}, not {})",
            seen.url, config.server.url
        )),
        (None, None) => source.push_str(" (the defaults: the daemon has not connected yet)"),
    }
    if !fixed.is_empty() {
        source.push_str(&format!("; set by {}", fixed.join(" and ")));
    }
    OfflineFit {
        counter,
        source,
        media: media_limits_seen(config, seen),
    }
}

/// `seen`, when it is the server the config names (a trailing slash aside): what the daemon
/// saw of another server says nothing of this one.
fn same_server<'s>(config: &Config, seen: Option<&'s ServerSeen>) -> Option<&'s ServerSeen> {
    seen.filter(|seen| seen.url.trim_end_matches('/') == config.server.url.trim_end_matches('/'))
}

/// [`offline_fit`] with what the state file says of the server. The state is only read (no
/// lock: the daemon may be running); a missing file gives the defaults, and so does one that
/// cannot be read, which the sentence then says.
pub fn offline_fit_from_state(config: &Config) -> OfflineFit {
    offline_fit_from_state_with(config, None, None)
}

/// [`offline_fit_from_state`] with `preview`'s `--software` and `--limit`.
pub fn offline_fit_from_state_with(
    config: &Config,
    software: Option<Software>,
    limit: Option<usize>,
) -> OfflineFit {
    match open_state(config).load() {
        Ok(state) => {
            let seen = state.and_then(|state| state.server);
            offline_fit_with(config, seen.as_ref(), software, limit)
        }
        Err(error) => {
            let mut fit = offline_fit_with(config, None, software, limit);
            fit.source = fit.source.replace(
                "the daemon has not connected yet",
                &format!("the state file cannot be read: {error}"),
            );
            fit
        }
    }
}

/// The media size limits offline commands check against: the server's, as the daemon last saw
/// it, while the config names that server; else Mastodon's defaults.
pub fn offline_media_limits(config: &Config) -> crate::posts::post::MediaLimits {
    let state = open_state(config).load().ok().flatten();
    media_limits_seen(
        config,
        state.as_ref().and_then(|state| state.server.as_ref()),
    )
}

/// The media size limits in `seen`, when it is the server the config names; else
/// Mastodon's defaults.
pub fn media_limits_seen(
    config: &Config,
    seen: Option<&ServerSeen>,
) -> crate::posts::post::MediaLimits {
    match same_server(config, seen) {
        Some(seen) => crate::posts::post::MediaLimits::from_sizes(
            seen.image_size_limit,
            seen.video_size_limit,
        ),
        None => crate::posts::post::MediaLimits::default(),
    }
}

/// The state store of `config`: `$STATE_DIRECTORY` (systemd's `StateDirectory=`) wins over
/// `[state] dir`.
pub fn open_state(config: &Config) -> StateStore {
    let env = std::env::var_os("STATE_DIRECTORY");
    StateStore::new(super::resolve_state_dir(env.as_deref(), &config.state.dir))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(server: &str) -> Config {
        Config::parse(Path::new("c.toml"), &format!("[server]\n{server}\n")).unwrap()
    }

    fn seen(url: &str) -> ServerSeen {
        ServerSeen {
            url: url.into(),
            software: Software::Gotosocial,
            max_characters: 5000,
            characters_reserved_per_url: 30,
            max_media_attachments: 6,
            description_limit: 1500,
            image_size_limit: None,
            video_size_limit: None,
            account_id: "1".into(),
            acct: "bot".into(),
            at: "2026-12-04T10:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn what_the_daemon_saw_is_used_for_the_same_server_as_the_daemon_uses_it() {
        let seen = seen("https://a.example/");
        let fit = offline_fit(&config("url = \"https://a.example\""), Some(&seen));
        assert_eq!(fit.counter.software(), Software::Gotosocial);
        assert_eq!(fit.counter.limit(), 5000);
        // The server's URL weight too (Mastodon's rule uses it; GoToSocial's counts URLs).
        let mastodon = ServerSeen {
            software: Software::Mastodon,
            ..seen.clone()
        };
        let fit_mastodon = offline_fit(&config("url = \"https://a.example\""), Some(&mastodon));
        assert_eq!(
            fit_mastodon.counter.count("https://example.com/long/path"),
            30
        );
        // The config's `max_characters` still wins over the server's, and a fixed
        // `software` over the one seen.
        let fit = offline_fit(
            &config("url = \"https://a.example\"\nmax_characters = 400\nsoftware = \"mastodon\""),
            Some(&seen),
        );
        assert_eq!(fit.counter.software(), Software::Mastodon);
        assert_eq!(fit.counter.limit(), 400);
        assert_eq!(
            fit.source,
            "fitted for mastodon, 400 characters, as the daemon saw https://a.example/ on 2026-12-04; set by the config's `software` and the config's `max_characters`"
        );
        // Another server: the defaults.
        let fit = offline_fit(&config("url = \"https://b.example\""), Some(&seen));
        assert_eq!(fit.counter.software(), Software::Mastodon);
        assert_eq!(fit.counter.limit(), DEFAULT_MAX_CHARACTERS);
        assert_eq!(fit.counter.count("https://example.com/long/path"), 23);
        // The old entry point is unchanged: the config and the overrides only.
        let counter = offline_counter(&config("url = \"https://a.example\""), None, Some(300));
        assert_eq!(
            (counter.software(), counter.limit()),
            (Software::Mastodon, 300)
        );
    }
}

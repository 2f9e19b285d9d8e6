//! Reads what the server says about itself: its software (nodeinfo) and its limits (instance).
//!
//! Pure functions of the JSON documents, so they are tested with literal documents; the
//! fetching is in `mod.rs`. Every field is optional and read leniently (a value of the wrong
//! type counts as absent): a server that reports one odd field still gets the others read.

use serde_json::Value;

use crate::posts::post::MediaLimits;
use crate::text::compose::MIN_SANE_LIMIT;
use crate::text::count::{Software, DEFAULT_CHARACTERS_RESERVED_PER_URL};

use super::Limits;

/// Mastodon's `max_media_attachments`, accepted everywhere.
pub const DEFAULT_MAX_MEDIA_ATTACHMENTS: usize = 4;
/// `description_limit` of Mastodon 4.4+ and GoToSocial (and Mastodon's fixed limit before).
pub const DEFAULT_DESCRIPTION_LIMIT: usize = 1500;

/// The status length limit when the server does not say: Mastodon's hard-coded 500, and
/// 5000 for the others (GoToSocial's `statuses-max-chars` default; Pleroma's `:limit`).
pub fn default_max_characters(software: Software) -> usize {
    match software {
        Software::Mastodon => 500,
        Software::Gotosocial | Software::Pleroma | Software::Akkoma | Software::Generic => 5000,
    }
}

/// The software for a nodeinfo `software.name`. Only the servers whose counting rule we know
/// are named; a fork with another name (Hometown, glitch-soc builds that rename themselves:
/// they may count differently) is `Generic`, whose rule never counts less than any of them.
pub fn software_from_name(name: &str) -> Software {
    match name.trim().to_ascii_lowercase().as_str() {
        "mastodon" => Software::Mastodon,
        "gotosocial" => Software::Gotosocial,
        "pleroma" => Software::Pleroma,
        "akkoma" => Software::Akkoma,
        _ => Software::Generic,
    }
}

/// The href of the newest nodeinfo 2.x document listed in `/.well-known/nodeinfo`.
pub fn nodeinfo_href(well_known: &Value) -> Option<String> {
    const SCHEMA: &str = "http://nodeinfo.diaspora.software/ns/schema/2.";
    let links = well_known.get("links")?.as_array()?;
    links
        .iter()
        .filter_map(|link| {
            let rel = link.get("rel")?.as_str()?;
            let minor = rel.strip_prefix(SCHEMA)?;
            let minor: u32 = minor.parse().ok()?;
            let href = link.get("href")?.as_str()?;
            Some((minor, href.to_string()))
        })
        .max_by_key(|(minor, _)| *minor)
        .map(|(_, href)| href)
}

/// `software.name` of a nodeinfo 2.x document.
pub fn nodeinfo_software_name(nodeinfo: &Value) -> Option<String> {
    nodeinfo
        .pointer("/software/name")?
        .as_str()
        .map(str::to_string)
}

/// What one instance document (v2 or v1) reports; `None` where it is silent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportedLimits {
    pub max_characters: Option<usize>,
    pub characters_reserved_per_url: Option<usize>,
    pub max_media_attachments: Option<usize>,
    pub description_limit: Option<usize>,
    pub image_size_limit: Option<u64>,
    pub video_size_limit: Option<u64>,
}

impl ReportedLimits {
    pub fn is_empty(&self) -> bool {
        *self == ReportedLimits::default()
    }
}

/// Reads `configuration.statuses` and `configuration.media_attachments` (v2, and v1 since
/// Mastodon 3.4), and the older top-level fields of Pleroma/Akkoma's v1 (`max_toot_chars`,
/// `description_limit`, `max_media_attachments`).
pub fn reported_limits(instance: &Value) -> ReportedLimits {
    let number = |pointer: &str| {
        instance
            .pointer(pointer)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
    };
    let bytes = |pointer: &str| {
        instance
            .pointer(pointer)
            .and_then(Value::as_u64)
            .filter(|&n| n > 0)
    };
    ReportedLimits {
        max_characters: number("/configuration/statuses/max_characters")
            .or_else(|| number("/max_toot_chars"))
            .filter(|&n| n > 0),
        characters_reserved_per_url: number("/configuration/statuses/characters_reserved_per_url"),
        max_media_attachments: number("/configuration/statuses/max_media_attachments")
            .or_else(|| number("/max_media_attachments")),
        description_limit: number("/configuration/media_attachments/description_limit")
            .or_else(|| number("/description_limit"))
            .filter(|&n| n > 0),
        image_size_limit: bytes("/configuration/media_attachments/image_size_limit"),
        video_size_limit: bytes("/configuration/media_attachments/video_size_limit"),
    }
}

/// Where the server says its streaming API is: `configuration.urls.streaming` (v2) or
/// `urls.streaming_api` (v1). Taken as reported; `notifications` decides what to make of it.
pub fn streaming_url(instance: &Value) -> Option<String> {
    instance
        .pointer("/configuration/urls/streaming")
        .or_else(|| instance.pointer("/urls/streaming_api"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_string)
}

/// The limits in force: the config's `max_characters` wins, then what the server reports,
/// then the software's defaults.
pub fn limits(
    software: Software,
    reported: ReportedLimits,
    max_characters_override: Option<usize>,
) -> Limits {
    Limits {
        software,
        max_characters: max_characters_override
            .or(reported.max_characters)
            .unwrap_or_else(|| default_max_characters(software)),
        server_max_characters: reported
            .max_characters
            .unwrap_or_else(|| default_max_characters(software)),
        characters_reserved_per_url: reported
            .characters_reserved_per_url
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_CHARACTERS_RESERVED_PER_URL),
        max_media_attachments: reported
            .max_media_attachments
            .unwrap_or(DEFAULT_MAX_MEDIA_ATTACHMENTS),
        description_limit: reported
            .description_limit
            .unwrap_or(DEFAULT_DESCRIPTION_LIMIT),
        media: MediaLimits::from_sizes(reported.image_size_limit, reported.video_size_limit),
    }
}

/// What to warn the operator about at start: a `max_characters` in force below
/// [`MIN_SANE_LIMIT`] (the composer's floor, the one `check` and `preview` warn about too), and
/// a configured `max_characters` above what the server itself reports (the server would
/// refuse every post longer than its own limit). Pure, so that the
/// conditions are tested without a server; `connect` logs each line as a warning.
pub fn limit_warnings(
    limits: &Limits,
    reported: &ReportedLimits,
    max_characters_override: Option<usize>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if limits.max_characters < MIN_SANE_LIMIT {
        let source = match (max_characters_override, reported.max_characters) {
            (Some(_), _) => "`max_characters` in config.toml",
            (None, Some(_)) => "the server's instance document",
            (None, None) => "the software's default",
        };
        warnings.push(format!(
            "the status length limit is {} characters (from {source}), below the sane floor \
             of {MIN_SANE_LIMIT}: most posts will be cut to almost nothing or fail; \
             check [server] max_characters and the server's limit",
            limits.max_characters
        ));
    }
    if let (Some(configured), Some(server)) = (max_characters_override, reported.max_characters) {
        if configured > server {
            warnings.push(format!(
                "[server] max_characters = {configured} is above the server's own limit of \
                 {server}: every post longer than {server} characters would be refused; \
                 lower it or remove it to use the server's"
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn software_names() {
        assert_eq!(software_from_name("mastodon"), Software::Mastodon);
        assert_eq!(software_from_name("hometown"), Software::Generic);
        assert_eq!(software_from_name("GoToSocial"), Software::Gotosocial);
        assert_eq!(software_from_name("pleroma"), Software::Pleroma);
        assert_eq!(software_from_name("akkoma"), Software::Akkoma);
        assert_eq!(software_from_name("misskey"), Software::Generic);
        assert_eq!(software_from_name(""), Software::Generic);
    }

    #[test]
    fn newest_nodeinfo_2x_is_chosen() {
        let doc = json!({"links": [
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": "https://a/nodeinfo/2.0"},
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": "https://a/nodeinfo/2.1"},
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/1.0", "href": "https://a/nodeinfo/1.0"},
            {"rel": "https://www.w3.org/ns/activitystreams#Application", "href": "https://a/actor"}
        ]});
        assert_eq!(
            nodeinfo_href(&doc).as_deref(),
            Some("https://a/nodeinfo/2.1")
        );
        assert_eq!(nodeinfo_href(&json!({"links": []})), None);
        assert_eq!(nodeinfo_href(&json!({"links": "nope"})), None);
        assert_eq!(
            nodeinfo_software_name(
                &json!({"software": {"name": "gotosocial", "version": "0.19.0"}})
            )
            .as_deref(),
            Some("gotosocial")
        );
    }

    #[test]
    fn mastodon_v2_instance() {
        let v2 = json!({
            "domain": "fosstodon.org",
            "configuration": {
                "statuses": {"max_characters": 500, "max_media_attachments": 4, "characters_reserved_per_url": 23},
                "media_attachments": {"description_limit": 1500, "image_size_limit": 16777216, "video_size_limit": 41943040}
            }
        });
        let reported = reported_limits(&v2);
        assert_eq!(
            limits(Software::Mastodon, reported, None),
            Limits {
                software: Software::Mastodon,
                max_characters: 500,
                server_max_characters: 500,
                characters_reserved_per_url: 23,
                max_media_attachments: 4,
                description_limit: 1500,
                media: MediaLimits {
                    image_bytes: 16_777_216,
                    video_bytes: 41_943_040,
                },
            }
        );
        let overridden = limits(Software::Mastodon, reported, Some(1000));
        assert_eq!(overridden.max_characters, 1000);
        assert_eq!(
            overridden.server_max_characters, 500,
            "the server's own, kept"
        );
    }

    fn reported_max(max_characters: Option<usize>) -> ReportedLimits {
        ReportedLimits {
            max_characters,
            ..ReportedLimits::default()
        }
    }

    fn warnings_for(reported: Option<usize>, configured: Option<usize>) -> Vec<String> {
        let reported = reported_max(reported);
        let limits = limits(Software::Mastodon, reported, configured);
        limit_warnings(&limits, &reported, configured)
    }

    #[test]
    fn an_instance_reporting_an_absurd_limit_is_warned_about() {
        let warnings = warnings_for(Some(10), None);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("10 characters"), "{warnings:?}");
        assert!(warnings[0].contains("instance document"), "{warnings:?}");
        assert_eq!(warnings_for(Some(MIN_SANE_LIMIT - 1), None).len(), 1);
        assert!(warnings_for(Some(MIN_SANE_LIMIT), None).is_empty());
        assert!(warnings_for(Some(500), None).is_empty());
        assert!(
            warnings_for(None, None).is_empty(),
            "Mastodon's default 500"
        );
    }

    #[test]
    fn a_configured_limit_of_one_is_warned_about() {
        let warnings = warnings_for(Some(500), Some(1));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("1 characters"), "{warnings:?}");
        assert!(warnings[0].contains("config.toml"), "{warnings:?}");
    }

    #[test]
    fn a_configured_limit_above_the_servers_own_is_warned_about() {
        let warnings = warnings_for(Some(500), Some(1000));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("above the server's own limit of 500"),
            "{warnings:?}"
        );
        assert!(warnings_for(Some(500), Some(500)).is_empty());
        assert!(warnings_for(Some(500), Some(400)).is_empty());
        // A server that reports nothing: its limit is unknown, nothing to compare with.
        assert!(warnings_for(None, Some(1000)).is_empty());
        // Both at once.
        assert_eq!(warnings_for(Some(10), Some(50)).len(), 2);
    }

    #[test]
    fn streaming_urls() {
        let v2 = json!({"configuration": {"urls": {"streaming": "wss://streaming.example.org"}}});
        assert_eq!(
            streaming_url(&v2).as_deref(),
            Some("wss://streaming.example.org")
        );
        let v1 = json!({"urls": {"streaming_api": "wss://example.org"}});
        assert_eq!(streaming_url(&v1).as_deref(), Some("wss://example.org"));
        for silent in [
            json!({}),
            json!({"configuration": {"urls": {"streaming": null}}}),
            json!({"configuration": {"urls": {"streaming": " "}}}),
        ] {
            assert_eq!(streaming_url(&silent), None, "{silent}");
        }
    }

    #[test]
    fn pleroma_v1_instance_and_odd_values() {
        let v1 = json!({"max_toot_chars": 5000, "description_limit": 5000, "max_media_attachments": 1000});
        let reported = reported_limits(&v1);
        assert_eq!(reported.max_characters, Some(5000));
        assert_eq!(reported.description_limit, Some(5000));
        assert_eq!(reported.max_media_attachments, Some(1000));

        let odd = json!({"configuration": {"statuses": {"max_characters": "500", "characters_reserved_per_url": -1}}});
        let reported = reported_limits(&odd);
        assert!(reported.is_empty());
        assert_eq!(
            limits(Software::Gotosocial, reported, None).max_characters,
            5000
        );
        assert_eq!(
            limits(Software::Mastodon, reported, None).max_characters,
            500
        );
        assert_eq!(
            limits(Software::Mastodon, reported, None).characters_reserved_per_url,
            23
        );
    }
}

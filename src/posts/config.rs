//! Reads `config.toml` into validated settings, or into every problem found, each with line and column.
//!
//! Two steps, as in the rest of the crate: serde fills raw structs that mirror the file
//! (`deny_unknown_fields`, every value `Spanned` so it can be pointed at), then
//! `validate` turns them into domain types that cannot hold an invalid value.
//! Relative paths in the file are relative to the file's own folder, so
//! `/etc/perennial/config.toml` with `dir = "posts"` means `/etc/perennial/posts`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::civil::{self, Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, SpanRelativeTo};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::posts::diagnostic::{self, Diagnostic};

/// Who may see a status, from most to least public (the order is used to pick the more private).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Unlisted,
    Private,
    Direct,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Unlisted => "unlisted",
            Visibility::Private => "private",
            Visibility::Direct => "direct",
        }
    }
}

/// What to do with a post longer than the server allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LongPosts {
    Truncate,
    Thread,
}

/// `software` in `[server]`: detected from the server, or fixed by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftwareSetting {
    Auto,
    Fixed(Software),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The server's base URL as written, without a trailing slash.
    pub url: String,
    pub software: SoftwareSetting,
    pub max_characters: Option<usize>,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct PostsConfig {
    /// The posts directory, resolved against the config file's folder.
    pub dir: PathBuf,
    pub language: String,
    /// Never `Direct`: posts are for followers, not for a person.
    pub visibility: Visibility,
    /// Without `#`.
    pub hashtags: Vec<String>,
    pub long_posts: LongPosts,
    pub max_thread: usize,
}

/// When slots happen: wall-clock times on some weekdays, or a fixed interval.
#[derive(Debug, Clone, PartialEq)]
pub enum Slots {
    Times {
        times: Vec<Time>,
        days: Vec<Weekday>,
    },
    Every(SignedDuration),
}

/// Inclusive date range in the schedule's time zone during which nothing is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blackout {
    pub first: Date,
    pub last: Date,
}

#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    pub timezone: TimeZone,
    /// The IANA name as written, for display.
    pub timezone_name: String,
    pub slots: Slots,
    pub jitter: SignedDuration,
    pub grace: SignedDuration,
    pub repeat_after: SignedDuration,
    pub blackout: Vec<Blackout>,
    /// Category → weight (> 0); categories not listed weigh 1.
    pub weights: BTreeMap<String, f64>,
}

impl ScheduleConfig {
    pub fn weight_of(&self, category: &str) -> f64 {
        self.weights.get(category).copied().unwrap_or(1.0)
    }
}

#[derive(Debug, Clone)]
pub struct MentionsConfig {
    pub enabled: bool,
    pub reply_visibility: Visibility,
    pub ignore_bots: bool,
    pub per_account_per_hour: u32,
    pub per_hour: u32,
    pub first_start_lookback: SignedDuration,
    pub poll_every: SignedDuration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guide {
    pub topic: String,
    /// Lower-cased, trimmed, never empty.
    pub keywords: Vec<String>,
    pub title: String,
    pub url: String,
}

#[derive(Debug, Clone)]
pub struct StateConfig {
    /// Resolved against the config file's folder; `$STATE_DIRECTORY` overrides it at run time.
    pub dir: PathBuf,
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub server: ServerConfig,
    pub posts: PostsConfig,
    pub schedule: ScheduleConfig,
    pub mentions: MentionsConfig,
    pub guides: Vec<Guide>,
    pub state: StateConfig,
}

/// The smallest sensible notification poll: Mastodon allows 300 paged requests per 15 minutes.
const MIN_POLL_EVERY: SignedDuration = SignedDuration::from_secs(10);
/// The shortest `grace`. A slot is due from its time until `grace` after it, and the daemon
/// always wakes a moment after the slot (a timer is never early, and the posts are read
/// again before composing), so with `grace = "0s"` every slot is already missed when it is
/// looked at. Ten seconds is orders of magnitude more than that moment on a loaded machine,
/// and still lets the daemon be tried out with `every = "1s"`.
pub const MIN_GRACE: SignedDuration = SignedDuration::from_secs(10);
/// A thread longer than this is a blog post, not a toot.
const MAX_THREAD_LIMIT: usize = 20;

impl Config {
    /// Reads and validates the config file. Errors are every problem found, for exit code 78.
    pub fn load(path: &Path) -> Result<Config, Vec<Diagnostic>> {
        let bytes = std::fs::read(path).map_err(|error| {
            vec![
                Diagnostic::at_start(path, format!("cannot read the configuration file: {error}"))
                    .with_hint("pass the right file with --config PATH"),
            ]
        })?;
        let source = diagnostic::decode_utf8(path, bytes).map_err(|d| vec![d])?;
        Config::parse(path, &source)
    }

    /// Validates `source`, the text of the file at `path` (only used for messages and to
    /// resolve relative paths).
    pub fn parse(path: &Path, source: &str) -> Result<Config, Vec<Diagnostic>> {
        let text = source.strip_prefix('\u{feff}').unwrap_or(source);
        let bom = source.len() - text.len();
        let raw: RawConfig = toml::from_str(text)
            .map_err(|error| vec![diagnostic::from_toml_error(path, source, bom, &error)])?;
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut checker = Checker {
            path,
            source,
            bom,
            errors: Vec::new(),
        };
        let config = checker.config(raw, &base);
        checker.errors.sort_by_key(|d| (d.line, d.column));
        if checker.errors.is_empty() {
            Ok(config.expect("a config with no errors is complete"))
        } else {
            Err(checker.errors)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Raw structs: exactly the file's shape.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    #[serde(default)]
    posts: RawPosts,
    #[serde(default)]
    schedule: RawSchedule,
    #[serde(default)]
    mentions: RawMentions,
    #[serde(default)]
    guides: Vec<RawGuide>,
    #[serde(default)]
    state: RawState,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    url: Spanned<String>,
    software: Option<Spanned<RawSoftware>>,
    max_characters: Option<Spanned<i64>>,
    token_file: Option<Spanned<String>>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawSoftware {
    Auto,
    Mastodon,
    Gotosocial,
    Pleroma,
    Akkoma,
    Generic,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPosts {
    dir: Option<Spanned<String>>,
    language: Option<Spanned<String>>,
    visibility: Option<Spanned<Visibility>>,
    hashtags: Option<Vec<Spanned<String>>>,
    long_posts: Option<LongPosts>,
    max_thread: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    timezone: Option<Spanned<String>>,
    times: Option<Spanned<Vec<Spanned<String>>>>,
    days: Option<Spanned<Vec<Spanned<String>>>>,
    every: Option<Spanned<String>>,
    jitter: Option<Spanned<String>>,
    grace: Option<Spanned<String>>,
    repeat_after: Option<Spanned<String>>,
    blackout: Option<Vec<Spanned<String>>>,
    weights: Option<BTreeMap<Spanned<String>, Spanned<f64>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMentions {
    enabled: Option<bool>,
    reply_visibility: Option<Visibility>,
    ignore_bots: Option<bool>,
    per_account_per_hour: Option<Spanned<i64>>,
    per_hour: Option<Spanned<i64>>,
    first_start_lookback: Option<Spanned<String>>,
    poll_every: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuide {
    topic: Spanned<String>,
    keywords: Spanned<Vec<Spanned<String>>>,
    title: Spanned<String>,
    url: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawState {
    dir: Option<Spanned<String>>,
}

// ---------------------------------------------------------------------------------------
// Validation: raw → domain, collecting every error.

struct Checker<'a> {
    path: &'a Path,
    source: &'a str,
    bom: usize,
    errors: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error<T>(&mut self, spanned: &Spanned<T>, message: String, hint: &str) {
        let diagnostic = Diagnostic::at_offset(
            self.path,
            self.source,
            self.bom + spanned.span().start,
            message,
        );
        self.errors.push(if hint.is_empty() {
            diagnostic
        } else {
            diagnostic.with_hint(hint)
        });
    }

    fn config(&mut self, raw: RawConfig, base: &Path) -> Option<Config> {
        let server = self.server(raw.server, base);
        let posts = self.posts(raw.posts, base);
        let schedule = self.schedule(raw.schedule);
        let mentions = self.mentions(raw.mentions);
        let guides = self.guides(raw.guides);
        let state = StateConfig {
            dir: resolve(
                base,
                raw.state.dir.as_ref().map_or("state", |d| d.get_ref()),
            ),
        };
        Some(Config {
            path: self.path.to_path_buf(),
            server: server?,
            posts: posts?,
            schedule: schedule?,
            mentions: mentions?,
            guides,
            state,
        })
    }

    fn server(&mut self, raw: RawServer, base: &Path) -> Option<ServerConfig> {
        let url = self.http_url(&raw.url, "https://fosstodon.org");
        let software = match raw.software.map(|s| *s.get_ref()) {
            None | Some(RawSoftware::Auto) => SoftwareSetting::Auto,
            Some(RawSoftware::Mastodon) => SoftwareSetting::Fixed(Software::Mastodon),
            Some(RawSoftware::Gotosocial) => SoftwareSetting::Fixed(Software::Gotosocial),
            Some(RawSoftware::Pleroma) => SoftwareSetting::Fixed(Software::Pleroma),
            Some(RawSoftware::Akkoma) => SoftwareSetting::Fixed(Software::Akkoma),
            Some(RawSoftware::Generic) => SoftwareSetting::Fixed(Software::Generic),
        };
        let max_characters = raw
            .max_characters
            .as_ref()
            .and_then(|m| self.count_in(m, 1, 1_000_000, "max_characters"));
        let token_file = raw.token_file.map(|t| resolve(base, t.get_ref()));
        Some(ServerConfig {
            url: url?.trim_end_matches('/').to_string(),
            software,
            max_characters: max_characters.map(|m| m as usize),
            token_file,
        })
    }

    fn posts(&mut self, raw: RawPosts, base: &Path) -> Option<PostsConfig> {
        let dir = resolve(base, raw.dir.as_ref().map_or("posts", |d| d.get_ref()));
        let language = match &raw.language {
            None => Some("en".to_string()),
            Some(language) => self.language(language),
        };
        let visibility = match raw.visibility {
            None => Visibility::Public,
            Some(v) if *v.get_ref() == Visibility::Direct => {
                self.error(
                    &v,
                    "posts cannot be `direct`: that would send them to nobody".into(),
                    "use public, unlisted or private",
                );
                Visibility::Public
            }
            Some(v) => *v.get_ref(),
        };
        let hashtags = raw
            .hashtags
            .unwrap_or_default()
            .iter()
            .filter_map(|tag| self.hashtag(tag))
            .collect();
        let max_thread = match &raw.max_thread {
            None => Some(5),
            Some(m) => self.count_in(m, 1, MAX_THREAD_LIMIT as i64, "max_thread"),
        };
        Some(PostsConfig {
            dir,
            language: language?,
            visibility,
            hashtags,
            long_posts: raw.long_posts.unwrap_or(LongPosts::Truncate),
            max_thread: max_thread? as usize,
        })
    }

    fn schedule(&mut self, raw: RawSchedule) -> Option<ScheduleConfig> {
        let (timezone, timezone_name) = self.timezone(&raw.timezone);
        let slots = self.slots(&raw);
        let jitter = self.duration_or(&raw.jitter, SignedDuration::ZERO);
        let grace = self.duration_or(&raw.grace, SignedDuration::from_mins(30));
        let repeat_after = self.duration_or(&raw.repeat_after, SignedDuration::from_hours(30 * 24));
        let blackout = raw
            .blackout
            .unwrap_or_default()
            .iter()
            .filter_map(|range| self.blackout(range))
            .collect();
        let weights = self.weights(raw.weights.unwrap_or_default());
        if let Some(raw_grace) = &raw.grace {
            self.check_grace(raw_grace, grace);
        }
        // `jitter` needs no check against `grace`: a slot's `grace` counts from its
        // jittered time (`plan.rs`), so jitter never pushes a slot out of its window.
        if let (Some(Slots::Every(every)), Some(raw_jitter)) = (&slots, &raw.jitter) {
            if jitter >= *every {
                self.error(
                    raw_jitter,
                    "`jitter` must be shorter than `every`".into(),
                    "otherwise slots could swap places",
                );
            }
        }
        Some(ScheduleConfig {
            timezone,
            timezone_name,
            slots: slots?,
            jitter,
            grace,
            repeat_after,
            blackout,
            weights,
        })
    }

    /// The time zone and its name as written; UTC when there is none (or it is unknown).
    fn timezone(&mut self, raw: &Option<Spanned<String>>) -> (TimeZone, String) {
        let utc = || (TimeZone::UTC, "UTC".to_string());
        let Some(name) = raw else {
            return utc();
        };
        if let Ok(tz) = TimeZone::get(name.get_ref()) {
            return (tz, name.get_ref().clone());
        }
        // A typo gets the closest name in the time zone database.
        let names: Vec<String> = jiff::tz::db()
            .available()
            .map(|name| name.as_str().to_string())
            .collect();
        let hint = match crate::posts::diagnostic::closest_match(
            name.get_ref(),
            names.iter().map(String::as_str),
        ) {
            Some(best) => format!("did you mean \"{best}\"?"),
            None => "use an IANA name such as \"America/Denver\" or \"Europe/Berlin\"".to_string(),
        };
        self.error(
            name,
            format!("unknown time zone `{}`", name.get_ref()),
            &hint,
        );
        utc()
    }

    /// Category → weight, each above 0.
    fn weights(&mut self, raw: BTreeMap<Spanned<String>, Spanned<f64>>) -> BTreeMap<String, f64> {
        let mut weights = BTreeMap::new();
        for (category, weight) in raw {
            let value = *weight.get_ref();
            if value.is_finite() && value > 0.0 {
                weights.insert(category.into_inner(), value);
                continue;
            }
            self.error(
                &weight,
                format!(
                    "the weight of `{}` must be a number above 0",
                    category.get_ref()
                ),
                "1 is the default; 2 posts that category twice as often",
            );
        }
        weights
    }

    fn check_grace(&mut self, raw: &Spanned<String>, grace: SignedDuration) {
        if grace >= MIN_GRACE {
            return;
        }
        self.error(
            raw,
            format!(
                "`grace` must be at least {}s, not `{}`",
                MIN_GRACE.as_secs(),
                raw.get_ref()
            ),
            "a slot is posted only while the daemon is at most `grace` late, and it always wakes a moment after the slot: with less, every slot would be missed; \"30m\" is the default",
        );
    }

    fn slots(&mut self, raw: &RawSchedule) -> Option<Slots> {
        match (&raw.every, &raw.times) {
            (Some(every), Some(times)) => {
                self.error(
                    times,
                    "`times` and `every` cannot both be set".into(),
                    "keep `times` (with `days`) for wall-clock slots, or `every` for an interval",
                );
                self.duration(every);
                None
            }
            (Some(every), None) => self.every_slots(every, &raw.days),
            (None, times) => self.times_slots(times, &raw.days),
        }
    }

    /// `every`: slots at a fixed interval.
    fn every_slots(
        &mut self,
        every: &Spanned<String>,
        days: &Option<Spanned<Vec<Spanned<String>>>>,
    ) -> Option<Slots> {
        if let Some(days) = days {
            self.error(
                days,
                "`days` only applies to `times`, not to `every`".into(),
                "remove `days`, or use `times`",
            );
        }
        let duration = self.duration(every)?;
        // Seconds are allowed for trying the daemon out (and for its end-to-end
        // tests); Mastodon's 300 statuses per 3 hours stop anything faster than 36 s.
        if duration < SignedDuration::from_secs(1) {
            self.error(every, "`every` must be at least 1 second".into(), "");
            return None;
        }
        Some(Slots::Every(duration))
    }

    /// `times` on `days`: wall-clock slots (09:30 and 15:30 every day by default).
    fn times_slots(
        &mut self,
        times: &Option<Spanned<Vec<Spanned<String>>>>,
        days: &Option<Spanned<Vec<Spanned<String>>>>,
    ) -> Option<Slots> {
        let mut times: Vec<Time> = match times {
            None => vec![civil::time(9, 30, 0, 0), civil::time(15, 30, 0, 0)],
            Some(list) => self.distinct(list, &TIMES, parse_clock_time),
        };
        times.sort();
        let mut days: Vec<Weekday> = match days {
            None => ALL_DAYS.to_vec(),
            Some(list) => self.distinct(list, &DAYS, parse_weekday),
        };
        days.sort_by_key(|d| d.to_monday_zero_offset());
        (!times.is_empty() && !days.is_empty()).then_some(Slots::Times { times, days })
    }

    /// The values of a list such as `times` or `days`, each once, in the order written; an
    /// empty list, an item listed twice and an item that is not one are errors.
    fn distinct<T: PartialEq>(
        &mut self,
        list: &Spanned<Vec<Spanned<String>>>,
        words: &ListWords,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Vec<T> {
        if list.get_ref().is_empty() {
            self.error(list, format!("`{}` is empty", words.key), words.example);
        }
        let mut values = Vec::new();
        for item in list.get_ref() {
            match self.parsed(item, &parse, words.not_one, words.hint) {
                Some(value) if !values.contains(&value) => values.push(value),
                Some(_) => self.error(item, format!("`{}` is listed twice", item.get_ref()), ""),
                None => {}
            }
        }
        values
    }

    fn mentions(&mut self, raw: RawMentions) -> Option<MentionsConfig> {
        let per_account_per_hour = match &raw.per_account_per_hour {
            None => Some(3),
            Some(n) => self.count_in(n, 0, 1000, "per_account_per_hour"),
        };
        let per_hour = match &raw.per_hour {
            None => Some(60),
            Some(n) => self.count_in(n, 0, 10_000, "per_hour"),
        };
        let first_start_lookback =
            self.duration_or(&raw.first_start_lookback, SignedDuration::from_hours(1));
        let poll_every = self.duration_or(&raw.poll_every, SignedDuration::from_mins(5));
        if let Some(raw_poll) = &raw.poll_every {
            if poll_every < MIN_POLL_EVERY {
                self.error(
                    raw_poll,
                    "`poll_every` must be at least 10s".into(),
                    "servers limit paged requests (Mastodon: 300 per 15 minutes); 5m is plenty",
                );
            }
        }
        Some(MentionsConfig {
            enabled: raw.enabled.unwrap_or(true),
            reply_visibility: raw.reply_visibility.unwrap_or(Visibility::Unlisted),
            ignore_bots: raw.ignore_bots.unwrap_or(true),
            per_account_per_hour: per_account_per_hour? as u32,
            per_hour: per_hour? as u32,
            first_start_lookback,
            poll_every,
        })
    }

    fn guides(&mut self, raw: Vec<RawGuide>) -> Vec<Guide> {
        let mut guides = Vec::new();
        let mut topics: Vec<String> = Vec::new();
        for guide in raw {
            let topic = self.topic(&guide.topic, &topics);
            topics.push(topic.clone());
            let keywords = self.keywords(&guide.keywords);
            let title = guide.title.get_ref().trim().to_string();
            if title.is_empty() {
                self.error(
                    &guide.title,
                    "`title` is empty".into(),
                    "the guide's name as people know it",
                );
            }
            let url = self.http_url(
                &guide.url,
                "https://www.pyopensci.org/python-package-guide/",
            );
            if let Some(url) = url {
                guides.push(Guide {
                    topic,
                    keywords,
                    title,
                    url,
                });
            }
        }
        guides
    }

    /// A guide's topic, trimmed; empty or one of `topics` (the guides' before it) is an error.
    fn topic(&mut self, raw: &Spanned<String>, topics: &[String]) -> String {
        let topic = raw.get_ref().trim().to_string();
        if topic.is_empty() {
            self.error(
                raw,
                "`topic` is empty".into(),
                "a word or two, e.g. \"packaging\"",
            );
        } else if topics.contains(&topic) {
            self.error(
                raw,
                format!("the topic `{topic}` appears twice"),
                "merge the two guides or rename one topic",
            );
        }
        topic
    }

    /// A guide's keywords, trimmed and lower-cased; none at all, or an empty one, is an error.
    fn keywords(&mut self, raw: &Spanned<Vec<Spanned<String>>>) -> Vec<String> {
        if raw.get_ref().is_empty() {
            self.error(
                raw,
                "`keywords` is empty: this guide could never be suggested".into(),
                "list the words people use when they ask, e.g. [\"packaging\", \"pypi\"]",
            );
        }
        let mut keywords = Vec::new();
        for keyword in raw.get_ref() {
            let normalized = keyword.get_ref().trim().to_lowercase();
            if normalized.is_empty() {
                self.error(keyword, "a keyword is empty".into(), "remove it");
            } else {
                keywords.push(normalized);
            }
        }
        keywords
    }

    fn blackout(&mut self, range: &Spanned<String>) -> Option<Blackout> {
        let text = range.get_ref().trim();
        let (first, last) = text.split_once("..").unwrap_or((text, text));
        let hint =
            "write \"YYYY-MM-DD..YYYY-MM-DD\" (both days included) or a single \"YYYY-MM-DD\"";
        match (first.trim().parse::<Date>(), last.trim().parse::<Date>()) {
            (Ok(first), Ok(last)) if first <= last => Some(Blackout { first, last }),
            (Ok(_), Ok(_)) => {
                self.error(
                    range,
                    format!("the blackout `{text}` ends before it starts"),
                    hint,
                );
                None
            }
            _ => {
                self.error(range, format!("`{text}` is not a date range"), hint);
                None
            }
        }
    }

    fn duration_or(
        &mut self,
        raw: &Option<Spanned<String>>,
        default: SignedDuration,
    ) -> SignedDuration {
        raw.as_ref()
            .and_then(|text| self.duration(text))
            .unwrap_or(default)
    }

    /// What `parse` reads in `raw`'s text, or an error at it: "`text` is not {not_one}".
    fn parsed<T>(
        &mut self,
        raw: &Spanned<String>,
        parse: impl FnOnce(&str) -> Option<T>,
        not_one: &str,
        hint: &str,
    ) -> Option<T> {
        let value = parse(raw.get_ref());
        if value.is_none() {
            self.error(raw, format!("`{}` is not {not_one}", raw.get_ref()), hint);
        }
        value
    }

    fn duration(&mut self, raw: &Spanned<String>) -> Option<SignedDuration> {
        self.parsed(
            raw,
            parse_duration,
            "a duration",
            "write a number and a unit: \"90s\", \"10m\", \"6h\", \"30d\", or \"1h 30m\"",
        )
    }

    fn count_in(&mut self, raw: &Spanned<i64>, low: i64, high: i64, key: &str) -> Option<i64> {
        let value = *raw.get_ref();
        if (low..=high).contains(&value) {
            Some(value)
        } else {
            self.error(
                raw,
                format!("`{key}` must be between {low} and {high}, not {value}"),
                "",
            );
            None
        }
    }

    fn http_url(&mut self, raw: &Spanned<String>, example: &str) -> Option<String> {
        let text = raw.get_ref().trim();
        match url::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some(text.to_string())
            }
            _ => {
                self.error(
                    raw,
                    format!("`{text}` is not an http(s) URL"),
                    &format!("write the full address, e.g. \"{example}\""),
                );
                None
            }
        }
    }

    fn language(&mut self, raw: &Spanned<String>) -> Option<String> {
        self.parsed(
            raw,
            |code| is_language_code(code).then(|| code.to_string()),
            "a language code",
            "use a two- or three-letter ISO 639 code such as \"en\" or \"es\"",
        )
    }

    fn hashtag(&mut self, raw: &Spanned<String>) -> Option<String> {
        self.parsed(
            raw,
            normalize_hashtag,
            "a hashtag",
            "letters, digits and _ only, not only digits, e.g. \"OpenScience\"",
        )
    }
}

/// How the messages about a list of `times` or `days` name it and its items.
struct ListWords {
    key: &'static str,
    /// The hint for an empty list.
    example: &'static str,
    /// What an item that cannot be read is not.
    not_one: &'static str,
    /// The hint for such an item.
    hint: &'static str,
}

const TIMES: ListWords = ListWords {
    key: "times",
    example: "e.g. times = [\"09:30\"]",
    not_one: "a time of day",
    hint: "write 24-hour HH:MM, e.g. \"09:30\" or \"15:30\"",
};

const DAYS: ListWords = ListWords {
    key: "days",
    example: "e.g. days = [\"mon\", \"wed\"]",
    not_one: "a day of the week",
    hint: "use mon, tue, wed, thu, fri, sat, sun",
};

const ALL_DAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

fn resolve(base: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// `HH:MM` in 24-hour time (also `H:MM`); seconds are not allowed, they would only confuse.
pub fn parse_clock_time(text: &str) -> Option<Time> {
    let (hours, minutes) = text.trim().split_once(':')?;
    if hours.is_empty() || hours.len() > 2 || minutes.len() != 2 {
        return None;
    }
    let hours: i8 = hours.parse().ok()?;
    let minutes: i8 = minutes.parse().ok()?;
    Time::new(hours, minutes, 0, 0).ok()
}

/// `mon`…`sun`, or the full English name, any case.
pub fn parse_weekday(text: &str) -> Option<Weekday> {
    let lower = text.trim().to_ascii_lowercase();
    let days = [
        ("mon", Weekday::Monday),
        ("tue", Weekday::Tuesday),
        ("wed", Weekday::Wednesday),
        ("thu", Weekday::Thursday),
        ("fri", Weekday::Friday),
        ("sat", Weekday::Saturday),
        ("sun", Weekday::Sunday),
    ];
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    days.iter()
        .zip(full)
        .find(|((short, _), long)| lower == *short || lower == *long)
        .map(|((_, day), _)| *day)
}

/// A friendly duration such as "10m", "6h", "30d", "1h 30m" (days are 24 hours). Not negative.
pub fn parse_duration(text: &str) -> Option<SignedDuration> {
    let span: Span = text.trim().parse().ok()?;
    let duration = span.to_duration(SpanRelativeTo::days_are_24_hours()).ok()?;
    (!duration.is_negative()).then_some(duration)
}

/// ISO 639-1 or 639-3: what Mastodon accepts as a status language.
pub fn is_language_code(text: &str) -> bool {
    (2..=3).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_lowercase())
}

/// `#Tag` or `Tag` → `Tag`, if it is a hashtag Mastodon would link: word characters,
/// not all digits.
pub fn normalize_hashtag(text: &str) -> Option<String> {
    let tag = text.trim().strip_prefix('#').unwrap_or(text.trim());
    let valid = !tag.is_empty()
        && tag.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !tag.chars().all(|c| c.is_ascii_digit());
    valid.then(|| tag.to_string())
}

/// The server software whose counting rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Software {
    Mastodon,
    Gotosocial,
    Pleroma,
    Akkoma,
    Generic,
}

/// The config's spelling of a software (`[server] software`).
pub fn software_name(software: Software) -> &'static str {
    match software {
        Software::Mastodon => "mastodon",
        Software::Gotosocial => "gotosocial",
        Software::Pleroma => "pleroma",
        Software::Akkoma => "akkoma",
        Software::Generic => "generic",
    }
}

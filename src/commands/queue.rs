//! `perennial queue`: the upcoming plan from the current state, with how each post fits.

use std::io::Write;
use std::path::Path;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;

use crate::commands::check::load_config;
use crate::commands::cli::{exit, Format, QueueArgs};
use crate::plan::{plan, seed_for, Entry, Missed, PlanInput};
use crate::posts::config::software_name;
use crate::posts::config::Config;
use crate::posts::library::load_configured;
use crate::posts::library::Library;
use crate::state::fit::{offline_fit, open_state};
use crate::state::{PostReason, State};
use crate::text::compose::compose;
use crate::text::compose::{fit_settings, FitSettings};

/// More entries than anyone reads (`every = "2s"` for 14 days would be 600,000).
const MAX_ENTRIES: usize = 1000;

/// Every time in the JSON is RFC 3339 with the zone's offset and whole seconds
/// (`2027-02-01T09:30:00-07:00`), which Python's `datetime.fromisoformat` and JavaScript's
/// `Date` read; the zone's name is given once, in `timezone`.
#[derive(Debug, Serialize)]
pub struct QueueReport {
    pub timezone: String,
    #[serde(serialize_with = "rfc3339")]
    pub from: jiff::Zoned,
    #[serde(serialize_with = "rfc3339")]
    pub until: jiff::Zoned,
    pub entries: Vec<QueueEntry>,
    /// What was missed while the daemon was not running (not yet seen by it).
    pub missed: Vec<String>,
    /// A post in flight that the daemon will check against the server at start.
    pub pending: Option<String>,
    /// Post id and server message of each post that the server refused.
    pub failed: Vec<(String, String)>,
    /// Post files left out because they have problems (`perennial check` tells which).
    pub files_with_errors: usize,
    pub truncated: bool,
    /// The rules posts were fitted with (`mastodon`, `gotosocial`, ...).
    pub software: &'static str,
    /// Where they came from: what the daemon saw of the server, or the defaults.
    pub fitted: String,
}

#[derive(Debug, Serialize)]
pub struct QueueEntry {
    /// RFC 3339 with the zone's offset.
    #[serde(serialize_with = "rfc3339")]
    pub at: jiff::Zoned,
    pub reason: PostReason,
    /// `None`: a slot with nothing eligible to post.
    pub post: Option<String>,
    pub category: Option<String>,
    /// "as is", "truncated", "thread of 3", ...
    pub fit: Option<String>,
    pub statuses: usize,
    /// The longest status, counted as the server will.
    pub length: usize,
    pub limit: usize,
    /// Why the post would not be sent, if it would not (the daemon fails it instead).
    pub unsendable: Option<String>,
}

/// `2027-02-01T09:30:00-07:00`: RFC 3339 with the offset, without the zone's name in
/// brackets (RFC 9557) that RFC 3339 parsers refuse, and without fractions of a second.
fn rfc3339<S: serde::Serializer>(at: &jiff::Zoned, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&at.strftime("%Y-%m-%dT%H:%M:%S%:z"))
}

pub fn run(config_path: &Path, args: &crate::commands::cli::QueueArgs) -> u8 {
    let mut out = std::io::stdout().lock();
    let Some(config) = load_config(&mut out, Format::Human, config_path) else {
        return exit::CONFIG;
    };
    let state = match open_state(&config).load() {
        Ok(state) => state.unwrap_or_default(),
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error}");
            return exit::FAILURE;
        }
    };
    let library = load_configured(
        &config,
        crate::state::fit::media_limits_seen(&config, state.server.as_ref()),
    );
    let now = args.from.unwrap_or_else(Timestamp::now);
    let report = queue_report(&config, &library, &state, now, args);
    if !args.json {
        eprintln!("{}", report.fitted);
    }
    let _ = if args.json {
        serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        print_human(&mut out, &report)
    };
    exit::OK
}

/// The report `queue` prints, from already loaded inputs.
pub fn queue_report(
    config: &Config,
    library: &Library,
    state: &State,
    now: Timestamp,
    args: &QueueArgs,
) -> QueueReport {
    // A renamed post keeps its history, as the daemon will see it (the file is not written).
    let mut state = state.clone();
    crate::state::follow_renames(library, &mut state);
    let state = &state;
    let zone = config.schedule.timezone.clone();
    let until = now
        .to_zoned(zone.clone())
        .checked_add((args.days as i64).days())
        .map(|zoned| zoned.timestamp())
        .unwrap_or(Timestamp::MAX);
    let input = PlanInput {
        posts: &library.posts,
        schedule: &config.schedule,
        seed: seed_for(&config.server.url),
        state,
        now,
    };
    let plan = plan(&input, until, MAX_ENTRIES);
    let fit = offline_fit(config, state.server.as_ref());
    let settings = fit_settings(config, &fit.counter);
    let entries = plan
        .entries
        .iter()
        .map(|entry| queue_entry(entry, library, &settings, &zone))
        .collect();
    let stale = stale_adhoc_lines(config, library, state, now, &plan.missed);
    let missed = plan
        .missed
        .iter()
        .map(|missed| missed_line(missed, &zone))
        .chain(stale)
        .collect();
    QueueReport {
        timezone: config.schedule.timezone_name.clone(),
        from: now.to_zoned(zone.clone()),
        until: until.to_zoned(zone.clone()),
        truncated: plan.entries.len() >= MAX_ENTRIES,
        entries,
        missed,
        pending: state.pending.as_ref().map(|pending| pending.post.clone()),
        failed: still_failed(library, state),
        files_with_errors: files_with_errors(library),
        software: software_name(fit.counter.software()),
        fitted: fit.source.clone(),
    }
}

/// One planned entry with how its post fits, composed as it would be sent (nothing for a
/// slot that stays empty).
fn queue_entry(
    entry: &Entry,
    library: &Library,
    settings: &FitSettings,
    zone: &TimeZone,
) -> QueueEntry {
    let post = entry
        .post
        .as_ref()
        .and_then(|id| library.posts.iter().find(|post| &post.id == id));
    let composed = post.map(|post| compose(post, settings));
    QueueEntry {
        at: entry.at.to_zoned(zone.clone()),
        reason: entry.reason,
        post: entry.post.clone(),
        category: entry.category.clone(),
        fit: composed.as_ref().map(|c| c.fit.to_string()),
        statuses: composed.as_ref().map_or(0, |c| c.statuses.len()),
        length: composed
            .as_ref()
            .and_then(|c| c.statuses.iter().map(|s| s.length).max())
            .unwrap_or(0),
        limit: settings.counter.limit(),
        unsendable: composed.as_ref().and_then(|c| c.unsendable()),
    }
}

/// What the plan says was missed while the daemon was not running, as a sentence.
fn missed_line(missed: &Missed, zone: &TimeZone) -> String {
    match missed {
        Missed::Slots { count, first, last } => format!(
            "{count} slot(s) from {} to {} (the daemon was not running); they are skipped",
            short_time(*first, zone),
            short_time(*last, zone)
        ),
        Missed::Adhoc { post, at } => format!(
            "ad hoc post {post} was due {} (more than `grace` ago); it is skipped",
            short_time(*at, zone)
        ),
    }
}

/// Ad hoc posts whose time passed without them going out, also when that was before the
/// daemon last looked (or it never ran): they will never go out at their time. Those the
/// plan already counts as `missed` are left to [`missed_line`].
fn stale_adhoc_lines(
    config: &Config,
    library: &Library,
    state: &State,
    now: Timestamp,
    missed: &[Missed],
) -> Vec<String> {
    let zone = &config.schedule.timezone;
    crate::plan::stale_adhoc(&library.posts, state, now, config.schedule.grace)
        .into_iter()
        .filter(|stale| {
            !missed.iter().any(|missed| {
                matches!(missed, Missed::Adhoc { post, at } if *post == stale.post && *at == stale.at)
            })
        })
        .map(|stale| {
            format!(
                "ad hoc post {} was due {} and was not sent: {}",
                stale.post,
                short_time(stale.at, zone),
                stale.consequence()
            )
        })
        .collect()
}

/// Post id and server message of each post the server refused, while its file is the
/// version refused (an edited file is tried again, so it is not left out).
fn still_failed(library: &Library, state: &State) -> Vec<(String, String)> {
    state
        .failed
        .iter()
        .filter(|(id, failed)| {
            library
                .posts
                .iter()
                .any(|post| &post.id == *id && post.content_hash == failed.hash)
        })
        .map(|(id, failed)| (id.clone(), failed.message.clone()))
        .collect()
}

/// How many post files have a problem (and so are left out of the plan).
fn files_with_errors(library: &Library) -> usize {
    library
        .files
        .iter()
        .filter(|(_, file)| library.errors.iter().any(|error| &error.file == file))
        .count()
}

fn short_time(at: Timestamp, zone: &jiff::tz::TimeZone) -> String {
    at.to_zoned(zone.clone())
        .strftime("%a %Y-%m-%d %H:%M")
        .to_string()
}

/// The plan for people: the span and zone, what is in flight or was missed, one aligned line
/// per entry, then what is left out of the plan.
fn print_human(out: &mut impl Write, report: &QueueReport) -> std::io::Result<()> {
    let zone = jiff::tz::TimeZone::get(&report.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    writeln!(
        out,
        "Plan from {} to {} ({}):",
        short_time(report.from.timestamp(), &zone),
        short_time(report.until.timestamp(), &zone),
        report.timezone
    )?;
    if let Some(pending) = &report.pending {
        writeln!(
            out,
            "  in flight: {pending} (checked against the server's statuses before anything is resent)"
        )?;
    }
    for missed in &report.missed {
        writeln!(out, "  missed: {missed}")?;
    }
    print_entries(out, &report.entries)?;
    if report.truncated {
        writeln!(out, "  … only the first {MAX_ENTRIES} entries are shown")?;
    }
    for (post, message) in &report.failed {
        writeln!(
            out,
            "  left out: {post} was refused by the server ({message}); edit the file to try again"
        )?;
    }
    if report.files_with_errors > 0 {
        writeln!(
            out,
            "  left out: {} post file(s) with problems; run `perennial check`",
            report.files_with_errors
        )?;
    }
    Ok(())
}

/// One line per entry, the post and category columns as wide as their longest value: when,
/// why, the post, its category and how it fits (or why it would not be sent).
fn print_entries(out: &mut impl Write, entries: &[QueueEntry]) -> std::io::Result<()> {
    if entries.is_empty() {
        writeln!(out, "  nothing planned")?;
    }
    let width = entries
        .iter()
        .filter_map(|entry| entry.post.as_ref().map(String::len))
        .max()
        .unwrap_or(0);
    let category_width = entries
        .iter()
        .filter_map(|entry| entry.category.as_ref().map(String::len))
        .max()
        .unwrap_or(0);
    for entry in entries {
        let at = entry.at.strftime("%a %Y-%m-%d %H:%M");
        let reason = match entry.reason {
            PostReason::Slot => "slot  ",
            PostReason::Adhoc => "ad hoc",
            PostReason::Manual => "manual",
        };
        match (&entry.post, &entry.category, &entry.fit) {
            (Some(post), Some(category), Some(_)) if entry.unsendable.is_some() => writeln!(
                out,
                "  {at}  {reason}  {post:width$}  {category:category_width$}  {}",
                entry.unsendable.as_deref().unwrap_or_default()
            )?,
            (Some(post), Some(category), Some(fit)) => writeln!(
                out,
                "  {at}  {reason}  {post:width$}  {category:category_width$}  {fit} ({}/{})",
                entry.length, entry.limit
            )?,
            _ => writeln!(
                out,
                "  {at}  {reason}  (nothing eligible: the slot stays empty)"
            )?,
        }
    }
    Ok(())
}

//! Layer 6, **daemon**: the long-running process, and the only code besides a network that
//! does I/O at run time. It talks to a network only through [`crate::network::Network`] (it
//! never names one), sends exactly once only through [`engine`], and shows people what a dry
//! run would do only as [`Report`]s through the [`Printer`] its command gives it. It must not
//! know the commands.
//!
//! The daemon: load, connect, then plan → sleep until the next entry → compose → send
//! exactly once → record, until told to stop. Reloads posts and config on request
//! (SIGHUP, or a change under `posts/`) without a restart.
//!
//! The shape is mini-redis's purge task: one loop that `select!`s on "sleep until the
//! next entry", "the plan changed" and "stop". Everything it decides comes from
//! [`crate::plan`] (pure); sending is [`crate::daemon::publish`]; the state file is written by
//! [`crate::state`] only.

pub mod clock;
pub mod engine;
pub mod logging;
pub mod mentions;
pub mod publish;
pub mod systemd;
pub mod watch;

mod connect;
mod error;
mod main_loop;
mod posting;
mod reload;
mod replying;

use connect::*;
use error::*;
pub use error::{exit, RunError, CREDENTIAL_FILE_ENV_VAR};
use main_loop::*;
use replying::*;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::daemon::clock::Clock;
use crate::daemon::engine::Checkpoint;
use crate::daemon::mentions::{replies_at_once, Replier, ReplyOutcome};
use crate::daemon::publish::{
    new_intent, settings_fingerprint, IntentSpec, Outcome, Progress, Publisher,
};
use crate::daemon::systemd::Notifier;
use crate::network::retry::instant_after;
use crate::network::token::{load_token, TokenError, TokenSources};
use crate::network::{ConnectError, Mention, MentionStream, Network, ServerOptions, StreamEvent};
use crate::plan::mentions::{decide, new_reply_intent, record, Policy, Verdict};
use crate::plan::{
    plan, record_checked, record_entry, record_slot, seed_for, Entry, Missed, Plan, PlanInput,
};
use crate::posts::config::Config;
use crate::posts::library::load_configured;
use crate::posts::library::Library;
use crate::posts::post::MediaLimits;
use crate::posts::post::Post;
use crate::state::{
    resolve_state_dir, JournalEntry, MentionOutcome, PostReason, ReplyIntent, State, StateError,
    StateStore,
};
use crate::text::compose::compose;
use crate::text::compose::fit_settings;
use crate::text::count::Counter;
use crate::text::reply::ReplySettings;

/// `perennial run` flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Send nothing, need no token, write no state: print each status when it falls due.
    pub dry_run: bool,
    /// Post what is due now, if anything, then exit.
    pub once: bool,
}

/// What a dry run shows people. The daemon reports values; the command that runs it prints
/// them (`crate::commands::run`, through the printer `preview` uses), so nothing under
/// `daemon/` writes to standard output.
#[derive(Debug)]
pub enum Report<'a> {
    /// A sentence: what the dry run does, or would do.
    Note(String),
    /// A post, whole, as it would go out now (or next).
    Post {
        heading: String,
        post: &'a Post,
        composed: &'a crate::text::compose::Composed,
        limit: usize,
    },
    /// A reply it would send.
    Reply { heading: String, text: &'a str },
}

/// Where [`Report`]s go.
pub trait Printer: Send + Sync {
    fn show(&self, report: Report<'_>);
}

/// Everything the daemon takes from its surroundings, so tests can supply their own.
pub struct Environment {
    pub clock: Arc<dyn Clock>,
    pub token_sources: TokenSources,
    /// `$STATE_DIRECTORY`.
    pub state_directory: Option<OsString>,
    pub notifier: Notifier,
    pub request_timeout: Duration,
    /// Watch `posts/` and the config for changes (off in paused-time tests: inotify events
    /// arrive from another thread, in real time).
    pub watch_files: bool,
    pub checkpoint: Option<Checkpoint>,
    /// Where a dry run's reports go.
    pub printer: Arc<dyn Printer>,
}

impl Environment {
    /// The real surroundings: system clock, environment variables, `NOTIFY_SOCKET`; dry-run
    /// reports go to `printer`.
    pub fn from_process(printer: Arc<dyn Printer>) -> Environment {
        Environment {
            clock: Arc::new(clock::SystemClock),
            token_sources: TokenSources::from_env(None),
            state_directory: std::env::var_os("STATE_DIRECTORY"),
            notifier: Notifier::from_env(),
            request_timeout: crate::network::mastodon::DEFAULT_REQUEST_TIMEOUT,
            watch_files: true,
            checkpoint: None,
            printer,
        }
    }
}

/// How to stop the daemon or make it reload, from outside (signals, tests).
#[derive(Clone, Default)]
pub struct Controls {
    pub shutdown: CancellationToken,
    pub reload: Arc<Notify>,
    /// SIGHUPs received so far ([`Controls::request_reload`]); each finished reload writes
    /// the count it covers to [`RELOADED_FILE`], which `perennial reload` waits for.
    pub hangups: Arc<AtomicU64>,
}

impl Controls {
    /// A reload asked for from outside (SIGHUP): counted, then the daemon is woken.
    pub fn request_reload(&self) {
        self.hangups.fetch_add(1, Ordering::SeqCst);
        self.reload.notify_one();
    }
}

/// In the state directory: the daemon's process id and how many SIGHUPs its last finished
/// reload covers (`PID COUNT`, decimal). `perennial reload` (the units' `ExecReload=` on
/// systemd 252) reads it, sends SIGHUP, and returns once the count has grown: `systemctl
/// reload` then returns after the reload.
pub const RELOADED_FILE: &str = "reloaded";

/// How many entries the loop plans at a time: those due now (an ad hoc post and a slot can
/// fall due together, or one falls due while another is being sent) and the next.
const ENTRIES_AHEAD: usize = 8;
/// The longest the loop sleeps without looking at the wall clock again (a VM may be
/// suspended, or its clock set).
const MAX_SLEEP: Duration = Duration::from_secs(6 * 3600);
/// A notification cursor lower than any id: Mastodon's ids are numbers, GoToSocial's
/// ULIDs and Pleroma's flake ids compare as strings, and "0" sorts before all of them.
const CURSOR_BEFORE_EVERYTHING: &str = "0";
/// How far ahead the daemon plans (a sparse schedule may have its next slot weeks away).
const PLAN_AHEAD: SignedDuration = SignedDuration::from_hours(400 * 24);
/// Times in the state file up to this far ahead of the clock are left alone (a slot posted
/// early by its jitter is recorded at its nominal time); beyond it they were written with a
/// clock that was ahead, and are set to now.
const FUTURE_MARGIN: SignedDuration = SignedDuration::from_hours(2);
/// How often the ERROR line about a refused token is repeated while it lasts.
const TOKEN_ERROR_EVERY: Duration = Duration::from_secs(3600);
/// How many posts the server may refuse in one slot before the slot is given up: a server
/// refusing everything (a misconfigured proxy answering 400) must not fail the whole library
/// in one slot.
const MAX_REJECTIONS_PER_SLOT: u32 = 2;

/// Runs the daemon until `controls.shutdown` is cancelled (or, with `once`, until what is
/// due is done). On the way out `STATUS=` says it stopped (and why, on an error), so that
/// `systemctl status` of a stopped unit does not show the last "next: …" as if it still held.
pub async fn run(
    config_path: &Path,
    options: RunOptions,
    env: Environment,
    controls: Controls,
) -> Result<(), RunError> {
    let notifier = env.notifier.clone();
    let shutdown = controls.shutdown.clone();
    let result = run_until_stopped(config_path, options, env, controls).await;
    // Whatever ended it, the tasks it started (the watchdog's pings) end too.
    shutdown.cancel();
    match &result {
        Ok(()) => notifier.status("stopped"),
        Err(error) => {
            let first_line = error.to_string();
            let first_line = first_line.lines().next().unwrap_or_default();
            notifier.status(&format!(
                "stopped: {} (see the journal)",
                first_line.trim_end_matches(':')
            ));
        }
    }
    result
}

async fn run_until_stopped(
    config_path: &Path,
    options: RunOptions,
    env: Environment,
    controls: Controls,
) -> Result<(), RunError> {
    let mut config = load_config(config_path)?;
    let mut token_sources = env.token_sources.clone();
    token_sources.token_file = config.server.token_file.clone();
    let token = load_token(&token_sources)?;
    if token.is_none() && !options.dry_run {
        return Err(RunError::NoToken);
    }
    let store = StateStore::new(resolve_state_dir(
        env.state_directory.as_deref(),
        &config.state.dir,
    ));
    // A dry run only reads the state, and may run beside the real daemon.
    let _lock = if options.dry_run {
        None
    } else {
        Some(store.lock()?)
    };
    let state = load_state(&store, env.clock.now())?;
    // Pings from the start: while the server cannot be reached the daemon is already ready
    // (see `connect`), and systemd's watchdog runs from READY=1.
    let watchdog = spawn_watchdog(&env.notifier, &controls.shutdown);
    let mut reloaded = ReloadMarker::default();
    let waiting = Waiting {
        config_path,
        env: &env,
        controls: &controls,
        store: &store,
        token_sources: &token_sources,
    };
    let server = match waiting
        .network(&mut config, token.as_ref(), options.dry_run, &mut reloaded)
        .await?
    {
        Reached::Network(server) => Some(server),
        Reached::Offline => None,
        Reached::Stopped => return Ok(()),
    };
    if options.dry_run {
        dry_run_notes(&env, &config, token.is_some(), server.is_some());
    }
    let library = load_posts(&config, media_limits(&config, &state, server.as_deref()));
    let mentions = match &server {
        Some(server) if config.mentions.enabled => Some(MentionsRun::start(
            server.as_ref(),
            &state,
            &options,
            &controls,
        )),
        _ => None,
    };
    let mut daemon = Daemon {
        started: env.clock.now(),
        token_origin: token_origin(&token_sources),
        post_retry: None,
        token_refusal: None,
        rejected_in_slot: None,
        last_config_problems: None,
        announced: None,
        config_path: config_path.to_path_buf(),
        config,
        library,
        state,
        store,
        server,
        options,
        clock: env.clock.clone(),
        notifier: env.notifier.clone(),
        controls: controls.clone(),
        checkpoint: env.checkpoint.clone(),
        printer: env.printer.clone(),
        given_up: Vec::new(),
        mentions,
        reloaded,
        watching: env.watch_files && !options.once,
        state_dir_from_env: env.state_directory.is_some(),
    };
    let result = daemon.run().await;
    controls.shutdown.cancel();
    if let Some(watchdog) = watchdog {
        let _ = watchdog.await;
    }
    result
}

/// The state file's contents (a fresh state when there is none), with times in the future
/// set to now.
fn load_state(store: &StateStore, now: Timestamp) -> Result<State, RunError> {
    let mut state = store.load()?.unwrap_or_default();
    let clamped = state.clamp_future(now, FUTURE_MARGIN);
    if clamped > 0 {
        tracing::warn!(
            clamped,
            "the state file holds times in the future (the clock was ahead when they were written); they are set to now so that the schedule is not held back"
        );
    }
    Ok(state)
}

/// How to reach the server `config` names, with the environment's request timeout.
fn server_options(config: &Config, env: &Environment) -> ServerOptions {
    ServerOptions {
        request_timeout: env.request_timeout,
        ..ServerOptions::from_config(&config.server)
    }
}

/// What a dry run says first: what it does not do, and whether it reads mentions.
fn dry_run_notes(env: &Environment, config: &Config, has_token: bool, connected: bool) {
    let note = |line: &str| env.printer.show(Report::Note(line.to_string()));
    note("dry run: nothing is sent and the state file is not written");
    if !config.mentions.enabled {
        note("dry run: mentions are off ([mentions] enabled = false)");
    } else if !has_token {
        note("dry run: mentions are off: no access token (with one, the replies it would send are printed)");
    } else if connected {
        note("dry run: reading mentions; the replies it would send are printed");
    }
}

/// Loads the config; its problems, one per line, make a [`RunError::Config`] (exit 78).
pub fn load_config(path: &Path) -> Result<Config, RunError> {
    Config::load(path).map_err(|errors| {
        RunError::Config(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// The media size limits: the server's when connected, else as the daemon last saw it.
fn media_limits(config: &Config, state: &State, server: Option<&dyn Network>) -> MediaLimits {
    match server {
        Some(server) => server.limits().media,
        None => crate::state::fit::media_limits_seen(config, state.server.as_ref()),
    }
}

/// Loads the posts, logging every problem (the good posts are used); media are checked
/// against `media_limits` (the server's when connected).
fn load_posts(config: &Config, media_limits: MediaLimits) -> Library {
    let library = load_configured(config, media_limits);
    for problem in &library.errors {
        tracing::error!("{problem}");
    }
    if !library.errors.is_empty() {
        tracing::warn!(
            problems = library.errors.len(),
            "post files with problems are skipped until they are fixed"
        );
    }
    library
}

/// How connecting ended: connected, told to stop, or asked to reload first.
enum Connected {
    Server(Arc<dyn Network>),
    Stopped,
    Reload,
}

/// Connecting's progress across reloads: the attempt (for backoff), and whether READY=1 was
/// sent already.
#[derive(Default)]
struct Connecting {
    attempt: u32,
    ready: bool,
}

/// Writes [`RELOADED_FILE`] after a reload, when a SIGHUP came since it was last written.
#[derive(Default)]
struct ReloadMarker {
    written: u64,
}

struct Daemon {
    /// When this run started: slots missed after it were missed while the daemon was busy,
    /// not while it was stopped.
    started: Timestamp,
    /// Where the token comes from, for the hint when the server refuses it.
    token_origin: String,
    /// The pending post's next try, when the last one failed (the loop answers mentions
    /// while it waits).
    post_retry: Option<PostRetry>,
    /// The server refuses the token: posting and replying are paused until it accepts it.
    token_refusal: Option<TokenRefusal>,
    /// Posts refused in the current slot.
    rejected_in_slot: Option<(Timestamp, u32)>,
    /// The config's problems as last logged, so a broken edit seen by the watcher and by
    /// SIGHUP is logged once.
    last_config_problems: Option<String>,
    /// What systemd and the log were last told comes next.
    announced: Option<String>,
    config_path: PathBuf,
    config: Config,
    library: Library,
    state: State,
    store: StateStore,
    /// `None` in a dry run.
    server: Option<Arc<dyn Network>>,
    options: RunOptions,
    clock: Arc<dyn Clock>,
    notifier: Notifier,
    controls: Controls,
    checkpoint: Option<Checkpoint>,
    printer: Arc<dyn Printer>,
    /// Entries given up in this run (server unreachable until their deadline): not tried
    /// again while they are still within `grace`.
    given_up: Vec<(Option<String>, Timestamp)>,
    /// `None` when mentions are off (disabled, or a dry run without a server).
    mentions: Option<MentionsRun>,
    reloaded: ReloadMarker,
    /// Whether the posts folder and the config are watched for changes (not with `--once`).
    watching: bool,
    /// The state folder is `$STATE_DIRECTORY`, not the config's.
    state_dir_from_env: bool,
}

/// When and how to try the pending post again.
struct PostRetry {
    at: tokio::time::Instant,
    progress: Progress,
    deadline: Timestamp,
}

/// The server refuses the token.
struct TokenRefusal {
    last_logged: tokio::time::Instant,
}

/// The mentions side of a run.
struct MentionsRun {
    /// `None` with `--once` (one catch-up, no stream).
    stream: Option<MentionStream>,
    /// No cursor was ever saved: mentions older than `first_start_lookback` are recorded
    /// unanswered. Ends with the first catch-up that sets the cursor.
    first_start: bool,
    /// The next periodic catch-up.
    next_poll: tokio::time::Instant,
    /// A reply is pending (the server could not take it): when to try again, and how many
    /// tries so far. Mentions wait (in the stream's buffer, or on the server for the
    /// catch-up) until it is resolved.
    retry: Option<(tokio::time::Instant, u32)>,
    /// Skipped mentions recorded but not saved yet.
    unsaved: bool,
    /// The server refused replies (judged them invalid) this many times in a row; replying
    /// pauses with backoff while it goes on.
    refusals: u32,
    /// Replying is paused until then (after a refusal).
    paused_until: Option<tokio::time::Instant>,
    /// Catch-ups that failed in a row (their retry backs off).
    catch_up_failures: u32,
}

/// Whether a mention was dealt with, or must wait for a pending reply.
enum Handled {
    Done,
    Waiting,
}

impl Daemon {}

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
use crate::daemon::mentions::{Replier, ReplyOutcome};
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
use crate::state::{resolve_state_dir, MentionOutcome, PostReason, State, StateError, StateStore};
use crate::text::compose::compose;
use crate::text::compose::fit_settings;
use crate::text::count::Counter;
use crate::text::reply::ReplySettings;

/// Exit codes (product contract): 0 ok, 1 errors found or runtime failure, 2 usage
/// (clap's own), 78 configuration error (sysexits EX_CONFIG, which systemd's
/// `RestartPreventExitStatus=78` uses to stop restarting a misconfigured service).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    /// What clap exits with on a usage error; also used for an argument clap cannot check.
    pub const USAGE: u8 = 2;
    pub const CONFIG: u8 = 78;
}

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

/// Why the daemon could not run. [`RunError::exit_code`] gives the process exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The server refuses the token, or it lacks a scope: `problem` says which, `fix` names
    /// the file this daemon's token comes from (never `perennial login` without
    /// `--token-file`, which would write the default file, another account's under the
    /// template unit).
    #[error("{problem}; {fix}")]
    TokenRefused { problem: String, fix: String },
    #[error("the configuration has problems:\n{0}")]
    Config(String),
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("no access token: set it with `perennial login`, `LoadCredential=token:…` (systemd), $PERENNIAL_TOKEN or `token_file` in [server]; or try `perennial run --dry-run`, which needs none")]
    NoToken,
    #[error("{0}")]
    Connect(#[from] ConnectError),
    #[error("{0}")]
    State(#[from] StateError),
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_)
            | RunError::Token(_)
            | RunError::NoToken
            | RunError::TokenRefused { .. } => exit::CONFIG,
            RunError::Connect(error) if error.is_configuration() => exit::CONFIG,
            RunError::Connect(_) | RunError::State(_) => exit::FAILURE,
        }
    }
}

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
    let mut state = store.load()?.unwrap_or_default();
    let clamped = state.clamp_future(env.clock.now(), FUTURE_MARGIN);
    if clamped > 0 {
        tracing::warn!(
            clamped,
            "the state file holds times in the future (the clock was ahead when they were written); they are set to now so that the schedule is not held back"
        );
    }
    let server_options = |config: &Config| ServerOptions {
        request_timeout: env.request_timeout,
        ..ServerOptions::from_config(&config.server)
    };
    // Pings from the start: while the server cannot be reached the daemon is already ready
    // (see `connect`), and systemd's watchdog runs from READY=1.
    let watchdog = spawn_watchdog(&env.notifier, &controls.shutdown);
    let mut reloaded = ReloadMarker::default();
    let server = match (&token, options.dry_run) {
        (Some(token), false) => {
            let mut connecting = Connecting::default();
            loop {
                let connected = connect(
                    server_options(&config),
                    token.clone(),
                    &controls,
                    &env.notifier,
                    &mut connecting,
                )
                .await
                .map_err(|error| token_refused(error, &token_sources))?;
                match connected {
                    Connected::Server(server) => break Some(server),
                    Connected::Stopped => return Ok(()),
                    // A reload while the server cannot be reached: the config is read
                    // again (a broken one keeps the one loaded; [server] and [state], as in
                    // any reload, need a restart); the posts are read once connected.
                    Connected::Reload => {
                        let hangups = controls.hangups.load(Ordering::SeqCst);
                        env.notifier.reloading();
                        match Config::load(config_path) {
                            Ok(mut new) => {
                                if new.server != config.server || new.state.dir != config.state.dir
                                {
                                    tracing::warn!(
                                        "[server] or [state] changed: restart perennial to use them (until then it keeps the old ones)"
                                    );
                                }
                                new.server = config.server.clone();
                                new.state = config.state.clone();
                                config = new;
                            }
                            Err(errors) => {
                                for error in &errors {
                                    tracing::error!("{error}");
                                }
                                tracing::error!(
                                    "the configuration has problems; keeping the one loaded before"
                                );
                            }
                        }
                        tracing::info!("reloaded");
                        env.notifier.ready();
                        reloaded.done(&store, hangups);
                    }
                }
            }
        }
        // A dry run with a token reads mentions (and the server's limits) to show the
        // replies it would send; it never waits for an unreachable server.
        (Some(token), true) if config.mentions.enabled => {
            match crate::network::connect(server_options(&config), token.clone()).await {
                Ok(server) => Some(server),
                Err(error) => {
                    env.printer
                        .show(Report::Note(format!("dry run: mentions are off: {error}")));
                    None
                }
            }
        }
        _ => None,
    };
    if options.dry_run {
        let note = |line: &str| env.printer.show(Report::Note(line.to_string()));
        note("dry run: nothing is sent and the state file is not written");
        if !config.mentions.enabled {
            note("dry run: mentions are off ([mentions] enabled = false)");
        } else if token.is_none() {
            note("dry run: mentions are off: no access token (with one, the replies it would send are printed)");
        } else if server.is_some() {
            note("dry run: reading mentions; the replies it would send are printed");
        }
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
    // Connecting warned about a limit below the floor already, naming where it came from;
    // a dry run does not connect.
    if daemon.server.is_none() {
        if let Some(warning) = crate::text::compose::limit_warning(&daemon.counter()) {
            tracing::warn!("{warning}");
        }
    }
    daemon.remember_server()?;
    daemon.report_stale_adhoc();
    daemon.retry_failed_on_new_settings()?;
    daemon.resolve_pending_reply().await?;
    let mut watcher = None;
    daemon.watch_files(&mut watcher);
    daemon.notifier.ready();
    tracing::info!(posts = daemon.library.posts.len(), "ready");
    let result = daemon.main_loop(&mut watcher).await;
    let result = result.and_then(|()| daemon.save_unsaved_mentions());
    daemon.notifier.stopping();
    controls.shutdown.cancel();
    if let Some(watchdog) = watchdog {
        let _ = watchdog.await;
    }
    result
}

/// Set by the units to the file their `LoadCredential=token:…` names (for example
/// `/etc/perennial/pyopensci/token`), so that the hint after a refused token names the file
/// this daemon's token comes from: the credential the daemon reads is only a copy.
pub const CREDENTIAL_FILE_ENV_VAR: &str = "PERENNIAL_CREDENTIAL_FILE";

/// The file the token credential was copied from, when the unit says
/// ([`CREDENTIAL_FILE_ENV_VAR`]) and the token does come from the credential.
fn credential_file(sources: &TokenSources) -> Option<PathBuf> {
    let dir = sources.credentials_directory.as_ref()?;
    if !dir.join(crate::network::token::CREDENTIAL_NAME).exists() {
        return None;
    }
    std::env::var_os(CREDENTIAL_FILE_ENV_VAR)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// What to do about a refused token, naming where this daemon's token comes from.
fn token_fix(sources: &TokenSources, url: &str) -> String {
    let file = credential_file(sources).or_else(|| {
        // Not the credential, not the environment: the config's `token_file`.
        let from_credential = sources
            .credentials_directory
            .as_ref()
            .is_some_and(|dir| dir.join(crate::network::token::CREDENTIAL_NAME).exists());
        (!from_credential && sources.env_token.is_none())
            .then(|| sources.token_file.clone())
            .flatten()
    });
    match file {
        Some(file) => format!(
            "get a new token into the file this daemon reads it from: `sudo perennial login \
             --server {url} --token-file {} --force`, then restart it",
            file.display()
        ),
        None => format!(
            "get a new token with `perennial login --server {url} --token-file FILE` and put it \
             in {}, then restart perennial",
            token_origin(sources)
        ),
    }
}

/// A refused token at start, with the fix naming this daemon's token file.
fn token_refused(error: ConnectError, sources: &TokenSources) -> RunError {
    let scopes = "`profile` (or `read:accounts`), `read:statuses`, `read:notifications`, \
                  `write:statuses` and `write:media`";
    match error {
        ConnectError::Unauthorized {
            url,
            status,
            server_message,
        } => RunError::TokenRefused {
            problem: format!(
                "the server at {url} refused the access token (HTTP {status}: \
                 {server_message}); check that it is complete and was granted the scopes \
                 {scopes}"
            ),
            fix: token_fix(sources, &url),
        },
        ConnectError::CannotReadOwnStatuses {
            url,
            status,
            server_message,
        } => RunError::TokenRefused {
            problem: format!(
                "the server at {url} refused to show the account's own statuses to this \
                 token (HTTP {status}: {server_message}); the token needs the scope \
                 `read:statuses` (or `read`)"
            ),
            fix: token_fix(sources, &url),
        },
        other => other.into(),
    }
}

/// Where the token comes from, in words, for the hint when the server refuses it: the
/// first of the sources [`load_token`] reads that holds one.
fn token_origin(sources: &TokenSources) -> String {
    if let Some(file) = credential_file(sources) {
        return format!(
            "{} (the file the unit's `LoadCredential=token:…` names)",
            file.display()
        );
    }
    if let Some(dir) = &sources.credentials_directory {
        let path = dir.join("token");
        if path.exists() {
            return format!(
                "the file the unit's `LoadCredential=token:…` names (read from {})",
                path.display()
            );
        }
    }
    if sources.env_token.is_some() {
        return "$PERENNIAL_TOKEN".to_string();
    }
    match &sources.token_file {
        Some(path) => format!("the token file {}", path.display()),
        None => "the token file".to_string(),
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

/// Connects, retrying while the server cannot be reached.
///
/// Readiness does not wait for the server: when the first try cannot reach it, READY=1 goes
/// out with `STATUS=waiting for the server…`. A server that is down for hours is ordinary,
/// and a unit held "activating" would hold `multi-user.target` at boot, make `systemctl
/// start` block, and be restarted by `TimeoutStartSec=` for nothing. A server that answers
/// and refuses the token still fails the start (exit 78), before READY=1.
async fn connect(
    options: ServerOptions,
    token: crate::network::token::Token,
    controls: &Controls,
    notifier: &Notifier,
    connecting: &mut Connecting,
) -> Result<Connected, ConnectError> {
    loop {
        match crate::network::connect(options.clone(), token.clone()).await {
            Ok(server) => {
                let limits = server.limits();
                tracing::info!(
                    account = %server.account().acct,
                    software = ?limits.software,
                    max_characters = limits.max_characters,
                    "connected"
                );
                return Ok(Connected::Server(server));
            }
            Err(error) if error.retryable() => {
                let wait = crate::network::retry::wait(error.retry_after(), connecting.attempt);
                connecting.attempt += 1;
                tracing::warn!(%error, wait_seconds = wait.as_secs(), "cannot reach the server; trying again");
                notifier.status(&format!("waiting for the server: {error}"));
                if !connecting.ready {
                    notifier.ready();
                    connecting.ready = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = controls.shutdown.cancelled() => return Ok(Connected::Stopped),
                    () = controls.reload.notified() => {
                        tracing::info!("reload requested");
                        return Ok(Connected::Reload);
                    }
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// Writes [`RELOADED_FILE`] after a reload, when a SIGHUP came since it was last written.
#[derive(Default)]
struct ReloadMarker {
    written: u64,
}

impl ReloadMarker {
    /// The reload that began when `hangups` SIGHUPs had arrived is finished.
    fn done(&mut self, store: &StateStore, hangups: u64) {
        if hangups <= self.written {
            return;
        }
        let path = store.dir().join(RELOADED_FILE);
        let temporary = store.dir().join(format!(".{RELOADED_FILE}.new"));
        let written = std::fs::write(&temporary, format!("{} {hangups}\n", std::process::id()))
            .and_then(|()| std::fs::rename(&temporary, &path));
        match written {
            Ok(()) => self.written = hangups,
            Err(error) => tracing::warn!(
                "could not write {}: {error}; `systemctl reload` waits for it and will time out",
                path.display()
            ),
        }
    }
}

/// Sleeps until `at`, or forever when there is no `at`.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next event of the mention stream (never, when there is none).
async fn next_stream_event(mentions: &mut Option<MentionsRun>) -> Option<StreamEvent> {
    match mentions.as_mut().and_then(|run| run.stream.as_mut()) {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

fn spawn_watchdog(
    notifier: &Notifier,
    shutdown: &CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let interval = notifier.watchdog_interval()?;
    let notifier = notifier.clone();
    let shutdown = shutdown.clone();
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = ticks.tick() => notifier.watchdog(),
                () = shutdown.cancelled() => return,
            }
        }
    }))
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

impl MentionsRun {
    /// Starts answering mentions: the stream (not with `--once`) and a catch-up at once.
    fn start(
        server: &dyn Network,
        state: &State,
        options: &RunOptions,
        controls: &Controls,
    ) -> MentionsRun {
        MentionsRun {
            stream: (!options.once).then(|| server.listen(controls.shutdown.child_token())),
            first_start: state.mentions.cursor.is_none() && state.mentions.handled.is_empty(),
            next_poll: tokio::time::Instant::now(),
            retry: None,
            unsaved: false,
            refusals: 0,
            paused_until: None,
            catch_up_failures: 0,
        }
    }

    fn paused(&self) -> bool {
        self.retry.is_some()
            || self
                .paused_until
                .is_some_and(|at| at > tokio::time::Instant::now())
    }
}

/// Whether a mention was dealt with, or must wait for a pending reply.
enum Handled {
    Done,
    Waiting,
}

impl Daemon {
    fn counter(&self) -> Counter {
        match &self.server {
            Some(server) => server.limits().counter(),
            // A dry run fits as the offline commands do: for the server the daemon last saw.
            None => {
                crate::state::fit::offline_fit(&self.config, self.state.server.as_ref()).counter
            }
        }
    }

    fn plan(&self, now: Timestamp, max_entries: usize) -> Plan {
        let input = PlanInput {
            posts: &self.library.posts,
            schedule: &self.config.schedule,
            seed: seed_for(&self.config.server.url),
            state: &self.state,
            now,
        };
        plan(&input, now + PLAN_AHEAD, max_entries)
    }

    fn save(&self) -> Result<(), StateError> {
        if self.options.dry_run {
            return Ok(());
        }
        self.store.save(&self.state)
    }

    /// Saves the skipped mentions not saved yet (at shutdown).
    fn save_unsaved_mentions(&mut self) -> Result<(), RunError> {
        let unsaved = self
            .mentions
            .as_mut()
            .is_some_and(|run| std::mem::take(&mut run.unsaved));
        if unsaved {
            self.save()?;
        }
        Ok(())
    }

    fn replier(&self) -> Option<Replier<'_>> {
        Some(Replier {
            network: self.server.as_deref()?,
            store: &self.store,
            clock: self.clock.as_ref(),
            checkpoint: self.checkpoint.as_ref(),
            language: Some(self.config.posts.language.as_str()),
        })
    }

    fn publisher(&self) -> Option<Publisher<'_>> {
        Some(Publisher {
            network: self.server.as_deref()?,
            store: &self.store,
            clock: self.clock.as_ref(),
            shutdown: &self.controls.shutdown,
            checkpoint: self.checkpoint.as_ref(),
        })
    }

    /// When a pending post none of whose parts went out stops being worth sending.
    fn pending_deadline(&self, pending: &crate::state::PostIntent) -> Timestamp {
        pending
            .started
            .checked_add(self.config.schedule.grace)
            .unwrap_or(pending.started)
    }

    /// One try at the pending post: a post left in flight by an earlier run (found already
    /// out, or finished), or the next try after a failure.
    async fn try_pending(&mut self) -> Result<(), RunError> {
        let Some(pending) = &self.state.pending else {
            return Ok(());
        };
        if self.options.dry_run {
            self.note(format!("dry run: a post is in flight from an earlier run ({}); the daemon would check it first", pending.post));
            return Ok(());
        }
        let key = (Some(pending.post.clone()), pending.slot, pending.reason);
        let (progress, deadline) = match self.post_retry.take() {
            Some(retry) => (retry.progress, retry.deadline),
            None => {
                tracing::info!(post = %pending.post, "a post was in flight when the last run stopped; checking the server");
                (Progress::resume(), self.pending_deadline(pending))
            }
        };
        let mut state = std::mem::take(&mut self.state);
        let outcome = self
            .publisher()
            .expect("a server outside dry runs")
            .try_pending(&mut state, deadline, progress)
            .await;
        self.state = state;
        self.after_send(outcome?, deadline, key)?;
        Ok(())
    }

    /// Acts on how a try at sending a post ended. `key`: the post, its slot and reason.
    /// Returns whether the loop may go on with the plan it has.
    fn after_send(
        &mut self,
        outcome: Outcome,
        deadline: Timestamp,
        key: (Option<String>, Timestamp, PostReason),
    ) -> Result<bool, RunError> {
        let (post, slot, reason) = key;
        match outcome {
            Outcome::Sent { statuses } => {
                self.token_accepted();
                tracing::info!(post = ?post, parts = statuses.len(), "post is out");
                Ok(true)
            }
            Outcome::Rejected { .. } => {
                self.token_accepted();
                let count = match self.rejected_in_slot {
                    Some((rejected_slot, count)) if rejected_slot == slot => count + 1,
                    _ => 1,
                };
                self.rejected_in_slot = Some((slot, count));
                if reason == PostReason::Slot && count >= MAX_REJECTIONS_PER_SLOT {
                    tracing::warn!(%slot, refused = count, "the server refused {count} posts in this slot; the slot is skipped, the next one tries again");
                    record_slot(&mut self.state, slot, None);
                    self.save()?;
                }
                Ok(false)
            }
            Outcome::Retry {
                wait,
                progress,
                reason,
                token_refused,
            } => {
                if token_refused {
                    self.token_refused(&reason);
                } else {
                    self.token_accepted();
                }
                self.post_retry = Some(PostRetry {
                    at: instant_after(wait),
                    progress,
                    deadline,
                });
                Ok(false)
            }
            Outcome::Deferred { still_pending, .. } => {
                if still_pending {
                    // A part is out or may be: checked again after a pause (its deadline
                    // has passed or the daemon is stopping).
                    self.post_retry = Some(PostRetry {
                        at: instant_after(Duration::from_secs(60)),
                        progress: Progress::resume(),
                        deadline,
                    });
                    return Ok(false);
                }
                // Only entries that may still be planned as due are kept (within `grace` and
                // `jitter` of their slot), so a long run does not grow the list.
                let now = self.clock.now();
                let window = self.config.schedule.grace.max(SignedDuration::ZERO)
                    + self.config.schedule.jitter.max(SignedDuration::ZERO);
                self.given_up.retain(|(_, given_up)| {
                    given_up.checked_add(window).is_ok_and(|end| end >= now)
                });
                self.given_up.push((post, slot));
                if reason == PostReason::Slot {
                    // The slot is over; the rotation goes on from the next one, with the
                    // credit it had (nothing went out).
                    record_slot(&mut self.state, slot, None);
                    self.save()?;
                }
                Ok(true)
            }
        }
    }

    /// The server refused the token: posting and replying pause until it accepts it again.
    /// The ERROR line says how to fix it, once and then hourly (not at every retry).
    fn token_refused(&mut self, reason: &str) {
        let log_now = self
            .token_refusal
            .as_ref()
            .is_none_or(|refusal| refusal.last_logged.elapsed() >= TOKEN_ERROR_EVERY);
        if log_now {
            tracing::error!(
                reason,
                "the server refuses the access token: posting and replying are paused until it accepts it again (retried with backoff, at most every 5 minutes). Fix: get a new token for this account and put it in {}, then restart perennial; check that it has the scopes `read:statuses`, `read:notifications`, `write:statuses`, `write:media` and `profile` (or `read:accounts`)",
                self.token_origin
            );
            self.token_refusal = Some(TokenRefusal {
                last_logged: tokio::time::Instant::now(),
            });
        }
        let line = "paused: the server refuses the access token (see the log)".to_string();
        if self.announced.as_deref() != Some(line.as_str()) {
            self.notifier.status(&line);
            self.announced = Some(line);
        }
    }

    /// A send went through: a refused token works again.
    fn token_accepted(&mut self) {
        if self.token_refusal.take().is_some() {
            tracing::info!(
                "the server accepts the access token again; posting and replying resume"
            );
            self.announced = None;
        }
    }

    /// Keeps what was learnt of the server in the state, for the offline commands.
    fn remember_server(&mut self) -> Result<(), RunError> {
        let Some(server) = &self.server else {
            return Ok(());
        };
        let seen = server.seen(self.clock.now());
        let same = self.state.server.as_ref().is_some_and(|old| {
            crate::state::ServerSeen {
                at: seen.at,
                ..old.clone()
            } == seen
        });
        if !same && !self.options.dry_run {
            self.state.server = Some(seen);
            self.save()?;
        }
        Ok(())
    }

    /// Keeps the state in step with the posts folder before each plan: a renamed post keeps
    /// its record (logged), and what no plan needs any more is dropped
    /// ([`crate::state::prune`]), so the state stays bounded over the years. Saves when
    /// either changed something.
    fn upkeep(&mut self, now: Timestamp) -> Result<(), RunError> {
        let renames = crate::state::follow_renames(&self.library, &mut self.state);
        for rename in &renames {
            tracing::info!(
                from = %rename.from,
                to = %rename.to,
                "renamed: {} → {}, keeping its history",
                rename.from,
                rename.to
            );
        }
        let pruned = crate::state::prune(&self.library, &mut self.state, now);
        if pruned.any() {
            tracing::debug!(
                history = pruned.history,
                failed = pruned.failed,
                "dropped state entries no plan needs any more"
            );
        }
        if !renames.is_empty() || pruned.any() {
            self.save()?;
        }
        Ok(())
    }

    /// A post failed with other fitting settings than today's (the limit was fixed, the
    /// server changed) is tried again.
    fn retry_failed_on_new_settings(&mut self) -> Result<(), RunError> {
        let counter = self.counter();
        let current = settings_fingerprint(&fit_settings(&self.config, &counter));
        let before = self.state.failed.len();
        self.state.failed.retain(|post, failed| {
            let keep = failed.settings.as_deref() == Some(current.as_str());
            if !keep {
                tracing::info!(%post, "a post the server refused is tried again: the settings it is fitted with have changed");
            }
            keep
        });
        if self.state.failed.len() != before {
            self.save()?;
        }
        Ok(())
    }

    async fn main_loop(
        &mut self,
        watcher: &mut Option<crate::daemon::watch::ChangeWatcher>,
    ) -> Result<(), RunError> {
        loop {
            if self.controls.shutdown.is_cancelled() {
                return Ok(());
            }
            let post_in_flight = self.state.pending.is_some() && !self.options.dry_run;
            if post_in_flight
                && self
                    .post_retry
                    .as_ref()
                    .is_none_or(|retry| retry.at <= tokio::time::Instant::now())
            {
                self.try_pending().await?;
                continue;
            }
            let wake = if post_in_flight {
                // Waiting to try the pending post again; mentions are answered meanwhile.
                self.post_retry
                    .as_ref()
                    .map_or_else(tokio::time::Instant::now, |retry| retry.at)
            } else {
                let now = self.clock.now();
                self.upkeep(now)?;
                let plan = self.plan(now, ENTRIES_AHEAD);
                tracing::debug!(%now, entries = plan.entries.len(), first = ?plan.entries.first().map(|e| e.at), "planned");
                self.report_missed(&plan);
                let mut replan = false;
                for entry in &plan.entries {
                    if !self.to_send(entry, now) {
                        continue;
                    }
                    if !self.handle(entry).await? {
                        replan = true;
                        break;
                    }
                    if self.controls.shutdown.is_cancelled() {
                        return Ok(());
                    }
                }
                if replan {
                    continue;
                }
                // Everything due is dealt with: the slots missed before now are skipped.
                // Recording that changes only slots at or before `now`, so the same plan
                // also gives the next entry.
                let now = self.clock.now();
                let upcoming = self.plan(now, ENTRIES_AHEAD);
                // An entry that fell due while a post was being sent (a retry, a slow
                // server) is dealt with now: recording the check would skip it as missed.
                if upcoming
                    .entries
                    .iter()
                    .any(|entry| self.to_send(entry, now))
                {
                    continue;
                }
                let before = self.state.rotation.clone();
                record_checked(&mut self.state, &upcoming, now);
                if self.state.rotation.last_slot != before.last_slot || before.checked.is_none() {
                    self.save()?;
                }
                let ahead: Vec<&Entry> = upcoming
                    .entries
                    .iter()
                    .filter(|entry| !entry.is_due(now))
                    .collect();
                let next = ahead.first().copied();
                if self.token_refusal.is_none() {
                    self.announce(&ahead);
                }
                if self.options.once {
                    if self.mentions.is_some() {
                        self.catch_up().await?;
                    }
                    return Ok(());
                }
                let sleep = next.map_or(MAX_SLEEP, |entry| {
                    clock::until(now, entry.at).min(MAX_SLEEP)
                });
                instant_after(sleep)
            };
            // Mentions are answered between posts (and while a post waits to be tried
            // again) without planning again: the plan only changes when the wake time
            // comes, or on a reload.
            loop {
                let mention_timer = self.mentions.as_ref().map(|run| {
                    let mut at = run.retry.map_or(run.next_poll, |(at, _)| at);
                    if let Some(paused) = run.paused_until {
                        if run.retry.is_none() {
                            at = at.max(paused);
                        }
                    }
                    at
                });
                let reading_stream = self
                    .mentions
                    .as_ref()
                    .is_some_and(|run| run.stream.is_some() && !run.paused());
                tokio::select! {
                    () = tokio::time::sleep_until(wake) => break,
                    () = self.controls.shutdown.cancelled() => return Ok(()),
                    () = self.controls.reload.notified() => {
                        tracing::info!("reload requested");
                        self.reload(watcher)?;
                        break;
                    }
                    changes = async {
                        match watcher.as_mut() {
                            Some(watcher) => watcher.changed().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        tracing::info!(files = changes.paths().len(), "files changed; reloading");
                        self.reload(watcher)?;
                        break;
                    }
                    () = sleep_until_some(mention_timer) => self.mention_timer().await?,
                    event = next_stream_event(&mut self.mentions), if reading_stream => {
                        self.on_stream_event(event).await?;
                    }
                }
                if self.controls.shutdown.is_cancelled() {
                    return Ok(());
                }
            }
        }
    }

    /// A pending reply left by an earlier run is resolved first.
    async fn resolve_pending_reply(&mut self) -> Result<(), RunError> {
        let Some(pending) = &self.state.mentions.pending else {
            return Ok(());
        };
        if self.options.dry_run {
            self.note(format!(
                "dry run: a reply to @{} is in flight from an earlier run; the daemon would check it first",
                pending.acct
            ));
            return Ok(());
        }
        let Some(run) = &mut self.mentions else {
            tracing::warn!("a reply was in flight when the last run stopped, but mentions are off now; it stays pending");
            return Ok(());
        };
        tracing::info!(acct = %pending.acct, "a reply was in flight when the last run stopped; checking the server");
        // The timer resolves it (at once), before any new mention is read.
        run.retry = Some((tokio::time::Instant::now(), 0));
        if self.options.once {
            self.mention_timer().await?;
        }
        Ok(())
    }

    /// The mentions timer fired: retry the pending reply, or run the periodic catch-up.
    async fn mention_timer(&mut self) -> Result<(), RunError> {
        let Some(run) = &self.mentions else {
            return Ok(());
        };
        let Some((_, attempt)) = run.retry else {
            if let Some(run) = &mut self.mentions {
                if run
                    .paused_until
                    .is_some_and(|at| at <= tokio::time::Instant::now())
                {
                    // The pause after a refused reply is over: read what waited.
                    run.paused_until = None;
                }
            }
            return self.catch_up().await;
        };
        let mut state = std::mem::take(&mut self.state);
        let outcome = self
            .replier()
            .expect("mentions run with a server")
            .resume(&mut state, attempt)
            .await;
        self.state = state;
        let outcome = outcome?;
        self.after_reply(outcome, attempt.saturating_add(1));
        if let Some(run) = &mut self.mentions {
            if run.retry.is_none() {
                // Mentions may have waited meanwhile: catch up now.
                run.next_poll = tokio::time::Instant::now();
            }
        }
        Ok(())
    }

    /// Acts on how sending a reply ended; `next_attempt` is the attempt number of the next
    /// try if it must be tried again. Returns whether the mention was dealt with.
    fn after_reply(&mut self, outcome: ReplyOutcome, next_attempt: u32) -> Handled {
        match outcome {
            ReplyOutcome::Sent { .. } => {
                self.token_accepted();
                if let Some(run) = &mut self.mentions {
                    run.retry = None;
                    run.refusals = 0;
                }
                Handled::Done
            }
            ReplyOutcome::Dropped => {
                if let Some(run) = &mut self.mentions {
                    run.retry = None;
                }
                Handled::Done
            }
            ReplyOutcome::Refused => {
                self.token_accepted();
                if let Some(run) = &mut self.mentions {
                    run.retry = None;
                    let wait = crate::network::retry::backoff(run.refusals);
                    run.refusals = run.refusals.saturating_add(1);
                    run.paused_until = Some(instant_after(wait));
                    tracing::warn!(
                        refusals = run.refusals,
                        wait_seconds = wait.as_secs(),
                        "replying pauses after the server refused a reply"
                    );
                }
                Handled::Done
            }
            ReplyOutcome::Deferred {
                retry_in,
                token_refused,
            } => {
                if token_refused {
                    self.token_refused("the server refused the token for a reply");
                }
                if let Some(run) = &mut self.mentions {
                    run.retry = Some((instant_after(retry_in), next_attempt));
                }
                Handled::Waiting
            }
        }
    }

    async fn on_stream_event(&mut self, event: Option<StreamEvent>) -> Result<(), RunError> {
        match event {
            Some(StreamEvent::Mention(mention)) => {
                // Dealt with now; the cursor moves only in catch-ups, so a mention that
                // must wait here is read again by the next one.
                self.on_mention(&mention).await?;
            }
            Some(StreamEvent::Connected) => self.catch_up().await?,
            Some(StreamEvent::Disconnected { reason, retry_in }) => {
                tracing::debug!(%reason, retry_seconds = retry_in.as_secs(), "stream disconnected");
            }
            None => {
                // The listener is gone (shutting down): catch-ups still run on the timer.
                if let Some(run) = &mut self.mentions {
                    run.stream = None;
                }
            }
        }
        Ok(())
    }

    /// Reads every mention since the cursor and deals with each, oldest first; the cursor
    /// moves past what was dealt with.
    async fn catch_up(&mut self) -> Result<(), RunError> {
        let (Some(server), Some(run)) = (&self.server, &mut self.mentions) else {
            return Ok(());
        };
        if run.paused() {
            return Ok(()); // after the pending reply, or the pause
        }
        let poll_every =
            Duration::try_from(self.config.mentions.poll_every).unwrap_or(Duration::from_secs(300));
        let started = self.clock.now();
        let cursor = self.state.mentions.cursor.clone();
        let batch = match server.mentions_since(cursor.as_deref()).await {
            Ok(batch) => batch,
            Err(error) => {
                // Backoff, no longer than `poll_every` unless the server asks for more.
                let wait = crate::network::retry::wait(error.retry_after(), run.catch_up_failures);
                let wait = match error.retry_after() {
                    Some(_) => wait,
                    None => wait.min(poll_every),
                };
                run.catch_up_failures = run.catch_up_failures.saturating_add(1);
                tracing::warn!(%error, wait_seconds = wait.as_secs(), "cannot read mentions; trying again later");
                run.next_poll = instant_after(wait);
                return Ok(());
            }
        };
        run.catch_up_failures = 0;
        run.next_poll = instant_after(poll_every);
        if !batch.mentions.is_empty() {
            tracing::debug!(
                mentions = batch.mentions.len(),
                skipped = batch.skipped,
                "caught up"
            );
        }
        let mut last_done: Option<String> = None;
        let mut interrupted = false;
        for mention in &batch.mentions {
            match self.on_mention(mention).await? {
                Handled::Done => last_done = Some(mention.notification_id.clone()),
                Handled::Waiting => {
                    interrupted = true;
                    break;
                }
            }
            if self.controls.shutdown.is_cancelled() {
                interrupted = true;
                break;
            }
        }
        let new_cursor = if interrupted {
            last_done.or(cursor.clone())
        } else {
            // The account has no notification at all yet: every one from now on is new, so
            // the next catch-up pages forward from before the first. Without this it would
            // read only the newest page again, and a burst while the stream is down would
            // lose all but 80.
            batch
                .cursor
                .clone()
                .or(cursor.clone())
                .or_else(|| Some(CURSOR_BEFORE_EVERYTHING.to_string()))
        };
        let mut changed = new_cursor != cursor;
        self.state.mentions.cursor = new_cursor;
        if !interrupted && batch.complete {
            self.state.mentions.caught_up = Some(started);
            changed = true;
        }
        if self.state.mentions.cursor.is_some() {
            if let Some(run) = &mut self.mentions {
                run.first_start = false;
            }
        }
        if let Some(run) = &mut self.mentions {
            changed |= std::mem::take(&mut run.unsaved);
        }
        if changed {
            self.save()?;
        }
        Ok(())
    }

    /// Decides what to do with one mention, and does it.
    async fn on_mention(&mut self, mention: &Mention) -> Result<Handled, RunError> {
        let (Some(server), Some(run)) = (&self.server, &self.mentions) else {
            return Ok(Handled::Done);
        };
        if run.paused() {
            return Ok(Handled::Waiting);
        }
        let now = self.clock.now();
        let counter = server.limits().counter();
        let policy = Policy {
            config: &self.config.mentions,
            reply: ReplySettings {
                guides: &self.config.guides,
                reply_visibility: self.config.mentions.reply_visibility,
                counter: &counter,
            },
            bot_account_id: &server.account().id,
            first_start: run.first_start,
        };
        let verdict = decide(mention, &self.state.mentions, &policy, now);
        let reply = match verdict {
            Verdict::AlreadyHandled => return Ok(Handled::Done),
            Verdict::Skip(reason) => {
                tracing::info!(acct = %mention.acct, notification = %mention.notification_id, ?reason, "mention not answered");
                record(
                    &mut self.state.mentions,
                    &mention.notification_id,
                    &mention.status_id,
                    &mention.acct,
                    MentionOutcome::Skipped { reason },
                    now,
                );
                // Saved with the next reply, catch-up or shutdown: a skip lost in a crash
                // is decided again, the same way.
                if let Some(run) = &mut self.mentions {
                    run.unsaved = true;
                }
                return Ok(Handled::Done);
            }
            Verdict::Answer(reply) => reply,
        };
        if self.options.dry_run {
            let zone = self.config.schedule.timezone.clone();
            let at = now.to_zoned(zone).strftime("%a %Y-%m-%d %H:%M %Z");
            self.printer.show(Report::Reply {
                heading: format!(
                    "[{at}] would reply to @{} ({}, in reply to status {}):",
                    mention.acct,
                    reply.visibility.as_str(),
                    mention.status_id
                ),
                text: &reply.text,
            });
            record(
                &mut self.state.mentions,
                &mention.notification_id,
                &mention.status_id,
                &mention.acct,
                MentionOutcome::Replied {
                    status_id: "dry-run".to_string(),
                },
                now,
            );
            return Ok(Handled::Done);
        }
        let intent = new_reply_intent(mention, &reply, now);
        let mut state = std::mem::take(&mut self.state);
        let outcome = self
            .replier()
            .expect("mentions run with a server")
            .send(&mut state, intent, 0)
            .await;
        self.state = state;
        Ok(self.after_reply(outcome?, 1))
    }

    /// Whether `entry` is due at `now` and not given up on in this run.
    fn to_send(&self, entry: &Entry, now: Timestamp) -> bool {
        entry.is_due(now) && !self.given_up.contains(&(entry.post.clone(), entry.slot))
    }

    /// Tells systemd and the log what comes next (`ahead`, the first), once per change: the
    /// daemon wakes for mentions and every few hours, and the same "next:" line each time is
    /// noise. A dry run says it on standard output instead of the log (each line once), and
    /// the first time shows the next post whole and the plan after it.
    fn announce(&mut self, ahead: &[&Entry]) {
        let next = ahead.first().copied();
        let zone = self.config.schedule.timezone.clone();
        let line = match next {
            Some(entry) => {
                let at = entry
                    .at
                    .to_zoned(zone)
                    .strftime("%a %Y-%m-%d %H:%M %Z")
                    .to_string();
                match &entry.post {
                    Some(post) => format!("next: {post} at {at}"),
                    None => format!("next: an empty slot at {at} (nothing eligible)"),
                }
            }
            None => "nothing planned".to_string(),
        };
        if self.announced.as_deref() == Some(line.as_str()) {
            return;
        }
        self.notifier.status(&line);
        if !self.options.dry_run {
            tracing::info!("{line}");
        } else if self.announced.is_none() {
            self.print_dry_run_start(ahead);
        } else {
            self.note(line.clone());
        }
        self.announced = Some(line);
    }

    /// A dry run's start: the next post exactly as it will go out, then the plan after it.
    fn print_dry_run_start(&self, ahead: &[&Entry]) {
        let Some(next) = ahead.first() else {
            self.note("nothing planned".to_string());
            return;
        };
        match self.post_of(next) {
            Some(post) => {
                let composed = compose(post, &fit_settings(&self.config, &self.counter()));
                self.print_dry_run(post, next, &composed, "next:");
            }
            None => self.note(format!(
                "next: an empty slot at {} (nothing eligible)",
                self.local_time(next.at)
            )),
        }
        if ahead.len() > 1 {
            self.note("then:".to_string());
        }
        for entry in &ahead[1..] {
            let what = match self.post_of(entry) {
                Some(post) => {
                    let composed = compose(post, &fit_settings(&self.config, &self.counter()));
                    format!("{} ({})", post.id, composed.fit)
                }
                None => "an empty slot (nothing eligible)".to_string(),
            };
            self.note(format!("  {}  {what}", self.local_time(entry.at)));
        }
        if self.options.once {
            self.note("(--once: nothing is due now)".to_string());
        } else {
            self.note("(each post is printed whole when it falls due; Ctrl-C stops)".to_string());
        }
    }

    fn post_of(&self, entry: &Entry) -> Option<&Post> {
        let id = entry.post.as_ref()?;
        self.library.posts.iter().find(|post| &post.id == id)
    }

    /// `Fri 2026-12-04 09:31 MST`: a time in the schedule's zone.
    fn local_time(&self, at: Timestamp) -> String {
        at.to_zoned(self.config.schedule.timezone.clone())
            .strftime("%a %Y-%m-%d %H:%M %Z")
            .to_string()
    }

    /// At start: ad hoc posts whose time passed without them going out before the daemon
    /// last looked (or before it ever ran), which the plan's missed list never names.
    fn report_stale_adhoc(&self) {
        let now = self.clock.now();
        let checked = self.state.rotation.checked;
        let zone = &self.config.schedule.timezone;
        for stale in crate::plan::stale_adhoc(
            &self.library.posts,
            &self.state,
            now,
            self.config.schedule.grace,
        ) {
            if checked.is_some_and(|checked| stale.at > checked) {
                continue; // missed while the daemon was down: `report_missed` says so
            }
            tracing::warn!(
                post = %stale.post,
                at = %stale.at.to_zoned(zone.clone()),
                "an ad hoc post's time has passed and it was not sent: {}; set `at` to a time to come, or remove the post",
                stale.consequence()
            );
        }
    }

    fn report_missed(&self, plan: &Plan) {
        for missed in &plan.missed {
            match missed {
                Missed::Slots { count, first, last } if *first >= self.started => tracing::warn!(
                    count, %first, %last,
                    "slots passed while the daemon was busy (a post being retried, or the server unreachable) are skipped"
                ),
                Missed::Slots { count, first, last } => tracing::warn!(
                    count, %first, %last,
                    "slots missed while the daemon was not running are skipped (at most one within `grace` is posted late)"
                ),
                Missed::Adhoc { post, at } if *at >= self.started => tracing::warn!(
                    %post, %at,
                    "an ad hoc post fell due more than `grace` ago while the daemon was busy (a post being retried, or the server unreachable); it is skipped"
                ),
                Missed::Adhoc { post, at } => tracing::warn!(
                    %post, %at,
                    "an ad hoc post was due more than `grace` ago while the daemon was not running; it is skipped"
                ),
            }
        }
    }

    /// Deals with one due entry. `false`: plan again before going on (the post was refused
    /// and the slot takes the next one, or the entry is pending).
    async fn handle(&mut self, entry: &Entry) -> Result<bool, RunError> {
        let now = self.clock.now();
        let Some(post) = entry
            .post
            .as_ref()
            .and_then(|id| self.library.posts.iter().find(|post| &post.id == id))
            .cloned()
        else {
            tracing::info!(slot = %entry.slot, "nothing eligible for this slot");
            record_entry(&mut self.state, entry, "", now, Vec::new());
            self.save()?;
            return Ok(true);
        };
        let counter = self.counter();
        let settings = fit_settings(&self.config, &counter);
        let composed = compose(&post, &settings);
        if self.options.dry_run {
            self.print_dry_run(&post, entry, &composed, "would post now:");
            let ids = (0..composed.statuses.len())
                .map(|i| format!("dry-run-{i}"))
                .collect();
            record_entry(&mut self.state, entry, &post.content_hash, now, ids);
            return Ok(true);
        }
        let settings = settings_fingerprint(&settings);
        let spec = IntentSpec {
            slot: entry.slot,
            reason: entry.reason,
            credit_after: (entry.reason == PostReason::Slot).then(|| entry.credit_after.clone()),
            settings: settings.clone(),
        };
        let intent = new_intent(&post, &composed, spec, now);
        let deadline = entry
            .at
            .checked_add(self.config.schedule.grace)
            .unwrap_or(entry.at);
        let key = (entry.post.clone(), entry.slot, entry.reason);
        let mut state = std::mem::take(&mut self.state);
        let publisher = self.publisher().expect("a server outside dry runs");
        let outcome = match composed.unsendable() {
            // A post that cannot keep its text and link within the limit is failed, never
            // posted as a lone `…`.
            Some(why) => publisher.refuse(&mut state, &intent, why, &settings),
            None => publisher.publish(&mut state, intent, deadline).await,
        };
        self.state = state;
        self.after_send(outcome?, deadline, key)
    }

    /// A post of a dry run, whole, through the printer `preview` uses; `what` says whether it
    /// is the next one or one due now.
    fn print_dry_run(
        &self,
        post: &Post,
        entry: &Entry,
        composed: &crate::text::compose::Composed,
        what: &str,
    ) {
        let heading = format!(
            "{what} {} at {} ({}, {})",
            post.id,
            self.local_time(entry.at),
            match entry.reason {
                PostReason::Slot => "rotation slot",
                PostReason::Adhoc => "ad hoc",
                PostReason::Manual => "by hand",
            },
            composed.fit
        );
        self.printer.show(Report::Post {
            heading,
            post,
            composed,
            limit: self.counter().limit(),
        });
    }

    /// A sentence of a dry run's, for people.
    fn note(&self, line: String) {
        self.printer.show(Report::Note(line));
    }

    /// `[mentions] enabled` changed on a reload: start or stop answering mentions now.
    fn follow_mentions_setting(&mut self, was_enabled: bool) -> Result<(), RunError> {
        let enabled = self.config.mentions.enabled;
        if enabled == was_enabled {
            return Ok(());
        }
        if !enabled {
            self.save_unsaved_mentions()?;
            // Dropping the run closes the stream.
            if self.mentions.take().is_some() {
                tracing::info!("[mentions] enabled = false: no longer answering mentions");
            }
            return Ok(());
        }
        match &self.server {
            Some(server) => {
                self.mentions = Some(MentionsRun::start(
                    server.as_ref(),
                    &self.state,
                    &self.options,
                    &self.controls,
                ));
                tracing::info!("[mentions] enabled = true: answering mentions from now on");
            }
            None => tracing::info!(
                "[mentions] enabled = true, but a dry run without a token reads no mentions"
            ),
        }
        Ok(())
    }

    /// Starts watching the posts folder the config names now, and the config, replacing the
    /// watcher in `watcher`: a new watch after every reload follows a posts folder that was
    /// deleted and created again, swapped in by a rename, or moved by `[posts] dir`.
    fn watch_files(&self, watcher: &mut Option<crate::daemon::watch::ChangeWatcher>) {
        if !self.watching {
            return;
        }
        match crate::daemon::watch::watch(&self.config.posts.dir, &self.config_path) {
            Ok(new) => *watcher = Some(new),
            Err(error) => {
                tracing::warn!(%error, "not watching for file changes");
                *watcher = None;
            }
        }
    }

    /// Reloads the config (a broken one keeps the old, and says so) and the posts (broken
    /// files are reported and skipped), watching the files anew in between (so a change made
    /// while loading is seen by the new watch). Everything applies at once except `[server]`
    /// and `[state]`, which need a restart (a warning says so).
    fn reload(
        &mut self,
        watcher: &mut Option<crate::daemon::watch::ChangeWatcher>,
    ) -> Result<(), RunError> {
        // Every SIGHUP counted so far is covered by this reload, whatever woke it.
        let hangups = self.controls.hangups.load(Ordering::SeqCst);
        self.notifier.reloading();
        match Config::load(&self.config_path) {
            Ok(config) => {
                if self.last_config_problems.take().is_some() {
                    tracing::info!("the configuration's problems are fixed");
                }
                if config.server != self.config.server {
                    tracing::warn!(
                        "[server] changed: restart perennial to use the new server settings (until then it keeps the old ones)"
                    );
                }
                // `$STATE_DIRECTORY` (systemd) wins over the config's folder.
                if config.state.dir != self.config.state.dir && !self.state_dir_from_env {
                    tracing::warn!(
                        "[state] dir changed: restart perennial to use the new state folder (until then it keeps {})",
                        self.store.dir().display()
                    );
                }
                if config.posts.dir != self.config.posts.dir {
                    tracing::info!(
                        from = %self.config.posts.dir.display(),
                        to = %config.posts.dir.display(),
                        "[posts] dir changed: reading and watching the new folder"
                    );
                }
                let mentions_were = self.config.mentions.enabled;
                self.config = config;
                self.follow_mentions_setting(mentions_were)?;
            }
            Err(errors) => {
                let problems = errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n");
                // The watcher and a SIGHUP for one edit see the same problems: say them once.
                if self.last_config_problems.as_deref() != Some(problems.as_str()) {
                    for error in &errors {
                        tracing::error!("{error}");
                    }
                    tracing::error!(
                        "the configuration has problems; keeping the one loaded before"
                    );
                    self.last_config_problems = Some(problems);
                } else {
                    tracing::debug!("the configuration still has the same problems");
                }
            }
        }
        self.watch_files(watcher);
        self.library = load_posts(
            &self.config,
            media_limits(&self.config, &self.state, self.server.as_deref()),
        );
        self.retry_failed_on_new_settings()?;
        tracing::info!(posts = self.library.posts.len(), "reloaded");
        self.notifier.ready();
        if !self.options.dry_run {
            self.reloaded.done(&self.store, hangups);
        }
        Ok(())
    }
}

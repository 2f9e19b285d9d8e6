//! `perennial run` (the daemon) and `perennial post POST` (one post now, through the same
//! exactly-once path): the tokio runtime, logging and signals around [`crate::daemon`].

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::commands::cli::{exit, PostArgs, RunArgs};
use crate::commands::show::write_composed;
use crate::daemon::clock::{Clock, SystemClock};
use crate::daemon::publish::{
    new_intent, settings_fingerprint, IntentSpec, Outcome, Progress, Publisher,
};
use crate::daemon::{self, Controls, Environment, Printer, Report, RunError, RunOptions};
use crate::network::token::load_token;
use crate::network::ServerOptions;
use crate::posts::config::Config;
use crate::posts::library::Library;
use crate::posts::post::Post;
use crate::state::{PostReason, State};
use crate::text::compose::compose;
use crate::text::compose::fit_settings;
use crate::text::count::Counter;

/// A manual post is retried this long when the server cannot be reached.
const MANUAL_POST_DEADLINE: SignedDuration = SignedDuration::from_mins(10);

fn runtime() -> tokio::runtime::Runtime {
    // One thread: the daemon waits almost all the time, and a small VM has little memory.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}

pub fn run(config_path: &Path, args: &RunArgs) -> u8 {
    crate::daemon::logging::init(tracing::level_filters::LevelFilter::INFO);
    let options = RunOptions {
        dry_run: args.dry_run,
        once: args.once,
    };
    runtime().block_on(async {
        let controls = Controls::default();
        if let Err(error) = listen_for_signals(&controls) {
            tracing::error!(%error, "cannot listen for signals");
            return exit::FAILURE;
        }
        match daemon::run(
            config_path,
            options,
            Environment::from_process(Arc::new(Stdout)),
            controls,
        )
        .await
        {
            Ok(()) => {
                tracing::info!("stopped");
                exit::OK
            }
            Err(error) => report(&error),
        }
    })
}

/// Logs a fatal error once, through the log (which goes to stderr, and under systemd to the
/// journal at priority 3, every line of it); a second copy on stderr would reach the journal
/// again, at the default priority.
fn report(error: &RunError) -> u8 {
    tracing::error!("{error}");
    error.exit_code()
}

/// SIGTERM and SIGINT stop the daemon (after the post in flight); SIGHUP reloads.
fn listen_for_signals(controls: &Controls) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let controls = controls.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = terminate.recv() => { tracing::info!("SIGTERM: stopping"); controls.shutdown.cancel(); return; }
                _ = interrupt.recv() => { tracing::info!("SIGINT: stopping"); controls.shutdown.cancel(); return; }
                _ = hangup.recv() => controls.request_reload(),
            }
        }
    });
    Ok(())
}

pub fn post(config_path: &Path, args: &PostArgs) -> u8 {
    crate::daemon::logging::init(tracing::level_filters::LevelFilter::INFO);
    runtime().block_on(async {
        match post_now(config_path, args).await {
            Ok(code) => code,
            Err(error) => report(&error),
        }
    })
}

async fn post_now(config_path: &Path, args: &PostArgs) -> Result<u8, RunError> {
    let config = daemon::load_config(config_path)?;
    let library = crate::commands::check::load(&config);
    let Some(post) = library.posts.iter().find(|post| post.id == args.post) else {
        report_unusable(&config, &library, &args.post);
        return Ok(exit::FAILURE);
    };
    if args.dry_run {
        dry_run(&config, post);
        return Ok(exit::OK);
    }
    send_now(&config, post).await
}

/// Why the post `id` cannot be posted, on stderr: the problems of its file, or that there is
/// no such post.
fn report_unusable(config: &Config, library: &Library, id: &str) {
    let problems: Vec<String> = library
        .errors
        .iter()
        .filter(|error| {
            library
                .files
                .iter()
                .any(|(file_id, file)| file_id == id && &error.file == file)
        })
        .map(ToString::to_string)
        .collect();
    if problems.is_empty() {
        eprintln!("error: no post `{id}` under {}", config.posts.dir.display());
    } else {
        eprintln!(
            "error: the post `{id}` has problems:\n{}",
            problems.join("\n")
        );
    }
}

/// `post --dry-run`: the post as it would be sent now, fitted offline to what the daemon last
/// saw of the server (where that came from goes to stderr), through `preview`'s printer.
fn dry_run(config: &Config, post: &Post) {
    let fit = crate::state::fit::offline_fit_from_state(config);
    eprintln!("{}", fit.source);
    let composed = compose(post, &fit_settings(config, &fit.counter));
    let heading = format!("{} ({}), would be posted now", post.id, composed.fit);
    let mut out = std::io::stdout().lock();
    let _ = crate::commands::show::write_composed(
        &mut out,
        &heading,
        post,
        &composed,
        fit.counter.limit(),
    );
    println!("--- dry run: nothing sent");
}

/// Sends `post` now, through the daemon's exactly-once path: with the state locked, a post
/// an earlier run left in flight is finished first, then the post is composed for the server
/// as it is now, saved as pending and sent, and tried again for up to
/// [`MANUAL_POST_DEADLINE`] while the server cannot be reached.
async fn send_now(config: &Config, post: &Post) -> Result<u8, RunError> {
    let sources = crate::network::token::TokenSources::from_env(config.server.token_file.clone());
    let token = load_token(&sources)?.ok_or(RunError::NoToken)?;
    let store = crate::state::fit::open_state(config);
    let _lock = store.lock()?;
    let mut state = store.load()?.unwrap_or_default();
    let server = crate::network::connect(ServerOptions::from_config(&config.server), token).await?;
    let clock = SystemClock;
    // What was learnt of the server, for `preview`, `check` and `queue` (as the daemon keeps
    // it); saved with the intent below, or by the refusal.
    state.server = Some(server.seen(clock.now()));
    // SIGTERM or SIGINT: the request in flight is finished and recorded, then the command
    // exits 0; a half-sent thread is completed by the daemon or the next `perennial post`.
    let shutdown = CancellationToken::new();
    if let Err(error) = cancel_on_terminate(&shutdown) {
        tracing::error!(%error, "cannot listen for signals");
        return Ok(exit::FAILURE);
    }
    let publisher = Publisher {
        network: server.as_ref(),
        store: &store,
        clock: &clock,
        shutdown: &shutdown,
        checkpoint: None,
    };
    if let Some(code) = finish_pending(&publisher, &mut state, post).await? {
        return Ok(code);
    }
    let counter = server.limits().counter();
    let (outcome, deadline) = first_try(&publisher, &mut state, config, &counter, post).await?;
    until_done(&publisher, &mut state, post, outcome, deadline).await
}

/// Finishes a post an earlier run left in flight, if any: one post is in flight at a time.
/// Gives the exit code when that ends the command: the earlier post could not be finished,
/// or it was this very post (half sent by a signal or a crash), so finishing it is what was
/// asked, not sending it whole a second time.
async fn finish_pending(
    publisher: &Publisher<'_>,
    state: &mut State,
    post: &Post,
) -> Result<Option<u8>, RunError> {
    let Some(pending) = &state.pending else {
        return Ok(None);
    };
    let same_post = pending.post == post.id;
    let deadline = publisher.clock.now();
    let outcome = publisher
        .try_pending(state, deadline, Progress::resume())
        .await?;
    if state.pending.is_some() {
        if publisher.shutdown.is_cancelled() {
            return Ok(Some(stopped(&outcome)));
        }
        eprintln!("error: a post from an earlier run is still in flight and the server cannot be reached; try again later");
        return Ok(Some(exit::FAILURE));
    }
    match outcome {
        Outcome::Sent { statuses } if same_post => {
            print_posted(post, "finished what an earlier run started; ", &statuses);
            Ok(Some(exit::OK))
        }
        _ => Ok(None),
    }
}

/// Composes `post` with the server's counter and makes the first try: the intent is saved as
/// pending and sent or, when it cannot be sent as composed, refused and recorded as failed.
/// Gives the outcome and until when to try again.
async fn first_try(
    publisher: &Publisher<'_>,
    state: &mut State,
    config: &Config,
    counter: &Counter,
    post: &Post,
) -> Result<(Outcome, Timestamp), RunError> {
    let settings = fit_settings(config, counter);
    let composed = compose(post, &settings);
    let settings = settings_fingerprint(&settings);
    let now = publisher.clock.now();
    let spec = IntentSpec {
        slot: now,
        reason: PostReason::Manual,
        credit_after: None,
        settings: settings.clone(),
    };
    let intent = new_intent(post, &composed, spec, now);
    let deadline = now + MANUAL_POST_DEADLINE;
    let outcome = match composed.unsendable() {
        Some(why) => publisher.refuse(state, &intent, why, &settings)?,
        None => publisher.publish(state, intent, deadline).await?,
    };
    Ok((outcome, deadline))
}

/// Follows `outcome` to the end: waits and tries again while the server asks for a retry
/// (until `deadline`, or until a signal stops the wait), then says how it ended and gives the
/// exit code.
async fn until_done(
    publisher: &Publisher<'_>,
    state: &mut State,
    post: &Post,
    mut outcome: Outcome,
    deadline: Timestamp,
) -> Result<u8, RunError> {
    let shutdown = publisher.shutdown;
    loop {
        let (wait, progress) = match outcome {
            Outcome::Sent { statuses } => {
                print_posted(post, "", &statuses);
                return Ok(exit::OK);
            }
            Outcome::Rejected { message } => {
                eprintln!("error: {} was not posted: {message}", post.id);
                return Ok(exit::FAILURE);
            }
            Outcome::Deferred { .. } if shutdown.is_cancelled() => return Ok(stopped(&outcome)),
            Outcome::Deferred { reason, .. } => {
                eprintln!("error: {} was not posted: {reason}", post.id);
                return Ok(exit::FAILURE);
            }
            Outcome::Retry { wait, progress, .. } => (wait, progress),
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => {}
        }
        if shutdown.is_cancelled() {
            eprintln!("stopped while waiting to try again; the post stays in flight and the daemon or the next `perennial post` finishes it");
            return Ok(exit::OK);
        }
        outcome = publisher.try_pending(state, deadline, progress).await?;
    }
}

/// Says on stdout that `post` is out, naming its statuses on the server; `note`, when not
/// empty, comes first in the brackets and ends with `; `.
fn print_posted(post: &Post, note: &str, statuses: &[String]) {
    println!(
        "posted {} ({note}{} status(es): {})",
        post.id,
        statuses.len(),
        statuses.join(", ")
    );
}

/// What `perennial post` says when a signal stopped it; exit 0 (it did what it was told).
fn stopped(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Deferred {
            still_pending: true,
            reason,
        } => eprintln!(
            "stopped: {reason}; the rest is sent by the daemon or the next `perennial post`"
        ),
        _ => eprintln!("stopped before anything was sent"),
    }
    exit::OK
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
fn cancel_on_terminate(shutdown: &CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: stopping after the request in flight"),
            _ = interrupt.recv() => tracing::info!("SIGINT: stopping after the request in flight"),
        }
        shutdown.cancel();
    });
    Ok(())
}

/// Prints a dry run's reports on standard output: sentences as they are, posts through the
/// printer `preview` uses, replies as their text; each post or reply ends with `---`.
pub struct Stdout;

impl Printer for Stdout {
    fn show(&self, report: Report<'_>) {
        // A closed stdout (e.g. `| head`) is not worth a panic.
        let mut out = std::io::stdout().lock();
        let _ = match report {
            Report::Note(line) => writeln!(out, "{line}"),
            Report::Post {
                heading,
                post,
                composed,
                limit,
            } => write_composed(&mut out, &heading, post, composed, limit)
                .and_then(|()| writeln!(out, "---")),
            Report::Reply { heading, text } => writeln!(out, "{heading}\n{text}\n---"),
        };
    }
}

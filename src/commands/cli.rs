//! The command line: arguments as clap parses them, and the exit codes the binary promises.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// The exit codes: the daemon's, which every command shares.
pub use crate::daemon::exit;

#[derive(Debug, Parser)]
#[command(
    name = "perennial",
    version,
    about = "Keeps a community's fediverse account alive: evergreen and ad hoc posts, fitted to the server, and answers to mentions.",
    after_help = "Exit codes: 0 ok, 1 errors found or runtime failure, 2 usage, 78 configuration error."
)]
pub struct Cli {
    /// The configuration file; relative paths inside it are relative to its folder.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "config.toml"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration and every post file; report every problem with file, line and column.
    Check(CheckArgs),
    /// Show each post exactly as it would be sent: every thread part, its length and the limit.
    Preview(PreviewArgs),
    /// Run the daemon: post on schedule, exactly once; reload on SIGHUP or file changes.
    Run(RunArgs),
    /// Send one post now, through the same exactly-once path, recorded in the history.
    Post(PostArgs),
    /// Show the upcoming plan: when each post goes out, and how it fits.
    Queue(QueueArgs),
    /// Get an access token: register an app, authorize it in a browser, write the token file (mode 0600).
    Login(LoginArgs),
    /// Make the running daemon reload (SIGHUP) and wait until it has: the units' `ExecReload=` on systemd 252.
    Reload(ReloadArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// The daemon's process id (`$MAINPID` in a unit).
    #[arg(long)]
    pub pid: u32,
    /// How long to wait for the reload to finish, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub timeout: u64,
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The server, e.g. https://fosstodon.org.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// Where to write the token (default: `token_file` in the config when it sets one, else /etc/perennial/token).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Also mark the account as a bot (asks for the `write:accounts` scope as well).
    #[arg(long)]
    pub bot: bool,
    /// Replace the token file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Send nothing and need no token: print the next planned post, then each status when it falls due.
    #[arg(long)]
    pub dry_run: bool,
    /// Post what is due now, if anything, and exit (for cron).
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, clap::Args)]
pub struct PostArgs {
    /// The post's id: its path under posts/ without .md, e.g. package-showcase/pandera.
    #[arg(value_name = "POST")]
    pub post: String,
    /// Print what would be sent; send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    /// How many days ahead.
    #[arg(long, value_name = "N", default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub days: u32,
    /// Plan as if it were this moment (RFC 3339, e.g. 2027-02-01T09:00:00-07:00); default: now.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<jiff::Timestamp>,
    /// Print JSON: {"timezone", "from", "until", "entries": [{"at" (every time RFC 3339 with the zone's offset), "reason", "post", "category", "fit", "statuses", "length", "limit"}], "missed", "pending", "failed", "files_with_errors", "truncated"}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// Post ids (path under posts/ without .md); all posts when none is given.
    #[arg(value_name = "POST")]
    pub posts: Vec<String>,
    /// The server's character limit (default: `max_characters` in the config, else 500).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// The counting rule (default: `software` in the config; `auto` previews with Mastodon's).
    #[arg(long, value_enum)]
    pub software: Option<PreviewSoftware>,
    /// Print JSON: [{"post", "software", "limit", "fitted", "unsendable", "statuses": [{"text", "spoiler_text", "visibility", "language", "in_reply_to", "length"}], "media": [{"file", "alt", "bytes"}]}].
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PreviewSoftware {
    Mastodon,
    Gotosocial,
    Pleroma,
    Akkoma,
    Generic,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// How to print problems: for people, as GitHub Actions annotations, or as JSON.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Github,
    Json,
}

/// `--from`: an RFC 3339 time with its offset. clap shows the error after "invalid value
/// 'tomorrow' for '--from <TIME>'", so the message says what is expected, not what the
/// parser tripped on.
fn parse_time(text: &str) -> Result<jiff::Timestamp, String> {
    text.parse::<jiff::Timestamp>().map_err(|_| {
        "expected a date and time with its UTC offset, like 2027-02-01T09:00:00-07:00 (RFC 3339)"
            .to_string()
    })
}

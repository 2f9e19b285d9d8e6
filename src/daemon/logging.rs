//! Sets up `tracing` once: to stderr, plain for the systemd journal, timestamped (and coloured
//! on a terminal) for a person.
//!
//! The decisions are pure functions of what the environment says ([`choose_format`],
//! [`filter_directives`]) so they can be tested without installing a global subscriber.
//!
//! Under systemd (`JOURNAL_STREAM` set) lines carry neither timestamps nor colour: journald
//! stamps each line itself. When stderr really is that journal stream (its device and inode
//! match `JOURNAL_STREAM`, as `sd_journal_stream_fd(3)` says to check), each line also starts
//! with the syslog priority `<N>`, which journald strips and keeps as the entry's priority, so
//! `journalctl -p warning -u perennial` shows the warnings and errors. The prefix is not
//! written when stderr was redirected elsewhere, where it would show as noise.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter variable, read like `RUST_LOG` (which is read when this one is unset): a level
/// (`debug`), or targets and levels separated by commas (`perennial=debug,warn`), as
/// `tracing_subscriber::filter::Targets` parses them. Not the span and field filters of
/// `EnvFilter` (`[span{field=value}]`): those need a regex engine, some 190 KB of code in every
/// daemon's memory for a filter nobody has used on this one.
pub const LOG_ENV_VAR: &str = "PERENNIAL_LOG";

/// What decides the format, read from the process by [`LogEnvironment::current`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogEnvironment {
    /// `JOURNAL_STREAM`: `DEVICE:INODE` of the journal stream systemd connected stdout and
    /// stderr to.
    pub journal_stream: Option<String>,
    /// Device and inode of our stderr, when they could be read.
    pub stderr_device_inode: Option<(u64, u64)>,
    pub stderr_is_terminal: bool,
    /// `NO_COLOR` set to anything non-empty (<https://no-color.org>).
    pub no_color: bool,
}

impl LogEnvironment {
    pub fn current() -> Self {
        use std::io::IsTerminal;
        LogEnvironment {
            journal_stream: std::env::var("JOURNAL_STREAM").ok(),
            stderr_device_inode: stderr_device_inode(),
            stderr_is_terminal: std::io::stderr().is_terminal(),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty()),
        }
    }
}

#[cfg(unix)]
fn stderr_device_inode() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let metadata = std::fs::File::from(fd).metadata().ok()?;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn stderr_device_inode() -> Option<(u64, u64)> {
    None
}

/// How each line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFormat {
    pub timestamps: bool,
    pub ansi: bool,
    /// Start each line with the syslog priority `<N>` for journald.
    pub journal_priority: bool,
}

/// Plain lines under systemd, priority prefixes only when stderr is the journal itself,
/// timestamps otherwise, and colour only on a terminal that has not asked for none.
pub fn choose_format(environment: &LogEnvironment) -> LogFormat {
    match &environment.journal_stream {
        Some(journal_stream) => LogFormat {
            timestamps: false,
            ansi: false,
            journal_priority: environment
                .stderr_device_inode
                .is_some_and(|ours| parse_journal_stream(journal_stream) == Some(ours)),
        },
        None => LogFormat {
            timestamps: true,
            ansi: environment.stderr_is_terminal && !environment.no_color,
            journal_priority: false,
        },
    }
}

/// `JOURNAL_STREAM` is `DEVICE:INODE`, both decimal.
fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (device, inode) = value.trim().split_once(':')?;
    Some((device.parse().ok()?, inode.parse().ok()?))
}

/// The filter directives: `PERENNIAL_LOG`, else `RUST_LOG`, else the default level. A variable
/// that is empty or only spaces counts as unset.
pub fn filter_directives(
    perennial_log: Option<&str>,
    rust_log: Option<&str>,
    default_level: LevelFilter,
) -> String {
    [perennial_log, rust_log]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|directives| !directives.is_empty())
        .map_or_else(|| default_level.to_string(), str::to_string)
}

/// The filter the directives say, or, when they cannot be read, `default_level` everywhere and
/// why.
pub fn parse_filter(
    directives: &str,
    default_level: LevelFilter,
) -> (Targets, Option<tracing_subscriber::filter::ParseError>) {
    match directives.parse::<Targets>() {
        Ok(filter) => (filter, None),
        Err(error) => (Targets::new().with_default(default_level), Some(error)),
    }
}

/// The journald priority for a level (`syslog(3)`: 3 err, 4 warning, 6 info, 7 debug).
fn syslog_priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// A line without timestamp for the journal: `[<N>]LEVEL span{fields}: target: message`.
/// The stock formatter without time pads the level to five columns, which would start
/// `INFO` and `WARN` lines with a space.
struct PlainLine {
    journal_priority: bool,
}

impl<S, N> FormatEvent<S, N> for PlainLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        if !self.journal_priority {
            return write_plain_line(context, writer, event);
        }
        // journald reads a stream line by line and takes the priority from each line's own
        // `<N>` (sd-daemon(3)): a line without one gets the stream's default, info. So every
        // line of a multi-line event (the problems under "the configuration has problems:")
        // carries the event's priority, or `journalctl -p warning` would show only the first.
        let mut line = String::new();
        write_plain_line(context, Writer::new(&mut line), event)?;
        let priority = syslog_priority(*metadata.level());
        for part in line.trim_end_matches('\n').split('\n') {
            writeln!(writer, "<{priority}>{part}")?;
        }
        Ok(())
    }
}

/// One event as `LEVEL span{fields}: target: message`, ending with a line break.
fn write_plain_line<S, N>(
    context: &FmtContext<'_, S, N>,
    mut writer: Writer<'_>,
    event: &Event<'_>,
) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let metadata = event.metadata();
    write!(writer, "{} ", metadata.level())?;
    if let Some(scope) = context.event_scope() {
        for span in scope.from_root() {
            write!(writer, "{}", span.name())?;
            let extensions = span.extensions();
            if let Some(fields) = extensions.get::<FormattedFields<N>>() {
                if !fields.is_empty() {
                    write!(writer, "{{{fields}}}")?;
                }
            }
            writer.write_str(":")?;
        }
        writer.write_str(" ")?;
    }
    write!(writer, "{}: ", metadata.target())?;
    context.format_fields(writer.by_ref(), event)?;
    writeln!(writer)
}

/// Installs the global subscriber: stderr, the format from [`choose_format`], the filter from
/// [`filter_directives`]. Meant to be called once, first thing in `main`; a later call leaves
/// the first subscriber in place and does nothing (so tests and a library caller cannot make
/// it panic). An invalid filter falls back to `default_level`, with a warning that names it.
pub fn init(default_level: LevelFilter) {
    let format = choose_format(&LogEnvironment::current());
    let perennial_log = std::env::var(LOG_ENV_VAR).ok();
    let rust_log = std::env::var("RUST_LOG").ok();
    let directives =
        filter_directives(perennial_log.as_deref(), rust_log.as_deref(), default_level);
    let (filter, bad_filter) = parse_filter(&directives, default_level);

    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(format.ansi);
    let layer = if format.timestamps {
        layer.with_filter(filter).boxed()
    } else {
        let journal_priority = format.journal_priority;
        layer
            .event_format(PlainLine { journal_priority })
            .with_filter(filter)
            .boxed()
    };
    if tracing_subscriber::registry()
        .with(layer)
        .try_init()
        .is_err()
    {
        return;
    }
    if let Some(error) = bad_filter {
        tracing::warn!(
            "ignoring the log filter {directives:?} ({error}); logging at {default_level}. Set \
             {LOG_ENV_VAR} to a level such as `debug` or to directives such as \
             `perennial=debug,warn`"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> LogEnvironment {
        LogEnvironment {
            journal_stream: journal_stream.map(str::to_string),
            stderr_device_inode: stderr,
            stderr_is_terminal: true,
            no_color: false,
        }
    }

    #[test]
    fn journal_stream_parses_device_and_inode() {
        assert_eq!(parse_journal_stream("8:12345"), Some((8, 12345)));
        assert_eq!(parse_journal_stream("8:"), None);
        assert_eq!(parse_journal_stream("garbage"), None);
    }

    #[test]
    fn priority_prefix_only_when_stderr_is_the_journal_stream() {
        let matching = environment(Some("8:12345"), Some((8, 12345)));
        let redirected = environment(Some("8:12345"), Some((8, 999)));
        let unknown = environment(Some("8:12345"), None);
        assert!(choose_format(&matching).journal_priority);
        assert!(!choose_format(&redirected).journal_priority);
        assert!(!choose_format(&unknown).journal_priority);
    }

    /// What `PlainLine` writes for a warning inside a span, and an info line outside any.
    fn plain_lines(journal_priority: bool) -> String {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .event_format(PlainLine { journal_priority });
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("post", id = "tips/a");
            span.in_scope(|| tracing::warn!(attempt = 2, "server \x1b[31mbusy"));
            tracing::info!("ready");
            tracing::error!(
                "the configuration has problems:\nconfig.toml:23:1: unknown field\n  hint: …"
            );
        });
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn plain_lines_for_the_journal() {
        assert_eq!(
            plain_lines(false),
            "WARN post{id=\"tips/a\"}: perennial::daemon::logging::tests: server \\x1b[31mbusy \
             attempt=2\nINFO perennial::daemon::logging::tests: ready\nERROR perennial::daemon::logging::tests: \
             the configuration has problems:\nconfig.toml:23:1: unknown field\n  hint: …\n"
        );
        assert_eq!(
            plain_lines(true),
            "<4>WARN post{id=\"tips/a\"}: perennial::daemon::logging::tests: server \\x1b[31mbusy \
             attempt=2\n<6>INFO perennial::daemon::logging::tests: ready\n<3>ERROR \
             perennial::daemon::logging::tests: the configuration has problems:\n<3>config.toml:23:1: \
             unknown field\n<3>  hint: …\n"
        );
    }

    #[test]
    fn syslog_priorities() {
        let all = [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ];
        assert_eq!(all.map(syslog_priority), [3, 4, 6, 7, 7]);
    }
}

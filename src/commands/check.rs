//! `perennial check`: loads the config and every post and reports every problem.

use std::io::Write;
use std::path::Path;

use crate::commands::cli::{exit, CheckArgs, Format};
use crate::plan::stale_adhoc;
use crate::posts::config::Config;
use crate::posts::diagnostic::{Diagnostic, Severity};
use crate::posts::library::{load_configured, Library};
use crate::posts::post::Post;
use crate::state::fit::offline_fit_from_state;
use crate::text::compose::fit_settings;
use crate::text::count::Counter;

use crate::text::compose::{compose, limit_warning, Composed, Fit, FitProblem};

pub fn run(config_path: &Path, args: &CheckArgs) -> u8 {
    let mut out = std::io::stdout().lock();
    let Some(config) = load_config(&mut out, args.format, config_path) else {
        return exit::CONFIG;
    };
    // How each good post fits the configured server; a `short` that does not fit is an error.
    let fit = offline_fit_from_state(&config);
    let mut library = load_configured(&config, fit.media);
    eprintln!("{}", fit.source);
    if let Some(warning) = limit_warning(&fit.counter) {
        eprintln!("warning: {warning}");
    }
    let fits = check_fits(&config, &fit.counter, &mut library);
    library
        .errors
        .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    let warnings = stale_adhoc_warnings(&config, &library);
    if args.format == Format::Json {
        print_json(&mut out, &library.errors, &warnings);
    } else {
        print_diagnostics(&mut out, args.format, &library.errors);
        print_warnings(&mut out, args.format, &warnings);
        print_summary(&mut out, &library, &fits, fit.counter.limit());
    }
    if library.errors.is_empty() {
        exit::OK
    } else {
        exit::FAILURE
    }
}

/// The configuration at `config_path`; `None` when it has problems, which are printed on
/// `out` in `format` (the command then exits with [`exit::CONFIG`]).
pub fn load_config(out: &mut impl Write, format: Format, config_path: &Path) -> Option<Config> {
    match Config::load(config_path) {
        Ok(config) => Some(config),
        Err(errors) => {
            print_diagnostics(out, format, &errors);
            None
        }
    }
}

/// Composes each good post as it would be sent with `counter`: gives how each fits and the
/// length of its longest status, in the order of `library.posts`, and adds an error to
/// `library.errors` for a `short` that does not fit and for a post that would not be sent.
fn check_fits(config: &Config, counter: &Counter, library: &mut Library) -> Vec<(Fit, usize)> {
    let settings = fit_settings(config, counter);
    let mut fits = Vec::with_capacity(library.posts.len());
    for post in &library.posts {
        let composed = compose(post, &settings);
        library.errors.extend(fit_errors(post, &composed));
        let longest = composed
            .statuses
            .iter()
            .map(|s| s.length)
            .max()
            .unwrap_or(0);
        fits.push((composed.fit, longest));
    }
    fits
}

/// The errors in how `post` was composed: each `short` that does not fit, at the `short`
/// key, then one error for a post that would not be sent, whatever made it so.
fn fit_errors(post: &Post, composed: &Composed) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for problem in &composed.problems {
        if let FitProblem::ShortTooLong { .. } = problem {
            let (line, column) = post.short_position.unwrap_or((1, 1));
            errors.push(Diagnostic {
                file: post.file.clone(),
                line,
                column,
                message: problem.to_string(),
                hint: Some("shorten `short`; URLs count as 23 characters on Mastodon".into()),
            });
        }
    }
    if let Some(message) = composed.unsendable() {
        errors.push(Diagnostic {
            file: post.file.clone(),
            line: 1,
            column: 1,
            message,
            hint: Some(format!(
                "if the limit is wrong, set `max_characters` in the config; else shorten {}",
                what_to_shorten(post)
            )),
        });
    }
    errors
}

/// What the hint for a post that would not be sent suggests shortening: its content warning
/// and its link where it has them, else its text.
fn what_to_shorten(post: &Post) -> &'static str {
    match (post.content_warning.is_some(), post.link.is_some()) {
        (true, true) => "the content warning or the link",
        (true, false) => "the content warning or the text",
        (false, true) => "the link",
        (false, false) => "the text",
    }
}

/// Loads the configured posts directory with the real file system, checking media against
/// the server's limits as the daemon last saw them ([`crate::state::fit::offline_media_limits`]).
pub fn load(config: &Config) -> Library {
    load_configured(config, crate::state::fit::offline_media_limits(config))
}

pub fn print_diagnostics(out: &mut impl Write, format: Format, diagnostics: &[Diagnostic]) {
    // A closed stdout (e.g. `| head`) is not worth a panic; the exit code still tells.
    let _ = match format {
        Format::Human => print_human(out, Severity::Error, diagnostics),
        Format::Github => diagnostics
            .iter()
            .try_for_each(|d| writeln!(out, "{}", d.to_github())),
        Format::Json => serde_json::to_writer_pretty(&mut *out, diagnostics)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out)),
    };
}

/// A warning for every ad hoc post whose time has passed without it going out (per the state
/// file, read without the lock), at its `at = ` line: an announcement or an example left with
/// last year's date never goes out, and says so here rather than never.
fn stale_adhoc_warnings(config: &Config, library: &Library) -> Vec<Diagnostic> {
    let state = crate::state::fit::open_state(config)
        .load()
        .ok()
        .flatten()
        .unwrap_or_default();
    let now = jiff::Timestamp::now();
    let zone = &config.schedule.timezone;
    stale_adhoc(&library.posts, &state, now, config.schedule.grace)
        .into_iter()
        .filter_map(|stale| {
            let post = library.posts.iter().find(|post| post.id == stale.post)?;
            let source = std::fs::read_to_string(&post.file).unwrap_or_default();
            let offset = at_line_offset(&source).unwrap_or(0);
            let when = stale
                .at
                .to_zoned(zone.clone())
                .strftime("%a %Y-%m-%d %H:%M %Z");
            Some(
                Diagnostic::at_offset(
                    &post.file,
                    &source,
                    offset,
                    format!(
                        "this ad hoc post was due {when} and was not sent: {}",
                        stale.consequence()
                    ),
                )
                .with_hint("set `at` to a time to come, or remove the post"),
            )
        })
        .collect()
}

/// Where the front matter's `at = ` line starts in a post file.
fn at_line_offset(source: &str) -> Option<usize> {
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed
            .strip_prefix("at")
            .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(offset + (line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    None
}

/// Each problem as rustc shows one (the file's line, a caret, `error:` or `warning:`), with a
/// blank line after each. Each file is read once; one that cannot be read (gone, or not UTF-8)
/// is shown without its line.
fn print_human(
    out: &mut impl Write,
    severity: Severity,
    diagnostics: &[Diagnostic],
) -> std::io::Result<()> {
    let mut sources: std::collections::HashMap<&Path, Option<String>> = Default::default();
    for diagnostic in diagnostics {
        let source = sources
            .entry(diagnostic.file.as_path())
            .or_insert_with(|| read_source(&diagnostic.file));
        writeln!(out, "{}\n", diagnostic.render(severity, source.as_deref()))?;
    }
    Ok(())
}

/// A user's file for showing its lines: at most 1 MiB (a post file is refused beyond that),
/// and only when it is UTF-8.
fn read_source(file: &Path) -> Option<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .ok()?
        .take(1 << 20)
        .read_to_end(&mut bytes)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Warnings after the errors: `warning:` with the line and a caret for people, `::warning` for
/// GitHub. In JSON they follow the errors in the same array, each with
/// `"severity": "warning"` (errors carry no severity, as before).
fn print_warnings(out: &mut impl Write, format: Format, warnings: &[Diagnostic]) {
    if format == Format::Human {
        let _ = print_human(out, Severity::Warning, warnings);
        return;
    }
    let _ = warnings.iter().try_for_each(|w| match format {
        Format::Human => Ok(()),
        Format::Github => writeln!(out, "{}", w.to_github().replacen("::error", "::warning", 1)),
        Format::Json => Ok(()),
    });
}

/// Errors, then warnings with `"severity": "warning"`, as one JSON array.
fn print_json(out: &mut impl Write, errors: &[Diagnostic], warnings: &[Diagnostic]) {
    let mut all: Vec<serde_json::Value> = errors
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect();
    for warning in warnings {
        if let Ok(mut value) = serde_json::to_value(warning) {
            value["severity"] = "warning".into();
            all.push(value);
        }
    }
    let _ = serde_json::to_writer_pretty(&mut *out, &all)
        .map_err(std::io::Error::other)
        .and_then(|()| writeln!(out));
}

/// One line per post file in aligned columns: `ok`, the id, category, kind, the length the
/// server counts against its limit (of the longest status, for a thread), how it fits.
fn print_summary(out: &mut impl Write, library: &Library, fits: &[(Fit, usize)], limit: usize) {
    let rows: Vec<[String; 6]> = library
        .files
        .iter()
        .map(|(id, file)| summary_row(library, fits, limit, id, file))
        .collect();
    let bad = rows.iter().filter(|row| row[0] == "error").count();
    let widths = column_widths(&rows);
    for row in &rows {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
            if column > 0 {
                line.push_str("  ");
            }
            // The length column is right-aligned so that the numbers line up.
            if column == 4 {
                line.push_str(&format!("{cell:>width$}"));
            } else {
                line.push_str(&format!("{cell:width$}"));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(
        out,
        "{} post file(s): {} ok, {} with errors; {} problem(s) in all",
        library.files.len(),
        library.files.len() - bad,
        bad,
        library.errors.len()
    );
}

/// The summary's row for the post file `file` with the id `id`: `ok` with how it fits, or
/// `error` with how many problems were printed for it.
fn summary_row(
    library: &Library,
    fits: &[(Fit, usize)],
    limit: usize,
    id: &str,
    file: &Path,
) -> [String; 6] {
    let problems = library.errors.iter().filter(|e| e.file == file).count();
    match library.posts.binary_search_by(|p| p.id.as_str().cmp(id)) {
        Ok(index) if problems == 0 => {
            let post = &library.posts[index];
            let (fit, length) = fits[index];
            [
                "ok".into(),
                id.to_string(),
                post.category.clone(),
                post.kind.name().to_string(),
                format!("{length}/{limit}"),
                fit.to_string(),
            ]
        }
        _ => [
            "error".into(),
            id.to_string(),
            format!("{problems} problem(s) above"),
            String::new(),
            String::new(),
            String::new(),
        ],
    }
}

/// The width of each column: the widest cell of the `ok` rows (at least 5, for `error`);
/// the id column also fits the ids of the `error` rows, whose third cell runs on.
fn column_widths(rows: &[[String; 6]]) -> [usize; 6] {
    let mut widths = [5, 0, 0, 0, 0, 0];
    for row in rows.iter().filter(|row| row[0] == "ok") {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    widths[1] = rows
        .iter()
        .map(|row| row[1].chars().count())
        .max()
        .unwrap_or(0);
    widths
}

//! `perennial check`: loads the config and every post and reports every problem.

use std::io::Write;
use std::path::Path;

use crate::cli::{exit, CheckArgs, Format};
use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::library::{load_library, Library};
use crate::post::{PostContext, DEFAULT_ALT_TEXT_LIMIT};

pub fn run(config_path: &Path, args: &CheckArgs) -> u8 {
    let mut out = std::io::stdout().lock();
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(errors) => {
            print_diagnostics(&mut out, args.format, &errors);
            return exit::CONFIG;
        }
    };
    let library = load(&config);
    print_diagnostics(&mut out, args.format, &library.errors);
    if args.format != Format::Json {
        print_summary(&mut out, &library);
    }
    if library.errors.is_empty() {
        exit::OK
    } else {
        exit::FAILURE
    }
}

/// Loads the configured posts directory with the real file system.
pub fn load(config: &Config) -> Library {
    let context = PostContext {
        posts_dir: &config.posts.dir,
        timezone: &config.schedule.timezone,
        alt_text_limit: DEFAULT_ALT_TEXT_LIMIT,
        file_exists: &|path: &Path| path.is_file(),
    };
    load_library(&context)
}

fn print_diagnostics(out: &mut impl Write, format: Format, diagnostics: &[Diagnostic]) {
    // A closed stdout (e.g. `| head`) is not worth a panic; the exit code still tells.
    let _ = match format {
        Format::Human => diagnostics.iter().try_for_each(|d| writeln!(out, "{d}")),
        Format::Github => diagnostics
            .iter()
            .try_for_each(|d| writeln!(out, "{}", d.to_github())),
        Format::Json => serde_json::to_writer_pretty(&mut *out, diagnostics)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out)),
    };
}

fn print_summary(out: &mut impl Write, library: &Library) {
    let width = library
        .files
        .iter()
        .map(|(id, _)| id.len())
        .max()
        .unwrap_or(0);
    let mut bad = 0;
    for (id, file) in &library.files {
        let line = match library.posts.binary_search_by(|p| p.id.as_str().cmp(id)) {
            Ok(index) => {
                let post = &library.posts[index];
                format!(
                    "ok     {id:width$}  {}  {}  {} chars",
                    post.category,
                    post.kind.name(),
                    post.text.chars().count()
                )
            }
            Err(_) => {
                bad += 1;
                let count = library.errors.iter().filter(|e| &e.file == file).count();
                format!("error  {id:width$}  {count} problem(s) above")
            }
        };
        let _ = writeln!(out, "{line}");
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

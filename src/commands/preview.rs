//! `perennial preview`: each post exactly as it would be sent, with its counted length.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::commands::check::load_config;
use crate::commands::cli::{exit, Format, PreviewArgs, PreviewSoftware};
use crate::posts::config::software_name;
use crate::posts::library::{load_configured, Library};
use crate::posts::post::Post;
use crate::state::fit::{offline_fit_from_state_with, OfflineFit};
use crate::text::compose::fit_settings;
use crate::text::compose::{compose, limit_warning, Composed, Status};
use crate::text::count::{Counter, Software};

#[derive(Serialize)]
struct PreviewJson<'a> {
    post: &'a str,
    /// The rules the post was fitted with, and where they came from.
    software: &'static str,
    limit: usize,
    fitted: &'a str,
    /// Why the post would not be sent (`null` when it would).
    unsendable: Option<String>,
    statuses: &'a [Status],
    /// Uploaded with the first status: file, alt text and size in bytes.
    media: Vec<crate::commands::show::MediaShown>,
}

pub fn run(config_path: &Path, args: &PreviewArgs) -> u8 {
    let mut out = std::io::stdout().lock();
    let format = if args.json {
        Format::Json
    } else {
        Format::Human
    };
    let Some(config) = load_config(&mut out, format, config_path) else {
        return exit::CONFIG;
    };
    let software = args.software.map(counting_rule);
    let fit = offline_fit_from_state_with(&config, software, args.limit.map(|l| l as usize));
    let library = load_configured(&config, fit.media);
    if !args.json {
        eprintln!("{}", fit.source);
    }
    if let Some(warning) = limit_warning(&fit.counter) {
        eprintln!("warning: {warning}");
    }
    let settings = fit_settings(&config, &fit.counter);
    let code = report_left_out(&library, &args.posts);
    let composed: Vec<_> = library
        .posts
        .iter()
        .filter(|post| args.posts.is_empty() || args.posts.contains(&post.id))
        .map(|post| (post, compose(post, &settings)))
        .collect();
    if args.json {
        print_json(&mut out, &composed, &fit);
    } else {
        print_human(&mut out, &composed, &fit.counter);
    }
    code
}

/// The counting rule `--software` names.
fn counting_rule(software: PreviewSoftware) -> Software {
    match software {
        PreviewSoftware::Mastodon => Software::Mastodon,
        PreviewSoftware::Gotosocial => Software::Gotosocial,
        PreviewSoftware::Pleroma => Software::Pleroma,
        PreviewSoftware::Akkoma => Software::Akkoma,
        PreviewSoftware::Generic => Software::Generic,
    }
}

/// Says on stderr which posts the preview leaves out: each post asked for that does not
/// exist or has errors, or, when none was asked for, how many problems the post files have.
/// The exit code: [`exit::FAILURE`] when anything is left out.
fn report_left_out(library: &Library, wanted: &[String]) -> u8 {
    let mut code = exit::OK;
    for wanted in wanted {
        if !library.posts.iter().any(|post| &post.id == wanted) {
            let known = library.files.iter().any(|(id, _)| id == wanted);
            let reason = if known {
                "has errors (run `perennial check`)"
            } else {
                "does not exist"
            };
            eprintln!("error: post `{wanted}` {reason}");
            code = exit::FAILURE;
        }
    }
    if wanted.is_empty() && !library.errors.is_empty() {
        eprintln!(
            "error: {} problem(s) in post files; those posts are left out (run `perennial check`)",
            library.errors.len()
        );
        code = exit::FAILURE;
    }
    code
}

/// `--json`: one [`PreviewJson`] per post, as a pretty-printed array.
fn print_json(out: &mut impl Write, composed: &[(&Post, Composed)], fit: &OfflineFit) {
    let items: Vec<PreviewJson> = composed
        .iter()
        .map(|(post, c)| PreviewJson {
            post: &post.id,
            software: software_name(fit.counter.software()),
            limit: fit.counter.limit(),
            fitted: &fit.source,
            unsendable: c.unsendable(),
            statuses: &c.statuses,
            media: crate::commands::show::media(post),
        })
        .collect();
    let _ = serde_json::to_writer_pretty(&mut *out, &items);
    let _ = writeln!(out);
}

/// For people: each post under a heading with its fit, the rules and the limit, then each
/// status as [`crate::commands::show::write_composed`] shows it, and a blank line.
fn print_human(out: &mut impl Write, composed: &[(&Post, Composed)], counter: &Counter) {
    let limit = counter.limit();
    for (post, c) in composed {
        let heading = format!(
            "{} ({}; {} rules, limit {limit})",
            post.id,
            c.fit,
            software_name(counter.software())
        );
        let _ = crate::commands::show::write_composed(out, &heading, post, c, limit);
        let _ = writeln!(out);
    }
}

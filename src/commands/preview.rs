//! `perennial preview`: each post exactly as it would be sent, with its counted length.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::commands::check::print_diagnostics;
use crate::commands::cli::{exit, Format, PreviewArgs, PreviewSoftware};
use crate::posts::config::software_name;
use crate::posts::config::Config;
use crate::posts::library::load_configured;
use crate::state::fit::offline_fit_from_state_with;
use crate::text::compose::fit_settings;
use crate::text::compose::{compose, limit_warning, Status};
use crate::text::count::Software;

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
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(errors) => {
            print_diagnostics(&mut out, format, &errors);
            return exit::CONFIG;
        }
    };
    let software = args.software.map(|software| match software {
        PreviewSoftware::Mastodon => Software::Mastodon,
        PreviewSoftware::Gotosocial => Software::Gotosocial,
        PreviewSoftware::Pleroma => Software::Pleroma,
        PreviewSoftware::Akkoma => Software::Akkoma,
        PreviewSoftware::Generic => Software::Generic,
    });
    let fit = offline_fit_from_state_with(&config, software, args.limit.map(|l| l as usize));
    let library = load_configured(&config, fit.media);
    if !args.json {
        eprintln!("{}", fit.source);
    }
    if let Some(warning) = limit_warning(&fit.counter) {
        eprintln!("warning: {warning}");
    }
    let counter = &fit.counter;
    let settings = fit_settings(&config, counter);

    let mut code = exit::OK;
    for wanted in &args.posts {
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
    let selected: Vec<_> = library
        .posts
        .iter()
        .filter(|post| args.posts.is_empty() || args.posts.contains(&post.id))
        .collect();
    if args.posts.is_empty() && !library.errors.is_empty() {
        eprintln!(
            "error: {} problem(s) in post files; those posts are left out (run `perennial check`)",
            library.errors.len()
        );
        code = exit::FAILURE;
    }
    let composed: Vec<_> = selected
        .iter()
        .map(|post| (post, compose(post, &settings)))
        .collect();
    if args.json {
        let items: Vec<PreviewJson> = composed
            .iter()
            .map(|(post, c)| PreviewJson {
                post: &post.id,
                software: software_name(counter.software()),
                limit: counter.limit(),
                fitted: &fit.source,
                unsendable: c.unsendable(),
                statuses: &c.statuses,
                media: crate::commands::show::media(post),
            })
            .collect();
        let _ = serde_json::to_writer_pretty(&mut out, &items);
        let _ = writeln!(out);
        return code;
    }
    let limit = counter.limit();
    for (post, c) in &composed {
        let heading = format!(
            "{} ({}; {} rules, limit {limit})",
            post.id,
            c.fit,
            software_name(counter.software())
        );
        let _ = crate::commands::show::write_composed(&mut out, &heading, post, c, limit);
        let _ = writeln!(out);
    }
    code
}

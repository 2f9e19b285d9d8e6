//! The bundled `config.toml` and `posts/` are the first user's working example: they must
//! always load without a single error (so the example can never rot).

use perennial::commands::check::load;
use perennial::posts::config::Config;

use crate::support::repository_root;

#[test]
fn bundled_config_and_posts_load_without_errors() {
    let config = Config::load(&repository_root().join("config.toml"))
        .unwrap_or_else(|errors| panic!("config.toml has errors: {errors:#?}"));
    assert_eq!(config.server.url, "https://fosstodon.org");
    assert_eq!(config.schedule.timezone_name, "America/Denver");
    assert!(
        config.guides.len() >= 5,
        "the example lists the community's guides"
    );

    let library = load(&config);
    let errors: Vec<String> = library.errors.iter().map(ToString::to_string).collect();
    assert!(
        errors.is_empty(),
        "bundled posts have errors:\n{}",
        errors.join("\n")
    );
    assert!(
        library.posts.len() >= 16,
        "only {} bundled posts",
        library.posts.len()
    );
    let adhoc = library
        .posts
        .iter()
        .filter(|p| p.kind.name() == "adhoc")
        .count();
    assert!(adhoc >= 2, "the example has ad hoc posts");
    // Issue 15 item 7: an example dated in the past never goes out and teaches nothing.
    // This fails the day a bundled ad hoc post's time passes: date them a year or more ahead.
    let now = jiff::Timestamp::now();
    for post in &library.posts {
        if let perennial::posts::post::PostKind::Adhoc { at, .. } = post.kind {
            assert!(
                at > now,
                "the bundled ad hoc post {} is dated {at}, in the past: move it (and the \
                 year simulation's year) a year or more ahead",
                post.id
            );
        }
    }
    let with_media = library.posts.iter().filter(|p| !p.media.is_empty()).count();
    assert!(with_media >= 2, "the example has posts with media");
    let long = library
        .posts
        .iter()
        .filter(|p| (1200..=3000).contains(&p.text.chars().count()))
        .count();
    assert!(
        long >= 6,
        "the example has LinkedIn-length posts, found {long}"
    );
}

/// Issue 17 item 4: a thread of a bundled post is cut between paragraphs or list items when
/// one fits, and a part that goes on with a list item says so (`• … `), at the limits the
/// example meets (fosstodon's 500, and smaller servers).
#[test]
fn bundled_threads_are_cut_between_items_or_say_a_part_continues_one() {
    use perennial::text::compose::fit_settings;
    use perennial::text::compose::{compose, Fit};
    use perennial::text::count::{Counter, Software};

    let config = Config::load(&repository_root().join("config.toml")).unwrap();
    let library = load(&config);
    let mut threads = 0;
    for limit in [500, 400, 300] {
        let counter = Counter::new(Software::Mastodon, limit, 23);
        let settings = fit_settings(&config, &counter);
        for post in &library.posts {
            let composed = compose(post, &settings);
            let Fit::Thread { parts, .. } = composed.fit else {
                continue;
            };
            threads += 1;
            for (i, status) in composed.statuses.iter().enumerate().skip(1) {
                let suffix = format!(" ({}/{parts})", i + 1);
                let text = status.text.strip_suffix(&suffix).unwrap();
                if text.starts_with("• … ") {
                    continue;
                }
                // Not marked: the part starts a line of the body (a paragraph or an item)…
                let head: String = text.chars().take(30).collect();
                let at = post.text.find(&head).unwrap_or_else(|| {
                    panic!(
                        "{} part {} at {limit}: {text:?} not in the body",
                        post.id,
                        i + 1
                    )
                });
                let line = &post.text[post.text[..at].rfind('\n').map_or(0, |n| n + 1)..at];
                // …or goes on in a paragraph that is not a list item.
                let line = line.trim_start();
                assert!(
                    line.is_empty() || !line.starts_with("• "),
                    "{} part {} at {limit} goes on with a list item unmarked: {text:?}",
                    post.id,
                    i + 1
                );
            }
        }
        // The case: mission's second part at 500 does not end inside an item.
        if limit == 500 {
            let mission = library
                .posts
                .iter()
                .find(|post| post.id == "who-we-are/mission")
                .unwrap();
            let composed = compose(mission, &settings);
            let second = &composed.statuses[1].text;
            assert!(
                !second.contains("• Community. ("),
                "mission is cut inside the Community item: {second:?}"
            );
        }
    }
    assert!(threads >= 3, "only {threads} threads");
}

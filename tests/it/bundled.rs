//! The bundled `config.toml` and `posts/` are the first user's working example: they must
//! always load without a single error (so the example can never rot).

use perennial::commands::check::load;
use perennial::config::Config;

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
        if let perennial::post::PostKind::Adhoc { at, .. } = post.kind {
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

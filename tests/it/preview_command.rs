//! `perennial preview` run as a user runs it: every bundled post fits under each server's rule.

use perennial::text::count::{Counter, Software};

use crate::support::{perennial, repository_root};

fn preview_json(args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["preview", "--json"];
    all.extend_from_slice(args);
    let output = perennial(&repository_root(), &all);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .expect("JSON")
        .as_array()
        .expect("an array")
        .clone()
}

/// Recounts every status independently with `counter` and checks the limit and the shape.
fn assert_all_fit(posts: &[serde_json::Value], counter: &Counter) {
    assert!(posts.len() >= 16);
    for post in posts {
        let statuses = post["statuses"].as_array().unwrap();
        assert!(!statuses.is_empty());
        for (i, status) in statuses.iter().enumerate() {
            let text = status["text"].as_str().unwrap();
            let spoiler = status["spoiler_text"].as_str().unwrap();
            let length = counter.count_status(text, spoiler);
            assert_eq!(status["length"], length, "{}", post["post"]);
            assert!(
                length <= counter.limit(),
                "{} part {i}: {length} > {}",
                post["post"],
                counter.limit()
            );
            let expected_reply = if i == 0 {
                serde_json::Value::Null
            } else {
                (i - 1).into()
            };
            assert_eq!(status["in_reply_to"], expected_reply);
            assert!(status["language"].as_str().is_some_and(|l| l.len() == 2));
        }
    }
}

#[test]
fn every_bundled_post_fits_500_under_mastodon_rules() {
    let posts = preview_json(&[]);
    assert_all_fit(&posts, &Counter::new(Software::Mastodon, 500, 23));
    // The bundled posts exercise every way of fitting.
    let threads = posts
        .iter()
        .filter(|p| p["statuses"].as_array().unwrap().len() > 1)
        .count();
    assert!(threads >= 2, "the bundled posts include threads");
}

#[test]
fn every_bundled_post_fits_under_the_gotosocial_rule_and_a_small_limit() {
    let posts = preview_json(&["--software", "gotosocial", "--limit", "300"]);
    assert_all_fit(&posts, &Counter::new(Software::Gotosocial, 300, 23));
}

#[test]
fn preview_of_named_posts_shows_only_those_and_an_unknown_post_fails() {
    let posts = preview_json(&["who-we-are/mission"]);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["post"], "who-we-are/mission");
    let output = perennial(&repository_root(), &["preview", "no/such-post"]);
    assert_eq!(output.status.code(), Some(1));
    // One style of prefix, `error:`, as every other command uses.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\nerror: post `no/such-post` does not exist"),
        "{stderr}"
    );
}

/// Issue 17 item 5: a post without a content warning is never told that its content warning
/// takes the room.
#[test]
fn preview_at_a_tiny_limit_names_only_what_the_post_has() {
    let output = perennial(
        &repository_root(),
        &["preview", "--limit", "30", "packaging-tips/pyproject-toml"],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("error: this post cannot be sent at the limit of 30"),
        "{text}"
    );
    assert!(text.contains("fits beside the link, so"), "{text}");
    assert!(!text.contains("content warning"), "{text}");
}

#[test]
fn check_reports_how_each_post_fits_and_a_short_that_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[server]\nurl = \"https://a.example\"\nmax_characters = 100\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("posts")).unwrap();
    let long_body = "This sentence is here to make the post long enough. ".repeat(5);
    std::fs::write(
        dir.path().join("posts/long.md"),
        format!(
            "+++\ntitle = \"x\"\nshort = \"\"\"{}\"\"\"\n+++\n{long_body}\n",
            "too long ".repeat(15)
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("posts/thread.md"),
        format!("+++\ntitle = \"y\"\nlong_posts = \"thread\"\n+++\n{long_body}\n"),
    )
    .unwrap();
    let output = perennial(dir.path(), &["check"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "posts/long.md:3:9: error: `short` is 134 characters with the link, over the limit of 100"
        ),
        "{text}"
    );
    // Five sentences of 51: two never fit in 100 - " (i/5)", so one sentence per part. The
    // length is the server's count of the longest part against the limit, in aligned columns.
    assert!(
        text.contains("ok     thread  posts  evergreen  57/100  thread of 5"),
        "{text}"
    );
    assert!(text.contains("error  long    1 problem(s) above"), "{text}");
}

/// Issue 17 item 2: `preview`, `post --dry-run` and `preview --json` show all that is sent:
/// every status with its length and the limit, the content warning, and the media of the
/// first status with file, size and alt text.
#[test]
fn preview_and_post_dry_run_show_the_content_warning_and_the_media() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[server]\nurl = \"https://a.example\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("posts/tips/images")).unwrap();
    std::fs::copy(
        repository_root().join("tests/data/posts/invalid/images/pixel.png"),
        dir.path().join("posts/tips/images/pixel.png"),
    )
    .unwrap();
    let bytes = std::fs::metadata(dir.path().join("posts/tips/images/pixel.png"))
        .unwrap()
        .len();
    std::fs::write(
        dir.path().join("posts/tips/pictured.md"),
        "+++\ntitle = \"p\"\nhashtags = []\ncontent_warning = \"eye strain\"\n\n[[media]]\nfile = \"images/pixel.png\"\nalt = \"One white pixel.\"\n+++\nA picture of a pixel.\n",
    )
    .unwrap();
    let media_line =
        format!("media: posts/tips/images/pixel.png ({bytes} bytes)\n  alt: One white pixel.\n");
    for args in [
        &["preview"][..],
        &["post", "--dry-run", "tips/pictured"][..],
    ] {
        let output = perennial(dir.path(), args);
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {text}");
        assert!(
            text.contains("--- status 1 of 1: 31/500 characters, public, en\ncontent warning: eye strain\nA picture of a pixel.\n"),
            "{args:?}: {text}"
        );
        assert!(text.contains(&media_line), "{args:?}: {text}");
    }
    let output = perennial(dir.path(), &["preview", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json[0]["media"],
        serde_json::json!([{"file": "posts/tips/images/pixel.png", "alt": "One white pixel.", "bytes": bytes}])
    );
}

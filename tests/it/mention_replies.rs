//! The reply composer with the bundled `config.toml`'s guides: which guides a question gets,
//! the exact reply texts, visibility, the "thanks!" rule, and fitting to small limits and
//! long `@acct`s.

use perennial::network::Mention;
use perennial::posts::config::{Config, Guide, Visibility};
use perennial::text::count::{Counter, Software};
use perennial::text::html::html_to_text;
use perennial::text::reply::{compose_reply, Decision, NoReplyReason, Reply, ReplySettings};

use crate::support::repository_root;

const BOT: &str = "1";

fn bundled_guides() -> Vec<Guide> {
    Config::load(&repository_root().join("config.toml"))
        .unwrap_or_else(|errors| panic!("config.toml has errors: {errors:#?}"))
        .guides
}

fn guide<'g>(guides: &'g [Guide], topic: &str) -> &'g Guide {
    guides
        .iter()
        .find(|g| g.topic == topic)
        .unwrap_or_else(|| panic!("config.toml has no guide with the topic {topic:?}"))
}

/// A public mention by `acct` whose text (after the bot's own h-card) is `text`.
fn mention(acct: &str, text: &str) -> Mention {
    Mention {
        notification_id: "n-1".to_string(),
        created_at: "2025-06-02T10:00:00Z".parse().unwrap(),
        status_id: "s-1".to_string(),
        text: html_to_text(&format!(
            r#"<p><span class="h-card"><a href="https://fosstodon.org/@pyos" class="u-url mention">@<span>pyos</span></a></span> {text}</p>"#
        )),
        spoiler_text: String::new(),
        visibility: Visibility::Public,
        in_reply_to_id: None,
        in_reply_to_account_id: None,
        account_id: "42".to_string(),
        acct: acct.to_string(),
        bot: false,
    }
}

fn settings<'a>(guides: &'a [Guide], counter: &'a Counter) -> ReplySettings<'a> {
    ReplySettings {
        guides,
        reply_visibility: Visibility::Unlisted,
        counter,
    }
}

fn mastodon(max_characters: usize) -> Counter {
    Counter::new(Software::Mastodon, max_characters, 0)
}

#[track_caller]
fn expect_reply(decision: Decision) -> Reply {
    match decision {
        Decision::Reply(reply) => reply,
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// `expected`: the topics linked, joined by `,`, or `help`.
#[track_caller]
fn check(text: &str, expected: &str) {
    let guides = bundled_guides();
    let counter = mastodon(500);
    let reply = expect_reply(compose_reply(
        &mention("alice", text),
        &settings(&guides, &counter),
    ));
    let got = if reply.topics.is_empty() {
        "help".to_string()
    } else {
        reply.topics.join(",")
    };
    assert_eq!(got, expected, "for {text:?}: {:?}", reply.text);
}

#[test]
fn questions_get_the_guides_they_ask_for() {
    check("how do I package my Python code?", "packaging");
    check("how does peer review work?", "peer review");
    check("#packaging tips?", "packaging");
    check("Where is pyproject.toml explained?", "packaging");
    check("How do I start? Is there a tutorial?", "tutorials");
    check("I'd like to become a reviewer", "reviewing");
    check("can I volunteer?", "volunteering");
    check("any good first issue for the sprint?", "help wanted");
    check(
        "PyPI and pyproject.toml, then peer review, and I want to volunteer",
        "packaging,peer review,volunteering",
    );
    check(
        "tutorial, peer review, reviewer, volunteer, sprint",
        "tutorials,peer review,reviewing",
    );
    check("hello!", "help");
    check("what is repackaging?", "help");
    check("@packaging@example.org hi", "help");
    check("https://example.org/packaging", "help");
}

#[test]
fn guide_replies_are_exact() {
    let guides = bundled_guides();
    let counter = mastodon(500);
    let settings = settings(&guides, &counter);
    let packaging = guide(&guides, "packaging");
    let review = guide(&guides, "peer review");

    let one = expect_reply(compose_reply(
        &mention("alice@example.org", "how do I package my Python code?"),
        &settings,
    ));
    assert_eq!(
        one.text,
        format!(
            "@alice@example.org This guide should help:\n{}: {}",
            packaging.title, packaging.url
        )
    );
    assert_eq!(one.topics, ["packaging"]);
    assert_eq!(one.in_reply_to_id, "s-1");

    let two = expect_reply(compose_reply(
        &mention("bob", "peer review, then pypi"),
        &settings,
    ));
    assert_eq!(
        two.text,
        format!(
            "@bob These guides should help:\n{}: {}\n{}: {}",
            packaging.title, packaging.url, review.title, review.url
        )
    );
    assert_eq!(two.topics, ["packaging", "peer review"]);
}

#[test]
fn help_reply_lists_every_topic() {
    let guides = bundled_guides();
    let counter = mastodon(500);
    let reply = expect_reply(compose_reply(
        &mention("alice", "hello, what can you do?"),
        &settings(&guides, &counter),
    ));
    let topics: Vec<&str> = guides.iter().map(|g| g.topic.as_str()).collect();
    assert_eq!(
        reply.text,
        format!(
            "@alice I can point you to our guides on: {}. Mention me with one of those words.",
            topics.join(", ")
        )
    );
    assert!(reply.topics.is_empty());
}

#[test]
fn never_more_public_than_the_mention_or_the_setting() {
    use Visibility::*;
    // (mention, reply_visibility, reply)
    let table = [
        (Public, Public, Public),
        (Public, Unlisted, Unlisted),
        (Public, Private, Private),
        (Public, Direct, Direct),
        (Unlisted, Public, Unlisted),
        (Unlisted, Unlisted, Unlisted),
        (Unlisted, Private, Private),
        (Unlisted, Direct, Direct),
        (Private, Public, Private),
        (Private, Unlisted, Private),
        (Private, Direct, Direct),
        (Direct, Public, Direct),
        (Direct, Unlisted, Direct),
        (Direct, Private, Direct),
        (Direct, Direct, Direct),
    ];
    let guides = bundled_guides();
    let counter = mastodon(500);
    for (mention_visibility, reply_visibility, expected) in table {
        let settings = ReplySettings {
            reply_visibility,
            ..settings(&guides, &counter)
        };
        for text in ["pypi?", "hello"] {
            let mention = Mention {
                visibility: mention_visibility,
                ..mention("alice", text)
            };
            let reply = expect_reply(compose_reply(&mention, &settings));
            assert_eq!(
                reply.visibility, expected,
                "{mention_visibility:?} mention, reply_visibility {reply_visibility:?}"
            );
        }
    }
}

#[test]
fn a_thanks_to_the_bot_gets_no_answer() {
    let guides = bundled_guides();
    let counter = mastodon(500);
    let settings = settings(&guides, &counter);
    let reply_to = |account: &str, text: &str| Mention {
        in_reply_to_id: Some("99".to_string()),
        in_reply_to_account_id: Some(account.to_string()),
        ..mention("alice", text)
    };

    assert_eq!(
        compose_reply(&reply_to(BOT, "thanks! 🙏"), &settings),
        Decision::NoReply(NoReplyReason::ReplyWithoutTopic)
    );
    // A follow-up question to the bot is answered.
    let follow_up = expect_reply(compose_reply(
        &reply_to(BOT, "thanks, and how do I become a reviewer?"),
        &settings,
    ));
    assert_eq!(follow_up.topics, ["reviewing"]);
    // Talk in someone else's thread (where the server mentions the bot by itself) gets no
    // help reply either; a question there still gets its guide.
    assert_eq!(
        compose_reply(&reply_to("77", "thanks!"), &settings),
        Decision::NoReply(NoReplyReason::ReplyWithoutTopic)
    );
    let question = expect_reply(compose_reply(
        &reply_to("77", "where is the packaging guide?"),
        &settings,
    ));
    assert_eq!(question.topics, ["packaging"]);
    // A mention that is not a reply and asks for nothing gets the help reply.
    let help = expect_reply(compose_reply(&mention("alice", "hello!"), &settings));
    assert!(help.topics.is_empty());
}

#[test]
fn keywords_in_the_content_warning_count_and_the_reply_has_none() {
    let guides = bundled_guides();
    let counter = mastodon(500);
    let mention = Mention {
        spoiler_text: "packaging question".to_string(),
        ..mention("alice", "see the CW")
    };
    let reply = expect_reply(compose_reply(&mention, &settings(&guides, &counter)));
    assert_eq!(reply.topics, ["packaging"]);
    assert!(!reply.text.contains("question"));
    assert!(!reply.text.contains("CW"));
}

#[test]
fn small_limits_drop_guides_and_still_fit() {
    let guides = bundled_guides();
    let question = "build a package, learn, and submit for review";
    let mut previous_topics = 0;
    for max_characters in 0..=400 {
        let counter = mastodon(max_characters);
        match compose_reply(&mention("alice", question), &settings(&guides, &counter)) {
            Decision::Reply(reply) => {
                assert!(
                    counter.fits(&reply.text, ""),
                    "{max_characters}: {:?}",
                    reply.text
                );
                assert!(
                    ["packaging", "tutorials", "peer review"][..reply.topics.len().min(3)]
                        == reply.topics[..]
                        && !reply.topics.is_empty(),
                    "{max_characters}: {:?}",
                    reply.topics
                );
                assert!(reply.topics.len() >= previous_topics, "{max_characters}");
                previous_topics = reply.topics.len();
            }
            Decision::NoReply(reason) => {
                assert_eq!(reason, NoReplyReason::NothingFits, "{max_characters}");
                assert_eq!(previous_topics, 0, "{max_characters}: fitted before");
            }
        }
    }
    assert_eq!(previous_topics, 3, "400 characters hold all three guides");

    // "@alice" (6) + a line break + one URL (23 on Mastodon): the bare-URL fallback.
    let packaging = guide(&guides, "packaging");
    let counter = mastodon(30);
    let reply = expect_reply(compose_reply(
        &mention("alice", "pypi"),
        &settings(&guides, &counter),
    ));
    assert_eq!(reply.text, format!("@alice\n{}", packaging.url));
    let counter = mastodon(29);
    assert_eq!(
        compose_reply(&mention("alice", "pypi"), &settings(&guides, &counter)),
        Decision::NoReply(NoReplyReason::NothingFits)
    );
}

#[test]
fn small_limits_shorten_the_help_reply() {
    let guides = bundled_guides();
    let topics: Vec<&str> = guides.iter().map(|g| g.topic.as_str()).collect();
    let mut fitted = 0;
    for max_characters in [100, 60, 40, 30] {
        let counter = mastodon(max_characters);
        if let Decision::Reply(reply) =
            compose_reply(&mention("alice", "hello"), &settings(&guides, &counter))
        {
            fitted += 1;
            assert!(counter.fits(&reply.text, ""), "{max_characters}");
            assert!(reply.text.starts_with("@alice "), "{:?}", reply.text);
            assert!(reply.text.contains(topics[0]), "{:?}", reply.text);
            assert!(
                !reply.text.contains(topics[topics.len() - 1]),
                "{:?}",
                reply.text
            );
        }
    }
    assert!(fitted >= 3, "only {fitted} help replies fitted");
    let counter = mastodon(10);
    assert_eq!(
        compose_reply(&mention("alice", "hello"), &settings(&guides, &counter)),
        Decision::NoReply(NoReplyReason::NothingFits)
    );
}

#[test]
fn a_remote_acct_is_counted_by_the_servers_rules() {
    let guides = bundled_guides();
    let packaging = guide(&guides, "packaging");
    let full = |acct: &str| {
        format!(
            "@{acct} This guide should help:\n{}: {}",
            packaging.title, packaging.url
        )
    };
    let bare = |acct: &str| format!("@{acct}\n{}", packaging.url);

    // Mastodon counts `@alice@example.org` as `@alice`: the limit that just holds the local
    // reply holds the remote one too.
    let limit = mastodon(500).count(&full("alice"));
    let counter = mastodon(limit);
    let settings_m = settings(&guides, &counter);
    let local = expect_reply(compose_reply(&mention("alice", "pypi"), &settings_m));
    assert_eq!(local.text, full("alice"));
    let remote = expect_reply(compose_reply(
        &mention("alice@example.org", "pypi"),
        &settings_m,
    ));
    assert_eq!(remote.text, full("alice@example.org"));

    // GoToSocial counts it literally: the remote reply falls back to the bare URL.
    let limit = full("alice").chars().count();
    let counter = Counter::new(Software::Gotosocial, limit, 0);
    let settings_g = settings(&guides, &counter);
    let local = expect_reply(compose_reply(&mention("alice", "pypi"), &settings_g));
    assert_eq!(local.text, full("alice"));
    let remote = expect_reply(compose_reply(
        &mention("alice@example.org", "pypi"),
        &settings_g,
    ));
    assert_eq!(remote.text, bare("alice@example.org"));
}

#[test]
fn a_huge_remote_domain_drops_titles_then_guides() {
    let guides = bundled_guides();
    let counter = mastodon(500);
    let packaging = guide(&guides, "packaging");
    let tutorials = guide(&guides, "tutorials");
    // Over 253 characters: not a mention to Mastodon, so `@acct` counts in full, 440
    // characters. Two URLs on their own lines (2 × 24) fit in 500; a third, or titles, do not.
    let acct = format!("alice@{}.example", "a".repeat(425));
    let question = "build a package, learn, and submit for review";
    let reply = expect_reply(compose_reply(
        &mention(&acct, question),
        &settings(&guides, &counter),
    ));
    assert_eq!(reply.topics, ["packaging", "tutorials"]);
    assert_eq!(
        reply.text,
        format!("@{acct}\n{}\n{}", packaging.url, tutorials.url)
    );
    assert!(counter.fits(&reply.text, ""));
    // Past the limit on its own: no reply at all.
    let acct = format!("alice@{}.example", "a".repeat(600));
    assert_eq!(
        compose_reply(&mention(&acct, question), &settings(&guides, &counter)),
        Decision::NoReply(NoReplyReason::NothingFits)
    );
}

#[test]
fn an_acct_that_is_not_a_plain_handle_gets_no_reply() {
    let guides = bundled_guides();
    let counter = mastodon(500);
    for acct in [
        "alice bob",
        "alice@example.org@evil.example",
        "",
        "alice\u{202e}",
    ] {
        assert_eq!(
            compose_reply(&mention(acct, "pypi"), &settings(&guides, &counter)),
            Decision::NoReply(NoReplyReason::UnusableAcct),
            "{acct:?}"
        );
    }
}

//! The hostile-mention corpus (`tests/mentions/hostile.toml`) through the reply composer: each
//! entry gets its expected outcome, never panics, is decided the same way twice, and never
//! gets an echo: its reply is exactly the reply to a plain mention by the same author asking
//! for the same topics, and every word of it comes from the config, the `@acct` or the
//! template. The daemon test feeds the same corpus to the fake server (`hostile_corpus`,
//! `to_mention`, `add_to_fake`).

use std::collections::BTreeSet;

use jiff::Timestamp;
use perennial::network::Mention;
use perennial::posts::config::{Config, Guide, Visibility};
use perennial::text::count::{Counter, Software};
use perennial::text::html::html_to_text;
use perennial::text::reply::{compose_reply, Decision, NoReplyReason, Reply, ReplySettings};
use serde::Deserialize;

use crate::fake_server::FakeServer;
use crate::support::repository_root;

/// The bot's account id in the corpus's mentions (the fake server's Mastodon default).
pub const BOT_ACCOUNT_ID: &str = "1";
/// The status of the bot's that a `reply_to_bot` mention answers.
pub const BOT_STATUS_ID: &str = "bot-status-1";
/// Where every corpus mention says it was created; callers with a clock overwrite the field.
pub const CREATED_AT: &str = "2025-06-02T10:00:00Z";

/// One hostile mention, with its HTML fully built (repeats expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostileMention {
    pub name: String,
    pub html: String,
    pub spoiler: String,
    pub acct: String,
    pub bot: bool,
    pub visibility: Visibility,
    /// The mention replies to one of the bot's statuses.
    pub reply_to_bot: bool,
    /// What the composer decides, with the bundled config's guides on a 500-character Mastodon.
    pub expected: Expected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A reply linking these topics' guides, in config order.
    Topics(Vec<String>),
    /// The help reply listing the topics.
    Help,
    NoReply(NoReplyReason),
}

impl HostileMention {
    /// Whether the composer answers it at all (the engine may still skip it, e.g. a bot author).
    pub fn expects_reply(&self) -> bool {
        !matches!(self.expected, Expected::NoReply(_))
    }
}

/// The corpus, in file order. Panics with every malformed entry named.
pub fn hostile_corpus() -> Vec<HostileMention> {
    let path = repository_root().join("tests/mentions/hostile.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_corpus(&text)
        .unwrap_or_else(|errors| panic!("{} has errors:\n{}", path.display(), errors.join("\n")))
}

/// The entry as the listener would hand it to the engine.
pub fn to_mention(entry: &HostileMention, notification_id: &str, status_id: &str) -> Mention {
    Mention {
        notification_id: notification_id.to_string(),
        created_at: CREATED_AT.parse::<Timestamp>().expect("a valid timestamp"),
        status_id: status_id.to_string(),
        text: html_to_text(&entry.html),
        spoiler_text: entry.spoiler.clone(),
        visibility: entry.visibility,
        in_reply_to_id: entry.reply_to_bot.then(|| BOT_STATUS_ID.to_string()),
        in_reply_to_account_id: entry.reply_to_bot.then(|| BOT_ACCOUNT_ID.to_string()),
        account_id: format!("account-{}", entry.name),
        acct: entry.acct.clone(),
        bot: entry.bot,
    }
}

/// Adds `entry` to the fake server as a mention by `acct` (the entry's own acct, or another
/// to keep each author under the caps) and returns the notification id. The fake server
/// writes no content warning.
pub fn add_to_fake(fake: &FakeServer, entry: &HostileMention, acct: &str) -> String {
    fake.add_mention(
        acct,
        &entry.html,
        entry.visibility,
        entry.reply_to_bot.then_some(BOT_STATUS_ID),
        entry.bot,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCorpus {
    mention: Vec<RawMention>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMention {
    name: String,
    html: String,
    repeat: Option<RawRepeat>,
    #[serde(default)]
    tail: String,
    #[serde(default)]
    spoiler: String,
    acct: Option<String>,
    #[serde(default)]
    bot: bool,
    visibility: Option<Visibility>,
    #[serde(default)]
    reply_to_bot: bool,
    expect: RawExpect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepeat {
    piece: String,
    times: usize,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawExpect {
    Topics(Vec<String>),
    Outcome(String),
}

fn parse_corpus(text: &str) -> Result<Vec<HostileMention>, Vec<String>> {
    let raw: RawCorpus = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
    let mut errors = Vec::new();
    let mut names = BTreeSet::new();
    let mut corpus = Vec::new();
    for entry in raw.mention {
        if !names.insert(entry.name.clone()) {
            errors.push(format!("`{}` appears twice", entry.name));
        }
        let expected = match entry.expect {
            RawExpect::Topics(topics) if topics.is_empty() => {
                errors.push(format!(
                    "`{}`: an empty topic list; write \"help\"",
                    entry.name
                ));
                continue;
            }
            RawExpect::Topics(topics) => Expected::Topics(topics),
            RawExpect::Outcome(outcome) => match outcome.as_str() {
                "help" => Expected::Help,
                "reply-without-topic" => Expected::NoReply(NoReplyReason::ReplyWithoutTopic),
                "nothing-fits" => Expected::NoReply(NoReplyReason::NothingFits),
                "unusable-acct" => Expected::NoReply(NoReplyReason::UnusableAcct),
                other => {
                    errors.push(format!("`{}`: unknown expect {other:?}", entry.name));
                    continue;
                }
            },
        };
        let mut html = entry.html;
        if let Some(repeat) = entry.repeat {
            html.push_str(&repeat.piece.repeat(repeat.times));
        }
        html.push_str(&entry.tail);
        corpus.push(HostileMention {
            name: entry.name,
            html,
            spoiler: entry.spoiler,
            acct: entry
                .acct
                .unwrap_or_else(|| "alice@example.org".to_string()),
            bot: entry.bot,
            visibility: entry.visibility.unwrap_or(Visibility::Public),
            reply_to_bot: entry.reply_to_bot,
            expected,
        });
    }
    if errors.is_empty() {
        Ok(corpus)
    } else {
        Err(errors)
    }
}

/// The bundled config's guides, which the corpus's expectations are written against.
fn bundled_guides() -> Vec<Guide> {
    Config::load(&repository_root().join("config.toml"))
        .unwrap_or_else(|errors| panic!("config.toml has errors: {errors:#?}"))
        .guides
}

/// Words of the reply templates (the only fixed text a reply may hold besides the config).
const TEMPLATE_WORDS: &[&str] = &[
    "this", "these", "guide", "guides", "should", "help", "i", "can", "point", "you", "to", "our",
    "on", "mention", "me", "with", "one", "of", "those", "words",
];

/// Lower-cased runs of letters and digits.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The visibility rank, public first, written out so the test does not lean on the code's order.
fn rank(visibility: Visibility) -> u8 {
    match visibility {
        Visibility::Public => 0,
        Visibility::Unlisted => 1,
        Visibility::Private => 2,
        Visibility::Direct => 3,
    }
}

/// A plain mention by `acct` that asks for exactly `topics` (the first keyword of each), or
/// for nothing.
fn canonical_mention(entry: &HostileMention, topics: &[String], guides: &[Guide]) -> Mention {
    let words: Vec<&str> = topics
        .iter()
        .map(|topic| {
            let guide = guides
                .iter()
                .find(|g| &g.topic == topic)
                .unwrap_or_else(|| panic!("`{}`: no guide has the topic {topic:?}", entry.name));
            guide.keywords[0].as_str()
        })
        .collect();
    let html = if words.is_empty() {
        "<p>hello</p>".to_string()
    } else {
        format!("<p>{}</p>", words.join(" "))
    };
    let plain = HostileMention {
        html,
        spoiler: String::new(),
        reply_to_bot: false,
        ..entry.clone()
    };
    to_mention(&plain, "n-canonical", "s-canonical")
}

/// Every way `reply` could echo `entry`, or be anything but a function of (acct, topics,
/// visibility); `Err` describes the first problem found.
fn check_no_echo(
    entry: &HostileMention,
    reply: &Reply,
    settings: &ReplySettings,
) -> Result<(), String> {
    let canonical = canonical_mention(entry, &reply.topics, settings.guides);
    match compose_reply(&canonical, settings) {
        Decision::Reply(plain) if plain.topics == reply.topics && plain.text == reply.text => {}
        other => {
            return Err(format!(
                "the reply differs from the one to a plain mention asking for {:?}:\n{:?}\nvs\n{other:?}",
                reply.topics, reply.text
            ))
        }
    }

    let prefix = format!("@{}", entry.acct);
    let after = reply
        .text
        .strip_prefix(&prefix)
        .ok_or_else(|| format!("the reply does not start with {prefix:?}"))?;
    if !after.starts_with([' ', '\n']) {
        return Err(format!(
            "{prefix:?} is not followed by a space or a line break"
        ));
    }
    if after.contains('@') {
        return Err("an `@` after the author's `@acct`".to_string());
    }

    let mut allowed: BTreeSet<String> = TEMPLATE_WORDS.iter().map(|w| w.to_string()).collect();
    for guide in settings.guides {
        for field in [&guide.topic, &guide.title, &guide.url] {
            allowed.extend(words(field));
        }
    }
    allowed.extend(words(&entry.acct));
    if let Some(stranger) = words(after).find(|w| !allowed.contains(w)) {
        return Err(format!(
            "the reply holds {stranger:?}, from neither the config nor the template"
        ));
    }
    // The same, from the mention's side: none of its longer words that we did not write
    // ourselves is a word of the reply.
    let reply_words: BTreeSet<String> = words(&reply.text).collect();
    let visible_text = html_to_text(&entry.html);
    let mention_words = words(&entry.html)
        .chain(words(&visible_text))
        .chain(words(&entry.spoiler));
    for word in mention_words {
        if word.chars().count() > 3 && !allowed.contains(&word) && reply_words.contains(&word) {
            return Err(format!("the mention's {word:?} is in the reply"));
        }
    }
    Ok(())
}

/// Why `entry`'s decision is wrong, if it is.
fn check_entry(entry: &HostileMention, settings: &ReplySettings) -> Result<(), String> {
    let mention = to_mention(entry, "n-1", "s-1");
    let decision = compose_reply(&mention, settings);
    if compose_reply(&mention, settings) != decision {
        return Err("two runs decided differently".to_string());
    }
    let reply = match (&entry.expected, decision) {
        (Expected::NoReply(reason), Decision::NoReply(got)) if *reason == got => return Ok(()),
        (Expected::Help, Decision::Reply(reply)) if reply.topics.is_empty() => reply,
        (Expected::Topics(topics), Decision::Reply(reply)) if reply.topics == *topics => reply,
        (expected, got) => return Err(format!("expected {expected:?}, got {got:?}")),
    };
    if reply.in_reply_to_id != "s-1" {
        return Err(format!("in_reply_to_id is {:?}", reply.in_reply_to_id));
    }
    let expected_rank = rank(entry.visibility).max(rank(settings.reply_visibility));
    if rank(reply.visibility) != expected_rank {
        return Err(format!(
            "visibility {:?} for a {:?} mention",
            reply.visibility, entry.visibility
        ));
    }
    if !settings.counter.fits(&reply.text, "") {
        return Err(format!(
            "{} characters is over the limit",
            settings.counter.count_status(&reply.text, "")
        ));
    }
    if let Expected::Help = entry.expected {
        for guide in settings.guides.iter().take(3) {
            if !reply.text.contains(&guide.topic) {
                return Err(format!("the help reply does not list {:?}", guide.topic));
            }
        }
    }
    check_no_echo(entry, &reply, settings)
}

#[test]
fn corpus_is_large_and_covers_every_outcome() {
    let corpus = hostile_corpus();
    assert!(corpus.len() >= 60, "only {} hostile mentions", corpus.len());
    let help = corpus
        .iter()
        .filter(|e| e.expected == Expected::Help)
        .count();
    let topics = corpus
        .iter()
        .filter(|e| matches!(e.expected, Expected::Topics(_)))
        .count();
    let none = corpus.iter().filter(|e| !e.expects_reply()).count();
    assert!(
        help >= 10 && topics >= 10 && none >= 3,
        "{help} help, {topics} topics, {none} none"
    );
    let big = corpus.iter().filter(|e| e.html.len() >= 100_000).count();
    assert!(big >= 5, "only {big} entries of 100 KB");
}

#[test]
fn every_hostile_mention_gets_its_outcome_and_no_echo() {
    let guides = bundled_guides();
    let counter = Counter::new(Software::Mastodon, 500, 0);
    let settings = ReplySettings {
        guides: &guides,
        reply_visibility: Visibility::Unlisted,
        counter: &counter,
    };
    let failures: Vec<String> = hostile_corpus()
        .iter()
        .filter_map(|entry| {
            check_entry(entry, &settings)
                .err()
                .map(|e| format!("{}: {e}", entry.name))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The corpus on the other counting rules and a small limit: still no echo, always within
/// the limit, and the topics linked are the expected ones, fewer when the limit is smaller
/// or more when it is larger than 500 on Mastodon (the expected list may have been cut).
#[test]
fn corpus_on_other_servers_and_a_tight_limit() {
    let guides = bundled_guides();
    for counter in [
        Counter::new(Software::Gotosocial, 5000, 0),
        Counter::new(Software::Akkoma, 5000, 0),
        Counter::new(Software::Mastodon, 120, 0),
        Counter::new(Software::Generic, 200, 0),
    ] {
        let settings = ReplySettings {
            guides: &guides,
            reply_visibility: Visibility::Public,
            counter: &counter,
        };
        for entry in hostile_corpus() {
            let mention = to_mention(&entry, "n-2", "s-2");
            match compose_reply(&mention, &settings) {
                Decision::Reply(reply) => {
                    assert!(
                        counter.fits(&reply.text, ""),
                        "{} on {counter:?}: {:?}",
                        entry.name,
                        reply.text
                    );
                    if let Expected::Topics(topics) = &entry.expected {
                        assert!(
                            !reply.topics.is_empty()
                                && (topics.starts_with(&reply.topics)
                                    || reply.topics.starts_with(topics)),
                            "{} on {counter:?}: {:?}",
                            entry.name,
                            reply.topics
                        );
                    }
                    assert_eq!(reply.visibility, entry.visibility, "{}", entry.name);
                    check_no_echo(&entry, &reply, &settings)
                        .unwrap_or_else(|e| panic!("{} on {counter:?}: {e}", entry.name));
                }
                Decision::NoReply(reason) => assert!(
                    !entry.expects_reply() || reason == NoReplyReason::NothingFits,
                    "{} on {counter:?}: {reason:?}",
                    entry.name
                ),
            }
        }
    }
}

#[test]
fn malformed_corpus_entries_are_all_reported() {
    let text = r#"
[[mention]]
name = "a"
html = ""
expect = "maybe"

[[mention]]
name = "a"
html = ""
expect = []
"#;
    let errors = parse_corpus(text).expect_err("two bad entries");
    assert_eq!(
        errors,
        [
            "`a`: unknown expect \"maybe\"",
            "`a` appears twice",
            "`a`: an empty topic list; write \"help\"",
        ]
    );
    let unknown_field =
        "[[mention]]\nname = \"b\"\nhtml = \"\"\nexpect = \"help\"\nvisibilty = \"direct\"\n";
    assert!(parse_corpus(unknown_field).is_err());
}

#[test]
fn repeats_are_expanded_in_place() {
    let text = "[[mention]]\nname = \"r\"\nhtml = \"<p>\"\nrepeat = { piece = \"ab\", times = 3 }\ntail = \"</p>\"\nexpect = \"help\"\n";
    let corpus = parse_corpus(text).expect("valid");
    assert_eq!(corpus[0].html, "<p>ababab</p>");
    assert_eq!(corpus[0].acct, "alice@example.org");
    assert_eq!(corpus[0].visibility, Visibility::Public);
    let mention = to_mention(&corpus[0], "n", "s");
    assert_eq!(mention.in_reply_to_account_id, None);
    assert_eq!(mention.status_id, "s");
}

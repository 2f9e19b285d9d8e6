//! The mention listener (`Server::mentions_since`, `Server::listen`) against the fake server:
//! the stream and its reconnects, the catch-up's paging, and what neither may do (miss a
//! mention, fail on an unknown notification, put the token in a URL, hammer a server).
//! Waiting happens in paused time: backoffs of minutes take no time at all.

use std::time::Duration;

use perennial::network::mastodon::{
    Mention, MentionStream, Server, ServerOptions, StreamEvent, NOTIFICATIONS_PAGE_LIMIT,
    STREAM_FIRST_RETRY, STREAM_IDLE_LIMIT, STREAM_MAX_RETRY, STREAM_STABLE_AFTER,
};
use perennial::network::token::Token;
use perennial::posts::config::{SoftwareSetting, Visibility};
use perennial::text::html::html_to_text;
use serde_json::json;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

use crate::fake_server::{FakeOptions, FakeServer, Fault, Quirk, RecordedRequest, Route};

/// Generous, and free in paused time: only reached when something is broken.
const WAIT: Duration = Duration::from_secs(3600);
/// The documented jitter: a wait is its nominal value less up to a quarter.
const MIN_JITTER_FACTOR: f64 = 0.75;

async fn connect(server: &FakeServer) -> Server {
    let options = ServerOptions {
        url: server.url(),
        software: SoftwareSetting::Auto,
        max_characters: None,
        request_timeout: Duration::from_secs(30),
    };
    Server::connect(options, Token::new(server.token()))
        .await
        .expect("connect to the fake server")
}

async fn next_event(stream: &mut MentionStream) -> StreamEvent {
    timeout(WAIT, stream.next())
        .await
        .expect("no stream event within the wait")
        .expect("the stream ended")
}

async fn expect_connected(stream: &mut MentionStream) {
    match next_event(stream).await {
        StreamEvent::Connected => {}
        other => panic!("expected Connected, got {other:?}"),
    }
}

async fn expect_mention(stream: &mut MentionStream) -> Mention {
    match next_event(stream).await {
        StreamEvent::Mention(mention) => mention,
        other => panic!("expected a mention, got {other:?}"),
    }
}

async fn expect_disconnected(stream: &mut MentionStream) -> (String, Duration) {
    match next_event(stream).await {
        StreamEvent::Disconnected { reason, retry_in } => (reason, retry_in),
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

/// The wait before the attempt after `failures` failures in a row, before jitter.
fn nominal_retry(failures: u32) -> Duration {
    (STREAM_FIRST_RETRY * 2u32.pow(failures.min(20) - 1)).min(STREAM_MAX_RETRY)
}

#[track_caller]
fn assert_jittered(retry_in: Duration, nominal: Duration) {
    assert!(
        retry_in <= nominal && retry_in >= nominal.mul_f64(MIN_JITTER_FACTOR),
        "{retry_in:?} is not within the jitter below {nominal:?}"
    );
}

fn query_pairs(request: &RecordedRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(request.query.as_deref().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn ids(mentions: &[Mention]) -> Vec<String> {
    mentions.iter().map(|m| m.notification_id.clone()).collect()
}

fn add_mentions(server: &FakeServer, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            server.add_mention(
                &format!("user{i}@example.org"),
                &format!("<p>@perennial question {i}</p>"),
                Visibility::Public,
                None,
                false,
            )
        })
        .collect()
}

/// The token goes in headers only: never in a URL, on any route.
#[track_caller]
fn assert_token_in_no_url(server: &FakeServer) {
    let token = server.token();
    for request in server.requests() {
        let query = request.query.clone().unwrap_or_default();
        assert!(
            !query.contains(&token) && !request.path.contains(&token),
            "token in the URL of {request:?}"
        );
        assert!(!query.contains("access_token"), "{request:?}");
        if request.path.starts_with("/api/") {
            assert!(request.authorization_header, "{request:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The stream.

#[tokio::test(start_paused = true)]
async fn a_streamed_mention_arrives_with_its_fields_after_connected() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let mut stream = connected.listen(CancellationToken::new());
    expect_connected(&mut stream).await;
    timeout(WAIT, server.wait_for_stream_count(1))
        .await
        .unwrap();

    // Another type on the stream is not a mention: nothing comes of it.
    server.add_notification_of_type("follow");
    let id = server.add_mention(
        "alice@example.org",
        "<p>@<span>perennial</span> how do I package &amp; publish?</p>",
        Visibility::Unlisted,
        Some("110000000000000007"),
        true,
    );
    let mention = expect_mention(&mut stream).await;
    assert_eq!(mention.notification_id, id);
    assert_eq!(
        Some(mention.status_id.clone()),
        server.status_of_notification(&id)
    );
    assert_eq!(mention.acct, "alice@example.org");
    assert!(!mention.account_id.is_empty());
    assert!(mention.bot);
    assert_eq!(mention.visibility, Visibility::Unlisted);
    assert_eq!(
        mention.in_reply_to_id.as_deref(),
        Some("110000000000000007")
    );
    assert_eq!(
        mention.in_reply_to_account_id.as_deref(),
        Some(connected.account().id.as_str())
    );
    assert_eq!(
        mention.text,
        html_to_text("<p>@<span>perennial</span> how do I package &amp; publish?</p>")
    );
    assert_eq!(mention.spoiler_text, "");

    // One upgrade, with the token in its header, the stream named in the query, nothing else.
    let upgrades = server.requests_to(Route::Streaming);
    assert_eq!(upgrades.len(), 1);
    assert_eq!(upgrades[0].path, "/api/v1/streaming");
    assert_eq!(
        upgrades[0].query.as_deref(),
        Some("stream=user:notification")
    );
    assert!(upgrades[0]
        .user_agent
        .as_deref()
        .unwrap()
        .starts_with("perennial/"));
    assert_token_in_no_url(&server);
}

#[tokio::test(start_paused = true)]
async fn after_a_drop_it_reconnects_and_the_catch_up_has_what_the_stream_missed() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let mut stream = connected.listen(CancellationToken::new());
    expect_connected(&mut stream).await;
    timeout(WAIT, server.wait_for_stream_count(1))
        .await
        .unwrap();
    let seen = server.add_mention("alice", "<p>one</p>", Visibility::Public, None, false);
    let cursor = expect_mention(&mut stream).await.notification_id;
    assert_eq!(cursor, seen);

    server.drop_streams();
    let dropped_at = Instant::now();
    let (reason, retry_in) = expect_disconnected(&mut stream).await;
    assert!(!reason.is_empty());
    assert_jittered(retry_in, STREAM_FIRST_RETRY);
    // Made while nobody listens: these never come on the stream.
    let missed = add_mentions(&server, 20);

    expect_connected(&mut stream).await;
    assert!(
        dropped_at.elapsed() >= retry_in,
        "reconnected before the backoff"
    );
    assert_eq!(server.requests_to(Route::Streaming).len(), 2);
    let nothing = timeout(Duration::from_secs(600), stream.next()).await;
    assert!(
        nothing.is_err(),
        "missed mentions came on the stream: {nothing:?}"
    );

    let catch_up = connected.mentions_since(Some(&cursor)).await.unwrap();
    assert_eq!(ids(&catch_up.mentions), missed, "all of them, oldest first");
    assert_eq!(
        catch_up.cursor.as_deref(),
        missed.last().map(String::as_str)
    );
    assert_eq!(catch_up.skipped, 0);
    assert!(catch_up.complete);
    assert_eq!(catch_up.mentions[3].acct, "user3@example.org");
}

#[tokio::test(start_paused = true)]
async fn the_backoff_doubles_with_jitter_up_to_five_minutes_then_connects() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    // The first refusal asks for two minutes: honoured, however short our own backoff.
    server.inject(
        Route::Streaming,
        Fault::Unavailable503 {
            retry_after_secs: Some(120),
        },
    );
    const FAILURES: u32 = 14;
    for _ in 1..FAILURES {
        server.inject(
            Route::Streaming,
            Fault::Unavailable503 {
                retry_after_secs: None,
            },
        );
    }
    let mut stream = connected.listen(CancellationToken::new());

    let (reason, retry_in) = expect_disconnected(&mut stream).await;
    assert!(reason.contains("503"), "{reason}");
    assert_eq!(retry_in, Duration::from_secs(120));
    let mut waits = Vec::new();
    let mut last = Instant::now();
    for failures in 2..=FAILURES {
        let (reason, retry_in) = expect_disconnected(&mut stream).await;
        let now = Instant::now();
        let previous_wait = waits.last().copied().unwrap_or(Duration::from_secs(120));
        assert!(now - last >= previous_wait, "retried too early");
        assert!(now - last < previous_wait + Duration::from_secs(1));
        last = now;
        assert!(reason.contains("server capacity exceeded"), "{reason}");
        assert_jittered(retry_in, nominal_retry(failures));
        waits.push(retry_in);
    }
    assert!(waits.iter().all(|&w| w <= STREAM_MAX_RETRY));
    assert!(
        waits
            .iter()
            .rev()
            .take(4)
            .all(|&w| w >= STREAM_MAX_RETRY.mul_f64(MIN_JITTER_FACTOR)),
        "not at the cap: {waits:?}"
    );
    assert!(
        waits
            .iter()
            .enumerate()
            .any(|(i, &w)| w != nominal_retry(i as u32 + 2)),
        "no jitter at all: {waits:?}"
    );

    expect_connected(&mut stream).await;
    assert_eq!(
        server.requests_to(Route::Streaming).len(),
        FAILURES as usize + 1
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_that_drops_at_once_is_not_hammered_and_a_stable_connection_resets_the_backoff() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let mut stream = connected.listen(CancellationToken::new());
    expect_connected(&mut stream).await;

    // Connections that die young count as failures: the waits keep doubling.
    for failures in 1..=4 {
        timeout(WAIT, server.wait_for_stream_count(1))
            .await
            .unwrap();
        server.drop_streams();
        let (_, retry_in) = expect_disconnected(&mut stream).await;
        assert_jittered(retry_in, nominal_retry(failures));
        expect_connected(&mut stream).await;
    }

    // One that stays up a while was a good one: the next wait is the first again.
    timeout(WAIT, server.wait_for_stream_count(1))
        .await
        .unwrap();
    let quiet = timeout(STREAM_STABLE_AFTER + Duration::from_secs(1), stream.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
    server.drop_streams();
    let (_, retry_in) = expect_disconnected(&mut stream).await;
    assert_jittered(retry_in, STREAM_FIRST_RETRY);
    expect_connected(&mut stream).await;
}

#[tokio::test(start_paused = true)]
async fn a_revoked_token_is_reported_and_retried_at_the_cap() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let mut stream = connected.listen(CancellationToken::new());
    expect_connected(&mut stream).await;
    timeout(WAIT, server.wait_for_stream_count(1))
        .await
        .unwrap();

    server.revoke_token();
    server.drop_streams();
    expect_disconnected(&mut stream).await;
    for _ in 0..3 {
        let (reason, retry_in) = expect_disconnected(&mut stream).await;
        assert!(reason.contains("401"), "{reason}");
        assert!(reason.contains("revoked"), "{reason}");
        assert!(!reason.contains(&server.token()), "{reason}");
        assert_jittered(retry_in, STREAM_MAX_RETRY);
    }

    let error = connected.mentions_since(Some("1")).await.unwrap_err();
    assert_eq!(error.status(), Some(401));
    assert!(!error.retryable());
}

/// Issue 14 item 10: a refused upgrade whose body echoes the `Authorization` header (a
/// debugging proxy in front of the streaming API) must not put the token in the reason the
/// daemon logs.
#[tokio::test(start_paused = true)]
async fn a_token_echoed_by_a_refused_stream_upgrade_is_redacted_from_the_reason() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    server.inject_quirk(Route::Streaming, Quirk::EchoAuthorization { status: 500 });
    server.inject_quirk(Route::Streaming, Quirk::EchoAuthorization { status: 422 });
    let mut stream = connected.listen(CancellationToken::new());
    for status in ["500", "422"] {
        let (reason, _) = expect_disconnected(&mut stream).await;
        assert!(reason.contains(status), "{reason}");
        assert!(reason.contains("Bearer [redacted]"), "{reason}");
        assert!(!reason.contains(&server.token()), "{reason}");
    }
    expect_connected(&mut stream).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_the_stream_at_once_whatever_it_is_doing() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;

    // While connected: next() ends, and the connection is closed.
    let shutdown = CancellationToken::new();
    let mut stream = connected.listen(shutdown.clone());
    expect_connected(&mut stream).await;
    timeout(WAIT, server.wait_for_stream_count(1))
        .await
        .unwrap();
    let asked = Instant::now();
    shutdown.cancel();
    assert_eq!(timeout(WAIT, stream.next()).await.unwrap(), None);
    assert!(asked.elapsed() < Duration::from_secs(1));
    timeout(WAIT, server.wait_for_stream_count(0))
        .await
        .unwrap();

    // While waiting five minutes to reconnect: no further attempt is made.
    server.inject(
        Route::Streaming,
        Fault::Unavailable503 {
            retry_after_secs: Some(300),
        },
    );
    let attempts = server.requests_to(Route::Streaming).len();
    let shutdown = CancellationToken::new();
    let mut stream = connected.listen(shutdown.clone());
    let (_, retry_in) = expect_disconnected(&mut stream).await;
    assert_eq!(retry_in, Duration::from_secs(300));
    let asked = Instant::now();
    shutdown.cancel();
    assert_eq!(timeout(WAIT, stream.next()).await.unwrap(), None);
    assert!(asked.elapsed() < Duration::from_secs(1));
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(server.requests_to(Route::Streaming).len(), attempts + 1);

    // Dropping the stream stops it too: the connection is closed.
    let mut stream = connected.listen(CancellationToken::new());
    expect_connected(&mut stream).await;
    timeout(WAIT, server.wait_for_stream_count(1))
        .await
        .unwrap();
    drop(stream);
    timeout(WAIT, server.wait_for_stream_count(0))
        .await
        .expect("the connection outlived its stream");
}

#[tokio::test(start_paused = true)]
async fn a_connection_on_which_nothing_comes_is_replaced_after_the_idle_limit() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let mut stream = connected.listen(CancellationToken::new());
    expect_connected(&mut stream).await;
    timeout(WAIT, server.wait_for_stream_count(1))
        .await
        .unwrap();

    // The server's pings keep a quiet connection alive for as long as it lasts.
    let quiet = timeout(Duration::from_secs(15 * 60), stream.next()).await;
    assert!(quiet.is_err(), "a pinged connection was dropped: {quiet:?}");
    assert_eq!(server.requests_to(Route::Streaming).len(), 1);

    // Half-open: no pings any more. The last one came at most 30 s before.
    server.silence_streams();
    let silenced = Instant::now();
    let (reason, retry_in) = expect_disconnected(&mut stream).await;
    let waited = silenced.elapsed();
    assert!(
        waited <= STREAM_IDLE_LIMIT && waited >= STREAM_IDLE_LIMIT - Duration::from_secs(30),
        "dropped after {waited:?}"
    );
    assert!(reason.contains("presumed dead"), "{reason}");
    // It had been up a long time: a good connection, so the first wait again.
    assert_jittered(retry_in, STREAM_FIRST_RETRY);
    expect_connected(&mut stream).await;
    assert_eq!(server.requests_to(Route::Streaming).len(), 2);
    // The silent one was closed by us.
    timeout(WAIT, server.wait_for_stream_count(1))
        .await
        .unwrap();

    let id = server.add_mention(
        "alice",
        "<p>still there?</p>",
        Visibility::Direct,
        None,
        false,
    );
    assert_eq!(expect_mention(&mut stream).await.notification_id, id);
}

#[tokio::test(start_paused = true)]
async fn gotosocial_works_too_despite_its_wss_on_plain_http() {
    // Its v2 instance says `wss://` for a server on plain http: a client that believed it
    // would never connect.
    let server = FakeServer::start(FakeOptions::gotosocial());
    let connected = connect(&server).await;
    let mut stream = connected.listen(CancellationToken::new());
    expect_connected(&mut stream).await;
    timeout(WAIT, server.wait_for_stream_count(1))
        .await
        .unwrap();

    let first = server.add_mention("alice", "<p>one</p>", Visibility::Private, None, false);
    let mention = expect_mention(&mut stream).await;
    assert_eq!(mention.notification_id, first);
    assert!(mention.notification_id.starts_with("01J"), "{first}");
    assert_eq!(mention.visibility, Visibility::Private);

    let later = add_mentions(&server, 3);
    for id in &later {
        assert_eq!(&expect_mention(&mut stream).await.notification_id, id);
    }
    let catch_up = connected.mentions_since(Some(&first)).await.unwrap();
    assert_eq!(ids(&catch_up.mentions), later);
    assert_eq!(catch_up.cursor.as_deref(), later.last().map(String::as_str));
    assert_token_in_no_url(&server);
}

// ---------------------------------------------------------------------------------------
// The catch-up.

#[tokio::test]
async fn the_catch_up_pages_forward_from_the_cursor_with_min_id() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let all = add_mentions(&server, 250);
    let cursor = &all[9];

    let catch_up = connected.mentions_since(Some(cursor)).await.unwrap();
    assert_eq!(
        ids(&catch_up.mentions),
        all[10..],
        "the 240 after it, oldest first"
    );
    assert_eq!(catch_up.cursor.as_deref(), Some(all[249].as_str()));
    assert_eq!(catch_up.skipped, 0);
    assert!(catch_up.complete);
    assert_eq!(catch_up.mentions[0].acct, "user10@example.org");

    // Three full pages, then an empty one; each page's newest id is the next min_id.
    let pages = server.requests_to(Route::Notifications);
    let min_ids: Vec<String> = pages
        .iter()
        .map(|request| {
            let pairs = query_pairs(request);
            assert!(
                pairs.contains(&("types[]".to_string(), "mention".to_string())),
                "{request:?}"
            );
            assert!(
                pairs.contains(&("limit".to_string(), NOTIFICATIONS_PAGE_LIMIT.to_string())),
                "{request:?}"
            );
            assert!(pairs.iter().all(|(k, _)| k != "max_id" && k != "since_id"));
            let min_id = pairs.iter().find(|(k, _)| k == "min_id");
            min_id.expect("min_id").1.clone()
        })
        .collect();
    assert_eq!(
        min_ids,
        [
            all[9].clone(),
            all[89].clone(),
            all[169].clone(),
            all[249].clone()
        ]
    );
    assert_token_in_no_url(&server);

    // Nothing new: the same cursor back, in one request.
    let again = connected
        .mentions_since(catch_up.cursor.as_deref())
        .await
        .unwrap();
    assert!(again.mentions.is_empty());
    assert_eq!(again.cursor, catch_up.cursor);
    assert!(again.complete);
    assert_eq!(server.requests_to(Route::Notifications).len(), 5);
}

#[tokio::test]
async fn a_long_catch_up_stops_at_twenty_pages_and_the_next_one_goes_on() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let all = add_mentions(&server, 20 * NOTIFICATIONS_PAGE_LIMIT + 101);

    let first = connected.mentions_since(Some(&all[0])).await.unwrap();
    assert_eq!(first.mentions.len(), 20 * NOTIFICATIONS_PAGE_LIMIT);
    assert!(!first.complete);
    assert_eq!(server.requests_to(Route::Notifications).len(), 20);

    let rest = connected
        .mentions_since(first.cursor.as_deref())
        .await
        .unwrap();
    assert!(rest.complete);
    let seen: Vec<String> = ids(&first.mentions)
        .into_iter()
        .chain(ids(&rest.mentions))
        .collect();
    assert_eq!(seen, all[1..]);
}

#[tokio::test]
async fn unknown_notification_types_are_skipped_counted_and_paged_past() {
    let server = FakeServer::start(FakeOptions::mastodon());
    // A server that sends every type whatever `types[]` says.
    server.ignore_notification_types();
    let connected = connect(&server).await;
    let cursor = server.add_mention("zoe", "<p>old</p>", Visibility::Public, None, false);

    let first = server.add_mention("alice", "<p>a</p>", Visibility::Public, None, false);
    server.add_notification_of_type("severed_relationships");
    server.add_notification_of_type("moderation_warning");
    server.add_notification_of_type("follow");
    server.add_notification_json(
        "quote_of_a_quote",
        json!({"type": "quote_of_a_quote", "created_at": "2026-03-01T12:00:00.000Z",
               "account": {"id": "9", "acct": "x@example.net"}, "quote": {"state": "new"}}),
    );
    // A mention whose status was deleted: nothing to answer.
    server.add_notification_json(
        "mention",
        json!({"type": "mention", "created_at": "2026-03-01T12:00:00.000Z",
               "account": {"id": "9", "acct": "x@example.net"}, "status": null}),
    );
    // A visibility nobody here knows, with a content warning.
    let odd = server.add_notification_json(
        "mention",
        json!({"type": "mention", "created_at": "2026-03-01T12:00:01.000Z",
               "account": {"id": "10", "acct": "carol@akkoma.example", "bot": false},
               "status": {"id": "s-local-1", "visibility": "local", "spoiler_text": "cw",
                          "content": "<p>@perennial hi</p>", "in_reply_to_id": null}}),
    );
    let second = server.add_mention("bob", "<p>b</p>", Visibility::Direct, None, false);
    let newest = server.add_notification_of_type("follow");

    let catch_up = connected.mentions_since(Some(&cursor)).await.unwrap();
    assert_eq!(ids(&catch_up.mentions), [first, odd, second]);
    assert_eq!(catch_up.skipped, 6);
    // The newest notification was skipped; the cursor is past it all the same.
    assert_eq!(catch_up.cursor.as_deref(), Some(newest.as_str()));
    let odd = &catch_up.mentions[1];
    assert_eq!(odd.visibility, Visibility::Direct);
    assert_eq!(odd.spoiler_text, "cw");
    assert_eq!(odd.acct, "carol@akkoma.example");
    assert_eq!(odd.status_id, "s-local-1");
    assert_eq!(
        odd.created_at,
        "2026-03-01T12:00:01Z".parse::<jiff::Timestamp>().unwrap()
    );

    let again = connected.mentions_since(Some(&newest)).await.unwrap();
    assert!(again.mentions.is_empty() && again.skipped == 0);
}

#[tokio::test]
async fn the_first_start_reads_only_the_newest_page() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let none = connected.mentions_since(None).await.unwrap();
    assert!(none.mentions.is_empty());
    assert_eq!(none.cursor, None);

    let all = add_mentions(&server, 100);
    let first = connected.mentions_since(None).await.unwrap();
    assert_eq!(
        ids(&first.mentions),
        all[20..],
        "the newest 80, oldest first"
    );
    assert_eq!(first.cursor.as_deref(), Some(all[99].as_str()));
    assert!(first.complete);

    let pages = server.requests_to(Route::Notifications);
    assert_eq!(pages.len(), 2, "one request each");
    assert!(query_pairs(&pages[1]).iter().all(|(k, _)| k != "min_id"));
}

#[tokio::test]
async fn a_rate_limited_catch_up_says_when_to_try_again() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let cursor = server.add_mention("alice", "<p>a</p>", Visibility::Public, None, false);
    add_mentions(&server, 3);
    server.inject(Route::Notifications, Fault::rate_limited(120));

    let error = connected.mentions_since(Some(&cursor)).await.unwrap_err();
    assert_eq!(error.status(), Some(429));
    // A reset in whole seconds may be cut down to its second: one second more.
    assert_eq!(error.retry_after(), Some(Duration::from_secs(121)));
    assert!(error.retryable());
    assert_eq!(error.endpoint(), "GET /api/v1/notifications");
    assert!(!error.to_string().contains(&server.token()));

    // Nothing was lost: the next call gets them all.
    let catch_up = connected.mentions_since(Some(&cursor)).await.unwrap();
    assert_eq!(catch_up.mentions.len(), 3);
}

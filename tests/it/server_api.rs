//! The server module (`perennial::network::mastodon`) against the in-process fake server: connecting,
//! posting, reading our statuses back, media, and how each failure is sorted.

use std::time::Duration;

use futures_util::StreamExt;
use perennial::network::mastodon::{
    ConnectError, ErrorKind, Limits, NewStatus, Server, ServerError, ServerOptions,
};
use perennial::network::token::Token;
use perennial::posts::config::{SoftwareSetting, Visibility};
use perennial::text::count::Software;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite;

use crate::fake_server::{FakeOptions, FakeServer, Fault, Quirk, Route};

/// Generous: only reached when something is broken.
const WAIT: Duration = Duration::from_secs(60);

fn options(server: &FakeServer) -> ServerOptions {
    ServerOptions {
        url: server.url(),
        software: SoftwareSetting::Auto,
        max_characters: None,
        request_timeout: Duration::from_secs(30),
    }
}

async fn connect(server: &FakeServer) -> Server {
    Server::connect(options(server), Token::new(server.token()))
        .await
        .expect("connect to the fake server")
}

/// The token must appear in no message a user or a log could see.
#[track_caller]
fn assert_token_hidden(server: &FakeServer, error: &dyn std::fmt::Debug, display: &str) {
    let token = server.token();
    assert!(!display.contains(&token), "token in {display}");
    assert!(!format!("{error:?}").contains(&token), "token in {error:?}");
}

#[track_caller]
fn assert_error_hides_token(server: &FakeServer, error: &ServerError) {
    assert_token_hidden(server, error, &error.to_string());
}

// ---------------------------------------------------------------------------------------
// Connecting.

#[tokio::test]
async fn connects_to_mastodon_reading_limits_from_v2_instance() {
    let server = FakeServer::start(
        FakeOptions::mastodon()
            .max_characters(640)
            .account("109", "pyopensci"),
    );
    let connected = connect(&server).await;

    assert_eq!(connected.account().id, "109");
    assert_eq!(connected.account().acct, "pyopensci");
    assert_eq!(connected.account().username, "pyopensci");
    assert!(connected.account().bot);
    assert_eq!(
        connected.limits(),
        &Limits {
            software: Software::Mastodon,
            max_characters: 640,
            server_max_characters: 640,
            characters_reserved_per_url: 23,
            max_media_attachments: 4,
            description_limit: 1500,
            // What the fake reports, Mastodon's own defaults.
            media: perennial::posts::post::MediaLimits::default(),
        }
    );
    assert_eq!(connected.limits().counter().limit(), 640);

    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/.well-known/nodeinfo",
            "/nodeinfo/2.0",
            "/api/v1/accounts/verify_credentials",
            "/api/v2/instance",
            // Whether the token can read its own statuses (without `read:statuses` it cannot).
            "/api/v1/accounts/109/statuses",
        ]
    );
    let requests = server.requests();
    for request in &requests {
        let user_agent = request.user_agent.as_deref().unwrap_or_default();
        assert!(user_agent.starts_with("perennial/"), "{request:?}");
        assert!(!request
            .query
            .as_deref()
            .unwrap_or_default()
            .contains(&server.token()));
    }
    // The token goes to the API, never to nodeinfo.
    assert!(requests
        .iter()
        .all(|r| r.authorization_header == r.path.starts_with("/api/")));
}

#[tokio::test]
async fn connects_to_gotosocial() {
    let server = FakeServer::start(FakeOptions::gotosocial().max_characters(3210));
    let connected = connect(&server).await;
    assert_eq!(
        connected.limits(),
        &Limits {
            software: Software::Gotosocial,
            max_characters: 3210,
            server_max_characters: 3210,
            // What GoToSocial advertises (its counter never applies it).
            characters_reserved_per_url: 25,
            max_media_attachments: 4,
            description_limit: 1500,
            // What the fake reports, Mastodon's own defaults.
            media: perennial::posts::post::MediaLimits::default(),
        }
    );
    assert_eq!(connected.account().id, "01HZZZZZZZZZZZZZZZZZZZZZ01");
}

#[tokio::test]
async fn fixed_software_skips_nodeinfo_and_config_max_characters_wins() {
    let server = FakeServer::start(FakeOptions::gotosocial());
    let mut options = options(&server);
    options.software = SoftwareSetting::Fixed(Software::Mastodon);
    options.max_characters = Some(480);
    options.url.push('/'); // a trailing slash is tolerated
    let connected = Server::connect(options, Token::new(server.token()))
        .await
        .unwrap();
    assert_eq!(connected.limits().software, Software::Mastodon);
    assert_eq!(connected.limits().max_characters, 480);
    // The state keeps the server's own limit, not the override (issue 14 item 12).
    assert_eq!(connected.limits().server_max_characters, 5000);
    assert_eq!(
        connected.seen(jiff::Timestamp::UNIX_EPOCH).max_characters,
        5000
    );
    assert!(server.requests_to(Route::NodeInfo).is_empty());
    assert_eq!(connected.url(), server.url());
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_never_shown() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let wrong = "wrong-token-that-must-stay-secret-42";
    let error = Server::connect(options(&server), Token::new(wrong))
        .await
        .unwrap_err();
    match &error {
        ConnectError::Unauthorized {
            status,
            server_message,
            ..
        } => {
            assert_eq!(*status, 401);
            assert_eq!(server_message, "The access token is invalid");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(!error.retryable());
    let message = error.to_string();
    assert!(message.contains("perennial login"), "{message}");
    assert!(message.contains("scopes"), "{message}");
    assert!(!message.contains(wrong), "{message}");
    assert!(!format!("{error:?}").contains(wrong));
    assert!(!message.contains(&server.token()));
}

#[tokio::test]
async fn a_server_that_is_down_is_unreachable_and_retryable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // closed again: connections are refused
    let options = ServerOptions {
        url: format!("http://127.0.0.1:{port}"),
        software: SoftwareSetting::Auto,
        max_characters: None,
        request_timeout: Duration::from_secs(30),
    };
    let error = Server::connect(options, Token::new("secret-token-xyz"))
        .await
        .unwrap_err();
    let ConnectError::Unreachable { error: cause, .. } = &error else {
        panic!("expected Unreachable, got {error:?}");
    };
    assert!(
        matches!(cause.kind(), ErrorKind::Connect { .. }),
        "{cause:?}"
    );
    assert!(!cause.uncertain());
    assert!(error.retryable());
    assert!(!error.to_string().contains("secret-token-xyz"));
}

#[tokio::test]
async fn a_busy_instance_endpoint_makes_connect_retryable() {
    let server = FakeServer::start(FakeOptions::mastodon());
    server.inject(
        Route::Instance,
        Fault::Unavailable503 {
            retry_after_secs: Some(30),
        },
    );
    let error = Server::connect(options(&server), Token::new(server.token()))
        .await
        .unwrap_err();
    assert!(error.retryable(), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn an_invalid_url_is_refused_before_any_request() {
    let options = ServerOptions {
        url: "fosstodon.org".to_string(),
        software: SoftwareSetting::Auto,
        max_characters: None,
        request_timeout: Duration::from_secs(30),
    };
    let error = Server::connect(options, Token::new("t")).await.unwrap_err();
    assert!(
        matches!(error, ConnectError::InvalidUrl { .. }),
        "{error:?}"
    );
    assert!(!error.retryable());
}

// ---------------------------------------------------------------------------------------
// Posting.

#[tokio::test]
async fn post_status_round_trip() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let first = connected
        .post_status(&NewStatus::new("First part (1/2)", Visibility::Public))
        .await
        .unwrap();

    let text = "Second part with a link https://www.pyopensci.org/python-package-guide/tutorials/intro.html\n\nand a paragraph #OpenScience (2/2)";
    let status = NewStatus {
        text: text.to_string(),
        spoiler_text: Some("packaging".to_string()),
        visibility: Visibility::Unlisted,
        language: Some("en".to_string()),
        in_reply_to_id: Some(first.id.clone()),
        media_ids: Vec::new(),
        idempotency_key: Some("post-7f3a".to_string()),
        prepared: None,
    };
    let posted = connected.post_status(&status).await.unwrap();

    let stored = server.statuses();
    assert_eq!(stored.len(), 2);
    let second = &stored[1];
    assert_eq!(second.id, posted.id);
    assert_eq!(second.text, text);
    assert_eq!(second.spoiler_text, "packaging");
    assert_eq!(second.visibility, "unlisted");
    assert_eq!(second.language.as_deref(), Some("en"));
    assert_eq!(second.in_reply_to_id.as_deref(), Some(first.id.as_str()));
    assert_eq!(second.idempotency_key.as_deref(), Some("post-7f3a"));
    assert_eq!(second.created_at.as_second(), posted.created_at.as_second());
    assert_eq!(
        posted.url,
        Some(format!("{}/@perennial/{}", server.url(), posted.id))
    );
    // The first status had no spoiler, language or key: none is sent empty.
    assert_eq!(stored[0].spoiler_text, "");
    assert_eq!(stored[0].language, None);
    assert_eq!(stored[0].idempotency_key, None);
}

#[tokio::test]
async fn the_same_idempotency_key_posts_once() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let mut status = NewStatus::new("Only once", Visibility::Public);
    status.idempotency_key = Some("slot-2026-03-01T09:30".to_string());
    let first = connected.post_status(&status).await.unwrap();
    let again = connected.post_status(&status).await.unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(server.statuses().len(), 1);
    assert_eq!(server.requests_to(Route::PostStatus).len(), 2);
}

#[tokio::test]
async fn too_long_on_mastodon_is_permanent_with_the_servers_message() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let error = connected
        .post_status(&NewStatus::new("x".repeat(501), Visibility::Public))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(422));
    assert!(!error.retryable());
    assert!(!error.uncertain());
    assert_eq!(error.retry_after(), None);
    assert_eq!(
        error.server_message(),
        Some("Validation failed: Text character limit of 500 exceeded")
    );
    assert_eq!(
        error.to_string(),
        "POST /api/v1/statuses: the server answered HTTP 422: \
         Validation failed: Text character limit of 500 exceeded"
    );
    assert_error_hides_token(&server, &error);
    assert!(server.statuses().is_empty());
}

#[tokio::test]
async fn too_long_on_gotosocial_is_a_permanent_400() {
    let server = FakeServer::start(FakeOptions::gotosocial().max_characters(100));
    let connected = connect(&server).await;
    let mut status = NewStatus::new("y".repeat(95), Visibility::Public);
    status.spoiler_text = Some("a warning".to_string()); // the spoiler counts too
    let error = connected.post_status(&status).await.unwrap_err();
    assert_eq!(error.status(), Some(400));
    assert!(!error.retryable());
    assert!(!error.uncertain());
    assert_eq!(
        error.server_message(),
        Some("Bad Request: text with spoiler exceed max chars (100)")
    );
}

/// The fake counts independently of perennial's counter; both must agree at the limit.
#[tokio::test]
async fn a_long_url_costs_23_on_mastodon_and_counts_in_full_on_gotosocial() {
    let url = format!("https://www.pyopensci.org/{}", "a".repeat(80));
    let text_of = |words: usize| format!("{} {url}", "w".repeat(words));
    // Mastodon: 476 + 1 + 23 = 500 fits, 501 does not; literally both are far over 500.
    let cases = [
        (FakeOptions::mastodon(), text_of(476), true),
        (FakeOptions::mastodon(), text_of(477), false),
        (
            FakeOptions::gotosocial().max_characters(500),
            text_of(476),
            false,
        ),
        (
            FakeOptions::gotosocial().max_characters(700),
            text_of(476),
            true,
        ),
    ];
    for (options, text, accepted) in cases {
        let flavour = options.flavour;
        let server = FakeServer::start(options);
        let connected = connect(&server).await;
        assert_eq!(
            connected.limits().counter().fits(&text, ""),
            accepted,
            "{flavour:?}: perennial's counter"
        );
        let result = connected
            .post_status(&NewStatus::new(text, Visibility::Public))
            .await;
        assert_eq!(result.is_ok(), accepted, "{flavour:?}: {result:?}");
    }
}

#[tokio::test]
async fn a_500_is_retryable() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    server.inject(Route::PostStatus, Fault::InternalError);
    let error = connected
        .post_status(&NewStatus::new("hello", Visibility::Public))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(500));
    assert!(error.retryable());
    assert!(error.uncertain()); // a 5xx may come after the work was done
    assert_eq!(error.retry_after(), None);
    assert_error_hides_token(&server, &error);
    assert!(server.statuses().is_empty());
    // The fault was used up: the next post goes through.
    connected
        .post_status(&NewStatus::new("hello", Visibility::Public))
        .await
        .unwrap();
    assert_eq!(server.statuses().len(), 1);
}

#[tokio::test]
async fn a_429_waits_until_the_rate_limit_resets() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    server.inject(Route::PostStatus, Fault::rate_limited(90));
    server.inject(
        Route::PostStatus,
        Fault::RateLimited {
            reset_after: Duration::from_secs(600),
            retry_after_secs: Some(17),
        },
    );
    let status = NewStatus::new("hello", Visibility::Public);

    let error = connected.post_status(&status).await.unwrap_err();
    // The reset is in whole seconds (`.000000`), which may be cut down to its second: one
    // second more.
    assert_eq!(
        error.kind(),
        &ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(91))
        }
    );
    assert!(error.retryable());
    assert!(!error.uncertain());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(91)));

    // `Retry-After` wins over the reset time.
    let error = connected.post_status(&status).await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(17)));
    assert!(server.statuses().is_empty());
}

#[tokio::test]
async fn a_503_with_retry_after_is_retryable() {
    let server = FakeServer::start(FakeOptions::gotosocial());
    let connected = connect(&server).await;
    server.inject(
        Route::PostStatus,
        Fault::Unavailable503 {
            retry_after_secs: Some(30),
        },
    );
    let error = connected
        .post_status(&NewStatus::new("hello", Visibility::Public))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(503));
    assert_eq!(error.server_message(), Some("server capacity exceeded"));
    assert!(error.retryable());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
}

#[tokio::test(start_paused = true)]
async fn a_hanging_server_times_out_in_paused_time() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    server.inject(Route::PostStatus, Fault::Hang);

    let real_start = std::time::Instant::now();
    let paused_start = tokio::time::Instant::now();
    let error = connected
        .post_status(&NewStatus::new("hello", Visibility::Public))
        .await
        .unwrap_err();

    assert_eq!(
        error.kind(),
        &ErrorKind::Timeout {
            after: Duration::from_secs(30)
        }
    );
    assert!(error.retryable());
    assert!(error.uncertain());
    assert_error_hides_token(&server, &error);
    assert!(paused_start.elapsed() >= Duration::from_secs(30));
    assert!(
        real_start.elapsed() < Duration::from_secs(10),
        "the timeout waited in real time: {:?}",
        real_start.elapsed()
    );
    assert_eq!(server.requests_to(Route::PostStatus).len(), 1);
}

#[tokio::test]
async fn a_connection_dropped_after_commit_is_uncertain_and_the_status_is_found() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let text = "Meet our volunteers: https://www.pyopensci.org/our-community/ #OpenScience";
    let mut status = NewStatus::new(text, Visibility::Unlisted);
    status.spoiler_text = Some("community".to_string());
    server.inject(Route::PostStatus, Fault::DropAfterCommit);

    let error = connected.post_status(&status).await.unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::ConnectionLost { .. }),
        "{error:?}"
    );
    assert!(error.uncertain());
    assert!(error.retryable());
    assert_error_hides_token(&server, &error);

    // The server did post it: the check before resending finds it.
    let stored = timeout(WAIT, server.wait_for_statuses(1)).await.unwrap();
    let own = connected.own_statuses(5).await.unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].id, stored[0].id);
    assert_eq!(own[0].text, text);
    assert_eq!(own[0].spoiler_text, "community");
    assert_eq!(own[0].visibility, "unlisted");
    assert_eq!(own[0].in_reply_to_id, None);
}

#[tokio::test]
async fn own_statuses_are_newest_first_across_pages() {
    let server = FakeServer::start(FakeOptions::gotosocial());
    let connected = connect(&server).await;
    let mut ids = Vec::new();
    for i in 0..45 {
        let mut status = NewStatus::new(format!("status {i}"), Visibility::Public);
        if i == 44 {
            status.in_reply_to_id = ids.last().cloned();
            status.text = "a reply &amp; <b>not bold</b>\nsecond line".to_string();
        }
        ids.push(connected.post_status(&status).await.unwrap().id);
    }

    let own = connected.own_statuses(42).await.unwrap();
    let expected: Vec<String> = ids.iter().rev().take(42).cloned().collect();
    let got: Vec<String> = own.iter().map(|s| s.id.clone()).collect();
    assert_eq!(got, expected);
    assert_eq!(own[0].text, "a reply &amp; <b>not bold</b>\nsecond line");
    assert_eq!(own[0].in_reply_to_id.as_deref(), Some(ids[43].as_str()));
    assert_eq!(own[1].text, "status 43");
    assert_eq!(own[41].text, "status 3");

    let queries: Vec<String> = server
        .requests_to(Route::OwnStatuses)
        .iter()
        .map(|r| r.query.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        queries,
        [
            // Connecting checks that the token can read them.
            "limit=1&exclude_reblogs=true".to_string(),
            "limit=40&exclude_reblogs=true".to_string(),
            format!("limit=2&exclude_reblogs=true&max_id={}", ids[5]),
        ]
    );

    // Asking for more than there is stops at the end.
    assert_eq!(connected.own_statuses(100).await.unwrap().len(), 45);
}

/// Issue 14 item 3: the exactly-once search must never take a status older than the newest
/// one seen before sending for the one just sent. The server is asked with `since_id`, and
/// the answer is cut at the bound even when the server ignores `since_id`.
#[tokio::test]
async fn own_statuses_after_never_returns_the_bound_or_older() {
    for ignore_since_id in [false, true] {
        let server = FakeServer::start(FakeOptions::gotosocial());
        if ignore_since_id {
            server.ignore_since_id();
        }
        let connected = connect(&server).await;
        assert_eq!(connected.newest_own_status_id().await.unwrap(), None);
        let mut ids = Vec::new();
        for i in 0..45 {
            let status = NewStatus::new(format!("same text {}", i % 2), Visibility::Public);
            ids.push(connected.post_status(&status).await.unwrap().id);
        }
        let bound = connected.newest_own_status_id().await.unwrap();
        assert_eq!(bound.as_deref(), Some(ids[44].as_str()));
        assert!(connected
            .own_statuses_after(40, bound.as_deref())
            .await
            .unwrap()
            .is_empty());

        let after = connected
            .own_statuses_after(100, Some(&ids[2]))
            .await
            .unwrap();
        let got: Vec<&str> = after.iter().map(|s| s.id.as_str()).collect();
        let expected: Vec<&str> = ids[3..].iter().rev().map(String::as_str).collect();
        assert_eq!(got, expected, "ignore_since_id: {ignore_since_id}");

        let few = connected
            .own_statuses_after(2, Some(&ids[2]))
            .await
            .unwrap();
        assert_eq!(few.len(), 2);
        assert_eq!(few[0].id, ids[44]);

        let last_query = server
            .requests_to(Route::OwnStatuses)
            .last()
            .and_then(|r| r.query.clone())
            .unwrap_or_default();
        assert!(
            last_query.contains(&format!("since_id={}", ids[2])),
            "{last_query}"
        );
        assert_eq!(
            connected.own_statuses_after(100, None).await.unwrap().len(),
            45
        );
    }
}

// ---------------------------------------------------------------------------------------
// Media.

#[tokio::test(start_paused = true)]
async fn upload_media_waits_while_the_server_processes_it() {
    let server = FakeServer::start(FakeOptions::mastodon().media_processing_polls(3));
    let connected = connect(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stravalib.png");
    std::fs::write(&path, b"\x89PNG\r\n\x1a\nnot really an image").unwrap();
    let alt = "Screenshot of stravalib's documentation & its \"quick start\"";

    let id = connected.upload_media(&path, alt).await.unwrap();

    let media = server.media();
    assert_eq!(media.len(), 1);
    assert_eq!(media[0].id, id);
    assert_eq!(media[0].description, alt);
    assert_eq!(media[0].file_name.as_deref(), Some("stravalib.png"));
    assert_eq!(media[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(media[0].size, 27);
    assert_eq!(media[0].polls_left, 0);
    let requests: Vec<(String, String)> = server
        .requests_to(Route::Media)
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let poll = ("GET".to_string(), format!("/api/v1/media/{id}"));
    assert_eq!(
        requests,
        [
            ("POST".to_string(), "/api/v2/media".to_string()),
            poll.clone(),
            poll.clone(),
            poll.clone(),
            poll,
        ]
    );

    // The processed media can be attached.
    let mut status = NewStatus::new("With a picture", Visibility::Public);
    status.media_ids = vec![id.clone()];
    connected.post_status(&status).await.unwrap();
    assert_eq!(server.statuses()[0].media_ids, [id]);
}

#[tokio::test]
async fn a_missing_media_file_is_permanent() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let error = connected
        .upload_media(&dir.path().join("missing.png"), "alt")
        .await
        .unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::File { .. }), "{error:?}");
    assert!(!error.retryable());
    assert!(!error.uncertain());
    assert!(server.requests_to(Route::Media).is_empty());
}

/// Issue 15 item 1, at upload time: a media path that became a symbolic link after the post
/// was read (or a folder on it did) is not uploaded, and nothing of its target is sent.
#[tokio::test]
async fn a_media_path_that_became_a_link_since_the_post_was_read_is_not_uploaded() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("secret"), "root:x:0:0").unwrap();
    std::os::unix::fs::symlink(root.join("secret"), root.join("image.png")).unwrap();
    std::fs::create_dir(root.join("real")).unwrap();
    std::fs::write(root.join("real/pic.png"), b"\x89PNG").unwrap();
    std::os::unix::fs::symlink(root.join("real"), root.join("images")).unwrap();
    for path in [root.join("image.png"), root.join("images/pic.png")] {
        let error = connected.upload_media(&path, "alt").await.unwrap_err();
        assert!(matches!(error.kind(), ErrorKind::File { .. }), "{error:?}");
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert!(!error.retryable());
    }
    assert!(server.requests_to(Route::Media).is_empty());
    // The real path itself is uploaded, from the file.
    connected
        .upload_media(&root.join("real/pic.png"), "alt")
        .await
        .unwrap();
    assert_eq!(server.media().len(), 1);
}

// ---------------------------------------------------------------------------------------
// The fake server's notification features (used by the mention handling).

#[tokio::test]
async fn fake_notifications_filter_by_type_and_link_pages() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let mention = server.add_mention(
        "alice@example.org",
        "<p>@perennial how do I package?</p>",
        Visibility::Public,
        None,
        false,
    );
    server.add_notification_of_type("severed_relationships");
    let second = server.add_mention("bob", "<p>hi</p>", Visibility::Direct, None, true);

    let client = reqwest::Client::new();
    let response = client
        .get(format!(
            "{}/api/v1/notifications?types[]=mention&limit=1",
            server.url()
        ))
        .bearer_auth(server.token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-ratelimit-limit"].to_str().unwrap(),
        "300"
    );
    let link = response.headers()["link"].to_str().unwrap().to_string();
    let page: serde_json::Value = response.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["id"], second.as_str());
    assert_eq!(page[0]["status"]["visibility"], "direct");
    assert_eq!(page[0]["account"]["bot"], true);
    assert!(
        link.contains(&format!("max_id={second}&types[]=mention>; rel=\"next\"")),
        "{link}"
    );

    let older: serde_json::Value = client
        .get(format!(
            "{}/api/v1/notifications?types[]=mention&max_id={second}",
            server.url()
        ))
        .bearer_auth(server.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(older.as_array().unwrap().len(), 1);
    assert_eq!(older[0]["id"], mention.as_str());
    assert_eq!(
        older[0]["status"]["id"],
        server.status_of_notification(&mention).unwrap().as_str()
    );

    let all_types: serde_json::Value = client
        .get(format!("{}/api/v1/notifications", server.url()))
        .bearer_auth(server.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = all_types
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["mention", "severed_relationships", "mention"]);
}

#[tokio::test]
async fn fake_stream_pushes_mentions_and_can_be_dropped() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let url = format!(
        "{}/api/v1/streaming?stream=user:notification",
        server.url().replace("http://", "ws://")
    );
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", server.token().parse().unwrap());
    let (mut stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    timeout(WAIT, server.wait_for_stream_count(1))
        .await
        .unwrap();

    let id = server.add_mention(
        "carol",
        "<p>@perennial docs?</p>",
        Visibility::Public,
        None,
        false,
    );
    let frame = loop {
        match timeout(WAIT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            tungstenite::Message::Text(text) => break text.to_string(),
            _ => continue,
        }
    };
    let frame: serde_json::Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(frame["event"], "notification");
    assert_eq!(frame["stream"], serde_json::json!(["user:notification"]));
    let payload: serde_json::Value =
        serde_json::from_str(frame["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["id"], id.as_str());
    assert_eq!(payload["type"], "mention");

    server.drop_streams();
    let end = timeout(WAIT, async {
        loop {
            match stream.next().await {
                None | Some(Err(_)) | Some(Ok(tungstenite::Message::Close(_))) => break,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the stream was not dropped");
    timeout(WAIT, server.wait_for_stream_count(0))
        .await
        .unwrap();
}

#[tokio::test]
async fn fake_stream_refuses_a_wrong_token() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let url = format!(
        "{}/api/v1/streaming?stream=user&access_token=wrong",
        server.url().replace("http://", "ws://")
    );
    let error = tokio_tungstenite::connect_async(url).await.unwrap_err();
    match error {
        tungstenite::Error::Http(response) => assert_eq!(response.status(), 401),
        other => panic!("expected HTTP 401, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Issue 14: what a real GoToSocial 0.19.2 and a hostile server did.

/// Item 10: a server or proxy echoing the `Authorization` header in an error body must not put
/// the token in an error's text (which reaches the journal and `state.json`).
#[tokio::test]
async fn a_token_echoed_in_an_error_body_is_redacted_from_the_error() {
    let server = FakeServer::start(FakeOptions::mastodon());
    let connected = connect(&server).await;
    let status = NewStatus::new("hello", Visibility::Public);
    for code in [422, 500] {
        server.inject_quirk(Route::PostStatus, Quirk::EchoAuthorization { status: code });
        let error = connected.post_status(&status).await.unwrap_err();
        assert_eq!(error.status(), Some(code));
        let message = error.server_message().unwrap_or_default();
        assert!(
            message.contains("Authorization: Bearer [redacted]"),
            "{message}"
        );
        assert_error_hides_token(&server, &error);
    }
    // The catch-up of mentions, and reading our own statuses.
    server.inject_quirk(
        Route::Notifications,
        Quirk::EchoAuthorization { status: 500 },
    );
    let error = connected.mentions_since(Some("1")).await.unwrap_err();
    assert_error_hides_token(&server, &error);
    server.inject_quirk(Route::OwnStatuses, Quirk::EchoAuthorization { status: 422 });
    let error = connected.own_statuses(5).await.unwrap_err();
    assert_error_hides_token(&server, &error);
    assert!(server.statuses().is_empty());
}

/// Item 10, while connecting: the errors of `verify_credentials` and of the own-statuses
/// check are connect errors, which the daemon logs.
#[tokio::test]
async fn a_token_echoed_while_connecting_is_redacted_from_the_connect_error() {
    for (route, code) in [
        (Route::VerifyCredentials, 403),
        (Route::VerifyCredentials, 500),
        (Route::Instance, 502),
        (Route::OwnStatuses, 401),
    ] {
        let server = FakeServer::start(FakeOptions::mastodon());
        server.inject_quirk(route, Quirk::EchoAuthorization { status: code });
        let error = Server::connect(options(&server), Token::new(server.token()))
            .await
            .unwrap_err();
        assert_token_hidden(&server, &error, &error.to_string());
        assert!(error.to_string().contains("[redacted]"), "{error}");
    }
}

/// Item 14: `verify_credentials` is read with the 8 MiB cap of every other answer: a huge
/// answer is a connect error saying so, never an unbounded read into memory.
#[tokio::test]
async fn a_verify_credentials_answer_over_8_mib_is_refused_as_too_large() {
    let server = FakeServer::start(FakeOptions::gotosocial());
    server.inject_quirk(
        Route::VerifyCredentials,
        Quirk::HugeBody {
            bytes: 64 * 1024 * 1024,
        },
    );
    let error = Server::connect(options(&server), Token::new(server.token()))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("too large"), "{message}");
    assert!(
        matches!(error, ConnectError::Incompatible { .. }),
        "{error:?}"
    );
    assert!(!error.retryable());
}

/// Item 14: megalodon's account entity still defines what an account is: an answer missing
/// a field it requires is refused, and 401/403/404 are sorted as before.
#[tokio::test]
async fn verify_credentials_failures_are_sorted_as_before() {
    let server = FakeServer::start(FakeOptions::mastodon());
    server.inject_quirk(Route::VerifyCredentials, Quirk::OutsideScopes);
    let error = Server::connect(options(&server), Token::new(server.token()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ConnectError::Unauthorized { status: 403, .. }),
        "{error:?}"
    );
    assert!(error.is_configuration());

    server.inject(Route::VerifyCredentials, Fault::InternalError);
    let error = Server::connect(options(&server), Token::new(server.token()))
        .await
        .unwrap_err();
    assert!(error.retryable(), "{error:?}");
    assert!(!error.is_configuration());
}

/// Item 7: a token that cannot read its own statuses (made by hand, without
/// `read:statuses`) is refused at start, naming the scope and `perennial login`.
#[tokio::test]
async fn a_token_that_cannot_read_its_own_statuses_is_a_configuration_error() {
    let server = FakeServer::start(FakeOptions::gotosocial());
    server.inject_quirk(Route::OwnStatuses, Quirk::OutsideScopes);
    let error = Server::connect(options(&server), Token::new(server.token()))
        .await
        .unwrap_err();
    match &error {
        ConnectError::CannotReadOwnStatuses {
            status,
            server_message,
            url,
        } => {
            assert_eq!(*status, 403);
            assert_eq!(
                server_message,
                "This action is outside the authorized scopes"
            );
            assert_eq!(url, &server.url());
        }
        other => panic!("expected CannotReadOwnStatuses, got {other:?}"),
    }
    assert!(error.is_configuration());
    assert!(!error.retryable());
    let message = error.to_string();
    assert!(message.contains("read:statuses"), "{message}");
    assert!(message.contains("perennial login"), "{message}");

    // A passing failure of that read is only a reason to try again.
    server.inject(Route::OwnStatuses, Fault::gotosocial_starting());
    let error = Server::connect(options(&server), Token::new(server.token()))
        .await
        .unwrap_err();
    assert!(error.retryable(), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
    connect(&server).await;
}

/// Item 2: GoToSocial's own 429 has `X-Ratelimit-Reset` in whole seconds and no
/// `Retry-After`; the wait is measured from its `Date`, and may well be 0 s (the retry rule's
/// floor is what keeps that from spinning).
#[tokio::test]
async fn gotosocials_429_waits_until_its_whole_second_reset() {
    let server = FakeServer::start(FakeOptions::gotosocial());
    let connected = connect(&server).await;
    let status = NewStatus::new("hello", Visibility::Public);
    server.inject_quirk(Route::PostStatus, Quirk::gotosocial_rate_limited(52));
    let error = connected.post_status(&status).await.unwrap_err();
    assert_eq!(error.status(), Some(429));
    // The reset is in whole seconds, cut down: one second more than it says.
    assert_eq!(error.retry_after(), Some(Duration::from_secs(53)));
    assert!(error.retryable() && !error.uncertain());

    server.inject_quirk(Route::PostStatus, Quirk::gotosocial_rate_limited(0));
    let error = connected.post_status(&status).await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
    assert!(server.statuses().is_empty());
}

/// GoToSocial at start-up: 503 with `Retry-After: 120`.
#[tokio::test]
async fn gotosocial_starting_up_asks_for_120_s() {
    let server = FakeServer::start(FakeOptions::gotosocial());
    let connected = connect(&server).await;
    server.inject(Route::PostStatus, Fault::gotosocial_starting());
    let error = connected
        .post_status(&NewStatus::new("hello", Visibility::Public))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(503));
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
    assert!(error.uncertain());
}

/// Item 1 (server side): each status is stored with the visibility and language it was sent
/// with, and reads back so.
#[tokio::test]
async fn visibility_and_language_are_stored_as_sent() {
    let server = FakeServer::start(FakeOptions::gotosocial());
    let connected = connect(&server).await;
    for (visibility, language) in [
        (Visibility::Public, Some("en")),
        (Visibility::Unlisted, Some("de")),
        (Visibility::Private, None),
    ] {
        let mut status = NewStatus::new(format!("{visibility:?}"), visibility);
        status.language = language.map(str::to_string);
        connected.post_status(&status).await.unwrap();
    }
    let stored: Vec<(String, Option<String>)> = server
        .statuses()
        .into_iter()
        .map(|s| (s.visibility, s.language))
        .collect();
    assert_eq!(
        stored,
        [
            ("public".to_string(), Some("en".to_string())),
            ("unlisted".to_string(), Some("de".to_string())),
            ("private".to_string(), None),
        ]
    );
    let read_back: Vec<String> = connected
        .own_statuses(3)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.visibility)
        .collect();
    assert_eq!(read_back, ["private", "unlisted", "public"]);
}

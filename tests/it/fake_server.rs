//! An in-process fake fediverse server (Mastodon or GoToSocial flavour) on 127.0.0.1, with
//! fault injection, for tests of the server module and of the daemon.
//!
//! It behaves like Mastodon wherever perennial touches it: nodeinfo, v1/v2 instance,
//! `verify_credentials`, posting (its own length count, `Idempotency-Key`), the account's
//! statuses, media (v2 upload answering 202, then 206 while "processing"), notifications with
//! `Link` paging and the streaming websocket. Every response carries Mastodon's
//! `X-RateLimit-*` headers and a `Date` in whole seconds.
//!
//! It runs on the *current* tokio runtime (`tokio::spawn`), so a
//! `#[tokio::test(start_paused = true)]` test drives client and server together: when the
//! server hangs, paused time jumps straight to the client's timeout.
//!
//! ```ignore
//! let server = FakeServer::start(FakeOptions::mastodon());
//! server.inject(Route::PostStatus, Fault::DropAfterCommit);
//! // ... run the code under test against server.url() with server.token() ...
//! let statuses = timeout(Duration::from_secs(60), server.wait_for_statuses(1)).await?;
//! assert_eq!(statuses[0].text, "hello");
//! ```
//!
//! Wait for events with the `wait_for_*` methods (built on a `tokio::sync::watch`), never with
//! sleeps; wrap them in a generous `tokio::time::timeout`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use unicode_segmentation::UnicodeSegmentation;

use perennial::posts::config::Visibility;

/// The token the fake server accepts unless [`FakeOptions::token`] says otherwise.
pub const TEST_TOKEN: &str = "fake-token-s3cr3t-0123456789abcdef";
/// The authorization code `POST /oauth/token` accepts (with a registered app's credentials);
/// any other gets Doorkeeper's 400 `invalid_grant`.
pub const TEST_AUTHORIZATION_CODE: &str = "fake-authorization-code-0123456789";

/// Mastodon's rate limit for API calls: 300 per 5 minutes.
const RATE_LIMIT: u32 = 300;
const RATE_LIMIT_WINDOW: SignedDuration = SignedDuration::from_secs(300);
/// How long Mastodon remembers an `Idempotency-Key`.
const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(3600);

/// Which server software to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// Counts grapheme clusters, a URL as 23, `@user@domain` as `@user`; over the limit: 422;
    /// honours `Idempotency-Key`; numeric ids.
    Mastodon,
    /// Counts code points, everything literal; over the limit: 400; ignores
    /// `Idempotency-Key`; ULID-like ids (`01J…`).
    GoToSocial,
}

/// How the fake server is set up.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    pub flavour: Flavour,
    /// Reported in the instance documents and enforced on posting.
    pub max_characters: usize,
    /// The only token accepted.
    pub token: String,
    /// The token's account.
    pub account_id: String,
    pub account_acct: String,
    pub account_bot: bool,
    /// How many polls of `GET /api/v1/media/:id` answer 206 (processing) before 200. With 0,
    /// `POST /api/v2/media` answers 200 with the URL at once.
    pub media_processing_polls: usize,
    /// Where `created_at` comes from (default: the system clock). Paused-time tests pass
    /// their own, so that the server's timestamps move with the daemon's clock.
    pub clock: Option<FakeClock>,
}

/// A clock for the fake server's timestamps.
#[derive(Clone)]
pub struct FakeClock(pub Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl std::fmt::Debug for FakeClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeClock")
    }
}

impl FakeOptions {
    /// Mastodon with its defaults: 500 characters, account `1` / `perennial`.
    pub fn mastodon() -> FakeOptions {
        FakeOptions {
            flavour: Flavour::Mastodon,
            max_characters: 500,
            token: TEST_TOKEN.to_string(),
            account_id: "1".to_string(),
            account_acct: "perennial".to_string(),
            account_bot: true,
            media_processing_polls: 2,
            clock: None,
        }
    }

    /// GoToSocial with its defaults: 5000 characters, a ULID account id.
    pub fn gotosocial() -> FakeOptions {
        FakeOptions {
            flavour: Flavour::GoToSocial,
            max_characters: 5000,
            account_id: "01HZZZZZZZZZZZZZZZZZZZZZ01".to_string(),
            media_processing_polls: 0,
            ..FakeOptions::mastodon()
        }
    }

    pub fn max_characters(mut self, max_characters: usize) -> FakeOptions {
        self.max_characters = max_characters;
        self
    }

    pub fn media_processing_polls(mut self, polls: usize) -> FakeOptions {
        self.media_processing_polls = polls;
        self
    }

    /// Stamps statuses and notifications with `clock`'s time.
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> Timestamp + Send + Sync>) -> FakeOptions {
        self.clock = Some(FakeClock(clock));
        self
    }

    /// The fake server's "now".
    pub fn now(&self) -> Timestamp {
        match &self.clock {
            Some(FakeClock(clock)) => clock(),
            None => Timestamp::now(),
        }
    }

    pub fn account(mut self, id: &str, acct: &str) -> FakeOptions {
        self.account_id = id.to_string();
        self.account_acct = acct.to_string();
        self
    }
}

impl Default for FakeOptions {
    fn default() -> FakeOptions {
        FakeOptions::mastodon()
    }
}

/// A group of endpoints a fault can be aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `/.well-known/nodeinfo` and `/nodeinfo/2.0`.
    NodeInfo,
    /// `GET /api/v1/instance` and `GET /api/v2/instance`.
    Instance,
    VerifyCredentials,
    /// `POST /api/v1/statuses`.
    PostStatus,
    /// `GET /api/v1/accounts/:id/statuses`.
    OwnStatuses,
    /// `POST /api/v2/media`, `POST /api/v1/media`, `GET /api/v1/media/:id`.
    Media,
    /// `GET /api/v1/notifications`.
    Notifications,
    /// `GET /api/v1/streaming` (the upgrade request), and `GET /api/v1/streaming/user` and
    /// `/user/notification` (server-sent events).
    Streaming,
    /// `GET /.well-known/oauth-authorization-server`, `POST /api/v1/apps`, `POST /oauth/token`:
    /// public, no token needed.
    OAuth,
    /// `PATCH /api/v1/accounts/update_credentials`.
    UpdateCredentials,
}

impl Route {
    fn of(method: &Method, path: &str) -> Option<Route> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let route = match (method.as_str(), segments.as_slice()) {
            ("GET", [".well-known", "nodeinfo"] | ["nodeinfo", _]) => Route::NodeInfo,
            ("GET", ["api", "v1" | "v2", "instance"] | ["api", "v1" | "v2", "instance", ""]) => {
                Route::Instance
            }
            ("GET", ["api", "v1", "accounts", "verify_credentials"]) => Route::VerifyCredentials,
            ("POST", ["api", "v1", "statuses"]) => Route::PostStatus,
            ("GET", ["api", "v1", "accounts", _, "statuses"]) => Route::OwnStatuses,
            ("POST", ["api", "v1" | "v2", "media"]) | ("GET", ["api", "v1", "media", _]) => {
                Route::Media
            }
            ("GET", ["api", "v1", "notifications"]) => Route::Notifications,
            ("GET", ["api", "v1", "streaming"]) => Route::Streaming,
            // Server-sent events (what Mastodon.py's `stream_user` reads).
            (
                "GET",
                ["api", "v1", "streaming", "user"]
                | ["api", "v1", "streaming", "user", "notification"],
            ) => Route::Streaming,
            ("GET", [".well-known", "oauth-authorization-server"])
            | ("POST", ["api", "v1", "apps"] | ["oauth", "token"]) => Route::OAuth,
            ("PATCH", ["api", "v1", "accounts", "update_credentials"]) => Route::UpdateCredentials,
            _ => return None,
        };
        Some(route)
    }
}

/// A misbehaviour for the next request to a route (see [`FakeServer::inject`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `X-RateLimit-Remaining: 0` and `X-RateLimit-Reset` = the answer's `Date` +
    /// `reset_after`; plus `Retry-After` when `retry_after_secs` is set (Mastodon and
    /// GoToSocial send none on a 429, a proxy may).
    RateLimited {
        reset_after: Duration,
        retry_after_secs: Option<u64>,
    },
    /// 500 with Mastodon's JSON error; nothing is done.
    InternalError,
    /// Never answers; the client must give up by itself.
    Hang,
    /// Does the work (stores the status, the media...), then closes the connection without
    /// any answer: the nastiest case for exactly-once.
    DropAfterCommit,
    /// Does the work, then never answers: the client's timeout (or a crash) comes after the
    /// status is stored.
    HangAfterCommit,
    /// 503 `server capacity exceeded`, with `Retry-After` when set (GoToSocial's throttle).
    Unavailable503 { retry_after_secs: Option<u64> },
    /// Any status with a JSON error (and a `Location` for a 3xx): a misconfigured proxy's
    /// 404 or redirect, a 401 or 403; nothing is done.
    Status { status: u16 },
}

/// More misbehaviours, seen on real servers and hostile proxies, for the next request to a
/// route (see [`FakeServer::inject_quirk`]; queued with the [`Fault`]s, first in, first out).
/// A separate enum so that code matching every `Fault` keeps compiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quirk {
    /// GoToSocial 0.19.2's own 429, as seen on a real one (run with
    /// `--advanced-rate-limit-requests 5`, then `verify_credentials` six times): body
    /// `{"error":"rate limit reached"}`, `X-Ratelimit-Limit`, `X-Ratelimit-Remaining: 0`,
    /// `X-Ratelimit-Reset: 2026-12-04T21:31:15.000Z` (ISO 8601, whole seconds, the end of the
    /// 5-minute window) and `Date`, and **no** `Retry-After`. The limiter is
    /// `internal/middleware/ratelimit.go` (ulule/limiter, per IP). The reset here is the
    /// answer's `Date` + `reset_after`, both in whole seconds: with `reset_after` 0 (or a
    /// reset that just passed) a client computing its wait from it gets 0 s.
    RateLimitedLikeGoToSocial { reset_after: Duration },
    /// Answers HTTP `status` with a body that echoes the request's `Authorization` header, as a
    /// debugging proxy or a careless server does: JSON `{"error": ...}` for a 4xx, an HTML page
    /// for a 5xx. Nothing is done.
    EchoAuthorization { status: u16 },
    /// Mastodon's answer to a token without the scope a route needs: 403
    /// `{"error":"This action is outside the authorized scopes"}` (Doorkeeper, in
    /// `app/controllers/api/base_controller.rb`). Nothing is done.
    OutsideScopes,
    /// A 200 whose body is `bytes` long (a JSON object with one huge string), streamed in
    /// chunks so that the test itself never holds it.
    HugeBody { bytes: usize },
    /// The request is served as usual: queued before another fault, it lets that fault hit
    /// a later request to the route (say the second part of a thread).
    PassThrough,
}

impl Quirk {
    /// GoToSocial's 429 whose reset is `secs` seconds after the answer's `Date`.
    pub fn gotosocial_rate_limited(secs: u64) -> Quirk {
        Quirk::RateLimitedLikeGoToSocial {
            reset_after: Duration::from_secs(secs),
        }
    }
}

impl Fault {
    /// GoToSocial right after start-up: 503 with `Retry-After: 120` (seen on a real 0.19.2).
    pub fn gotosocial_starting() -> Fault {
        Fault::Unavailable503 {
            retry_after_secs: Some(120),
        }
    }

    /// A 429 whose reset is `secs` seconds after the answer's `Date`, without `Retry-After`.
    pub fn rate_limited(secs: u64) -> Fault {
        Fault::RateLimited {
            reset_after: Duration::from_secs(secs),
            retry_after_secs: None,
        }
    }
}

/// What is queued for a route.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Injected {
    Fault(Fault),
    Quirk(Quirk),
}

/// A status the bot posted, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStatus {
    pub id: String,
    pub created_at: Timestamp,
    pub text: String,
    /// Empty for none.
    pub spoiler_text: String,
    pub visibility: String,
    pub language: Option<String>,
    pub in_reply_to_id: Option<String>,
    pub media_ids: Vec<String>,
    /// The `Idempotency-Key` header it was posted with (recorded for both flavours).
    pub idempotency_key: Option<String>,
    /// The `content` HTML the server shows.
    pub content: String,
}

/// An uploaded media file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMedia {
    pub id: String,
    /// The alt text.
    pub description: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub size: usize,
    /// Polls still to answer 206.
    pub polls_left: usize,
}

/// A request as the server saw it: never a body, never the `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    pub route: Option<Route>,
    pub user_agent: Option<String>,
    pub idempotency_key: Option<String>,
    /// Whether an `Authorization` header came with it.
    pub authorization_header: bool,
}

/// A notification the server holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNotification {
    pub id: String,
    pub kind: String,
    /// The mentioning status, for a mention.
    pub status_id: Option<String>,
    pub from_acct: String,
}

/// The running fake server. Cheap to clone; every clone is the same server.
#[derive(Clone)]
pub struct FakeServer {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<ServerState>,
    /// Bumped after every change, for the `wait_for_*` methods.
    changes: watch::Sender<u64>,
    /// Notifications pushed to connected streams.
    stream_events: broadcast::Sender<Value>,
    /// Bumped by `drop_streams`.
    stream_drops: watch::Sender<u64>,
    /// Bumped by `silence_streams`.
    stream_silences: watch::Sender<u64>,
}

struct ServerState {
    options: FakeOptions,
    url: String,
    next_id: u64,
    statuses: Vec<StoredStatus>,
    /// Statuses by other accounts (mentions), as JSON.
    remote_statuses: Vec<Value>,
    notifications: Vec<(StoredNotification, Value)>,
    media: Vec<StoredMedia>,
    requests: Vec<RecordedRequest>,
    faults: VecDeque<(Route, Injected)>,
    idempotency: HashMap<String, (String, tokio::time::Instant)>,
    streams: usize,
    /// Set by `ignore_notification_types`: `types[]` is not applied.
    ignore_notification_types: bool,
    /// Set by `ignore_since_id`: the account statuses endpoint ignores `since_id` and `min_id`.
    ignore_since_id: bool,
    rate_window_start: Timestamp,
    rate_window_count: u32,
    oauth: OAuthState,
}

impl ServerState {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        match self.options.flavour {
            // Snowflake-like: large, increasing, variable-width in principle.
            Flavour::Mastodon => format!("{}", 110_000_000_000_000_000 + self.next_id),
            // ULID-like: fixed width, ordered as strings.
            Flavour::GoToSocial => format!("01J{:023}", self.next_id),
        }
    }
}

/// Orders ids as the server does: numeric ids by value, ULIDs as strings.
fn id_key(id: &str) -> (usize, &str) {
    (id.len(), id)
}

impl FakeServer {
    /// Binds 127.0.0.1 on a free port and serves on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or when no port can be bound.
    pub fn start(options: FakeOptions) -> FakeServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking socket");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let listener = tokio::net::TcpListener::from_std(listener)
            .expect("FakeServer::start must be called inside a tokio runtime");
        let shared = Arc::new(Shared {
            state: Mutex::new(ServerState {
                options,
                url,
                next_id: 0,
                statuses: Vec::new(),
                remote_statuses: Vec::new(),
                notifications: Vec::new(),
                media: Vec::new(),
                requests: Vec::new(),
                faults: VecDeque::new(),
                idempotency: HashMap::new(),
                streams: 0,
                ignore_notification_types: false,
                ignore_since_id: false,
                rate_window_start: Timestamp::now(),
                rate_window_count: 0,
                oauth: OAuthState::default(),
            }),
            changes: watch::Sender::new(0),
            // Room for a burst: a real server buffers what a slow client has not read yet.
            stream_events: broadcast::Sender::new(4096),
            stream_drops: watch::Sender::new(0),
            stream_silences: watch::Sender::new(0),
        });
        let router = router(shared.clone());
        tokio::spawn(accept_loop(listener, router));
        FakeServer { shared }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.state().url.clone()
    }

    /// The token the server accepts.
    pub fn token(&self) -> String {
        self.state().options.token.clone()
    }

    /// The repository's bundled `config.toml` aimed at this server, its posts folder by
    /// absolute path (so the text can be written anywhere).
    pub fn bundled_config(&self) -> String {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = std::fs::read_to_string(root.join("config.toml"))
            .expect("the bundled config.toml")
            .replace(
                "url = \"https://fosstodon.org\"",
                &format!("url = \"{}\"", self.url()),
            )
            .replace(
                "dir = \"posts\"",
                &format!("dir = {:?}", root.join("posts").display().to_string()),
            );
        assert!(
            config.contains(&self.url()),
            "the bundled config names its server"
        );
        config
    }

    pub fn options(&self) -> FakeOptions {
        self.state().options.clone()
    }

    /// Queues `fault` for the next request to `route` (first in, first out; one per request).
    pub fn inject(&self, route: Route, fault: Fault) {
        self.update(|state| state.faults.push_back((route, Injected::Fault(fault))));
    }

    /// Queues `quirk` for the next request to `route`, in the same queue as [`Self::inject`].
    pub fn inject_quirk(&self, route: Route, quirk: Quirk) {
        self.update(|state| state.faults.push_back((route, Injected::Quirk(quirk))));
    }

    /// Every status the bot posted, oldest first.
    pub fn statuses(&self) -> Vec<StoredStatus> {
        self.state().statuses.clone()
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// The requests to one route.
    pub fn requests_to(&self, route: Route) -> Vec<RecordedRequest> {
        let state = self.state();
        state
            .requests
            .iter()
            .filter(|r| r.route == Some(route))
            .cloned()
            .collect()
    }

    /// Every uploaded media file, oldest first.
    pub fn media(&self) -> Vec<StoredMedia> {
        self.state().media.clone()
    }

    /// Every notification, oldest first.
    pub fn notifications(&self) -> Vec<StoredNotification> {
        let state = self.state();
        state.notifications.iter().map(|(n, _)| n.clone()).collect()
    }

    /// How many streaming connections are open.
    pub fn stream_count(&self) -> usize {
        self.state().streams
    }

    /// Waits until at least `n` statuses are stored; returns them all.
    pub async fn wait_for_statuses(&self, n: usize) -> Vec<StoredStatus> {
        self.wait_until(|state| (state.statuses.len() >= n).then(|| state.statuses.clone()))
            .await
    }

    /// Waits until at least `n` requests to `route` arrived; returns them.
    pub async fn wait_for_requests(&self, route: Route, n: usize) -> Vec<RecordedRequest> {
        self.wait_until(|state| {
            let matching: Vec<RecordedRequest> = state
                .requests
                .iter()
                .filter(|r| r.route == Some(route))
                .cloned()
                .collect();
            (matching.len() >= n).then_some(matching)
        })
        .await
    }

    /// Waits until exactly `n` streaming connections are open (0: all have closed).
    pub async fn wait_for_stream_count(&self, n: usize) {
        self.wait_until(|state| (state.streams == n).then_some(()))
            .await
    }

    /// Waits until `condition` holds on the server's state after some change.
    async fn wait_until<T>(&self, mut condition: impl FnMut(&ServerState) -> Option<T>) -> T {
        let mut changes = self.shared.changes.subscribe();
        loop {
            if let Some(value) = condition(&self.state()) {
                return value;
            }
            changes
                .changed()
                .await
                .expect("the fake server's state lives as long as it");
        }
    }

    /// A mention of the bot by `from_acct` (`alice` or `alice@example.org`): stores the
    /// status (with `html_content` as its `content`) and the notification, and pushes the
    /// notification to open streams. Returns the notification id.
    pub fn add_mention(
        &self,
        from_acct: &str,
        html_content: &str,
        visibility: Visibility,
        in_reply_to_id: Option<&str>,
        bot: bool,
    ) -> String {
        let notification = self.update(|state| {
            let account = remote_account(state, from_acct, bot);
            let status_id = state.new_id();
            let bot_account = bot_account_json(state);
            let status = json!({
                "id": status_id,
                "created_at": mastodon_time(state.options.now()),
                "in_reply_to_id": in_reply_to_id,
                "in_reply_to_account_id": in_reply_to_id.map(|_| state.options.account_id.clone()),
                "sensitive": false,
                "spoiler_text": "",
                "visibility": visibility.as_str(),
                "language": "en",
                "uri": format!("{}/users/{}/statuses/{status_id}", state.url, acct_user(from_acct)),
                "url": format!("{}/@{}/{status_id}", state.url, acct_user(from_acct)),
                "replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
                "edited_at": null, "favourited": false, "reblogged": false, "muted": false,
                "bookmarked": false, "pinned": false,
                "content": html_content,
                "filtered": [], "reblog": null, "application": null,
                "account": account,
                "media_attachments": [],
                "mentions": [{
                    "id": state.options.account_id,
                    "username": bot_account["username"],
                    "url": bot_account["url"],
                    "acct": state.options.account_acct,
                }],
                "tags": [], "emojis": [], "card": null, "poll": null,
            });
            state.remote_statuses.push(status.clone());
            let id = state.new_id();
            let notification = json!({
                "id": id,
                "type": "mention",
                "created_at": mastodon_time(state.options.now()),
                "group_key": format!("ungrouped-{id}"),
                "account": account,
                "status": status,
            });
            state.notifications.push((
                StoredNotification {
                    id,
                    kind: "mention".to_string(),
                    status_id: Some(status_id),
                    from_acct: from_acct.to_string(),
                },
                notification.clone(),
            ));
            notification
        });
        let id = notification["id"].as_str().unwrap_or_default().to_string();
        let _ = self.shared.stream_events.send(notification);
        id
    }

    /// A notification of another type (`follow`, `severed_relationships`,
    /// `moderation_warning`, ...) from `someone@example.org`. Returns its id.
    pub fn add_notification_of_type(&self, kind: &str) -> String {
        let notification = self.update(|state| {
            let account = remote_account(state, "someone@example.org", false);
            let id = state.new_id();
            let mut notification = json!({
                "id": id,
                "type": kind,
                "created_at": mastodon_time(Timestamp::now()),
                "group_key": format!("ungrouped-{id}"),
                "account": account,
            });
            if kind == "severed_relationships" {
                notification["event"] = json!({
                    "id": "1", "type": "domain_block", "purged": false,
                    "target_name": "example.org", "followers_count": 1,
                    "following_count": 0, "created_at": mastodon_time(Timestamp::now()),
                });
            } else if kind == "moderation_warning" {
                notification["moderation_warning"] = json!({
                    "id": "1", "action": "none", "text": "", "status_ids": [],
                    "appeal": null, "created_at": mastodon_time(Timestamp::now()),
                });
            }
            state.notifications.push((
                StoredNotification {
                    id,
                    kind: kind.to_string(),
                    status_id: None,
                    from_acct: "someone@example.org".to_string(),
                },
                notification.clone(),
            ));
            notification
        });
        let id = notification["id"].as_str().unwrap_or_default().to_string();
        let _ = self.shared.stream_events.send(notification);
        id
    }

    /// The id of the status a mention notification is about.
    pub fn status_of_notification(&self, notification_id: &str) -> Option<String> {
        let state = self.state();
        state
            .notifications
            .iter()
            .find(|(n, _)| n.id == notification_id)
            .and_then(|(n, _)| n.status_id.clone())
    }

    /// Closes every open streaming connection at once, without a close frame (as a server
    /// restart does).
    pub fn drop_streams(&self) {
        self.shared.stream_drops.send_modify(|n| *n += 1);
    }

    /// Makes every open streaming connection go silent: it stays open but sends nothing more,
    /// not even pings (a half-open connection, as after a NAT or proxy forgot it). Streams
    /// opened later behave normally.
    pub fn silence_streams(&self) {
        self.shared.stream_silences.send_modify(|n| *n += 1);
    }

    /// Revokes the token: from now on every request with it is refused with 401, as after
    /// the operator revoked the app's access.
    pub fn revoke_token(&self) {
        self.update(|state| state.options.token = format!("revoked-{}", state.options.token));
    }

    /// Makes `GET /api/v1/notifications` ignore `types[]` (and `exclude_types[]`), as some
    /// servers do: every type comes back.
    pub fn ignore_notification_types(&self) {
        self.update(|state| state.ignore_notification_types = true);
    }

    /// Makes `GET /api/v1/accounts/:id/statuses` ignore `since_id` and `min_id` (only
    /// `max_id` and `limit` are applied), as an old or odd server might.
    pub fn ignore_since_id(&self) {
        self.update(|state| state.ignore_since_id = true);
    }

    /// Stores `notification` as it is (any JSON, of type `kind` for the `types[]` filter) with
    /// a new `id`, and pushes it to open streams. For shapes `add_mention` does not make: an
    /// unknown visibility, a missing status, a type nobody knows yet. Returns the id.
    pub fn add_notification_json(&self, kind: &str, mut notification: Value) -> String {
        let notification = self.update(|state| {
            let id = state.new_id();
            notification["id"] = json!(id);
            state.notifications.push((
                StoredNotification {
                    id,
                    kind: kind.to_string(),
                    status_id: notification["status"]["id"].as_str().map(str::to_string),
                    from_acct: notification["account"]["acct"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                },
                notification.clone(),
            ));
            notification
        });
        let id = notification["id"].as_str().unwrap_or_default().to_string();
        let _ = self.shared.stream_events.send(notification);
        id
    }

    fn state(&self) -> MutexGuard<'_, ServerState> {
        self.shared.state()
    }

    fn update<T>(&self, change: impl FnOnce(&mut ServerState) -> T) -> T {
        self.shared.update(change)
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, ServerState> {
        // A test that panicked while holding the lock has failed already; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update<T>(&self, change: impl FnOnce(&mut ServerState) -> T) -> T {
        let value = change(&mut self.state());
        self.changes.send_modify(|n| *n += 1);
        value
    }
}

// ---------------------------------------------------------------------------------------
// Serving: our own accept loop (instead of `axum::serve`) so that a handler can make the
// connection close without any answer.

/// Marks a response that must not be sent: the connection is closed instead.
#[derive(Clone, Copy)]
struct CloseWithoutAnswer;

#[derive(Debug)]
struct ClosedOnPurpose;

impl std::fmt::Display for ClosedOnPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed on purpose by the fake server")
    }
}

impl std::error::Error for ClosedOnPurpose {}

async fn accept_loop(listener: tokio::net::TcpListener, router: Router) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let router = router.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let router = router.clone();
                    async move {
                        use tower::ServiceExt;
                        let response = match router.oneshot(request).await {
                            Ok(response) => response,
                            Err(infallible) => match infallible {},
                        };
                        if response.extensions().get::<CloseWithoutAnswer>().is_some() {
                            // hyper closes the connection when the service fails, writing nothing.
                            Err(ClosedOnPurpose)
                        } else {
                            Ok(response)
                        }
                    }
                });
            let io = hyper_util::rt::TokioIo::new(stream);
            // No timer is set, so hyper has no header-read timeout that paused time could fire.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
                .await;
        });
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/.well-known/nodeinfo", get(well_known_nodeinfo))
        .route("/nodeinfo/2.0", get(nodeinfo))
        .route("/api/v1/instance", get(instance_v1))
        .route("/api/v2/instance", get(instance_v2))
        // Rails takes a trailing slash too; Mastodon.py asks for `/api/v1/instance/`.
        .route("/api/v1/instance/", get(instance_v1))
        .route("/api/v2/instance/", get(instance_v2))
        .route(
            "/api/v1/accounts/verify_credentials",
            get(verify_credentials),
        )
        .route("/api/v1/statuses", post(post_status))
        .route("/api/v1/accounts/{id}/statuses", get(account_statuses))
        .route("/api/v2/media", post(upload_media_v2))
        .route("/api/v1/media", post(upload_media_v1))
        .route("/api/v1/media/{id}", get(get_media))
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/streaming", get(streaming))
        .route("/api/v1/streaming/user", get(streaming_sse))
        .route("/api/v1/streaming/user/notification", get(streaming_sse))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth_metadata),
        )
        .route("/api/v1/apps", post(register_app))
        .route("/oauth/token", post(oauth_token))
        .route(
            "/api/v1/accounts/update_credentials",
            axum::routing::patch(update_credentials),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "Record not found") })
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            around_every_request,
        ))
        .with_state(shared)
}

type AppState = State<Arc<Shared>>;

/// Records the request, applies an injected fault, checks the token, and adds the
/// rate-limit headers and a `Date` in whole seconds to the answer.
async fn around_every_request(State(shared): AppState, request: Request, next: Next) -> Response {
    let now = whole_seconds(Timestamp::now());
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let route = Route::of(&method, &path);
    let headers = request.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let recorded = RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        route,
        user_agent: header("user-agent"),
        idempotency_key: header("idempotency-key"),
        authorization_header: headers.contains_key(header::AUTHORIZATION),
    };
    let authorization = header("authorization").unwrap_or_default();
    let token_ok = check_token(&shared, route, headers, query.as_deref());
    let (fault, remaining, reset) = shared.update(|state| {
        state.requests.push(recorded);
        let fault = route.and_then(|route| {
            let index = state.faults.iter().position(|(r, _)| *r == route)?;
            state.faults.remove(index).map(|(_, fault)| fault)
        });
        if now.duration_since(state.rate_window_start) >= RATE_LIMIT_WINDOW {
            state.rate_window_start = now;
            state.rate_window_count = 0;
        }
        state.rate_window_count += 1;
        let remaining = RATE_LIMIT.saturating_sub(state.rate_window_count);
        let reset = state.rate_window_start + RATE_LIMIT_WINDOW;
        (fault, remaining, reset)
    });

    let mut response = match fault.clone() {
        Some(Injected::Fault(Fault::RateLimited {
            reset_after,
            retry_after_secs,
        })) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", RATE_LIMIT.into());
            headers.insert("x-ratelimit-remaining", 0.into());
            headers.insert("x-ratelimit-reset", iso8601(now + reset_after));
            if let Some(secs) = retry_after_secs {
                headers.insert(header::RETRY_AFTER, secs.into());
            }
            response
        }
        Some(Injected::Quirk(Quirk::RateLimitedLikeGoToSocial { reset_after })) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate limit reached");
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", RATE_LIMIT.into());
            headers.insert("x-ratelimit-remaining", 0.into());
            headers.insert("x-ratelimit-reset", gotosocial_time(now + reset_after));
            response
        }
        Some(Injected::Quirk(Quirk::EchoAuthorization { status })) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            if status.is_server_error() {
                let page = format!(
                    "<html><body><h1>{status}</h1><p>upstream failed for request with \
                     headers:</p><pre>Authorization: {authorization}</pre></body></html>"
                );
                (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
            } else {
                error(
                    status,
                    &format!("Validation failed: request header Authorization: {authorization}"),
                )
            }
        }
        Some(Injected::Quirk(Quirk::OutsideScopes)) => error(
            StatusCode::FORBIDDEN,
            "This action is outside the authorized scopes",
        ),
        Some(Injected::Quirk(Quirk::HugeBody { bytes })) => {
            const CHUNK: usize = 64 * 1024;
            let head = b"{\"id\":\"1\",\"note\":\"".to_vec();
            let filler = Bytes::from(vec![b'x'; CHUNK]);
            let chunks = std::iter::once(Bytes::from(head))
                .chain(std::iter::repeat_n(filler, bytes / CHUNK + 1))
                .map(Ok::<Bytes, std::io::Error>);
            let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        Some(Injected::Fault(Fault::InternalError)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "We're sorry, but something went wrong on our end.",
        ),
        Some(Injected::Fault(Fault::Unavailable503 { retry_after_secs })) => {
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "server capacity exceeded");
            if let Some(secs) = retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, secs.into());
            }
            response
        }
        Some(Injected::Fault(Fault::Status { status })) => {
            let code = StatusCode::from_u16(status).expect("a valid status code");
            let mut response = error(code, "refused by the fake server's fault");
            if code.is_redirection() {
                response.headers_mut().insert(
                    header::LOCATION,
                    header::HeaderValue::from_static("https://elsewhere.example/"),
                );
            }
            response
        }
        Some(Injected::Fault(Fault::Hang)) => std::future::pending().await,
        Some(Injected::Fault(Fault::HangAfterCommit)) => {
            if token_ok.is_ok() {
                let _ = next.run(request).await;
            }
            std::future::pending().await
        }
        Some(Injected::Fault(Fault::DropAfterCommit) | Injected::Quirk(Quirk::PassThrough))
        | None => match token_ok {
            Err(refused) => refused.into_response(),
            Ok(()) => {
                let mut response = next.run(request).await;
                if fault == Some(Injected::Fault(Fault::DropAfterCommit)) {
                    response.extensions_mut().insert(CloseWithoutAnswer);
                }
                response
            }
        },
    };
    let headers = response.headers_mut();
    headers
        .entry("x-ratelimit-limit")
        .or_insert(RATE_LIMIT.into());
    headers
        .entry("x-ratelimit-remaining")
        .or_insert(remaining.into());
    headers.entry("x-ratelimit-reset").or_insert(iso8601(reset));
    headers.insert(header::DATE, http_date(now));
    response
}

/// Mastodon's rule: the public documents need no token but refuse a wrong one; everything
/// else needs the right one. The streaming API also takes it from `access_token` or
/// `Sec-WebSocket-Protocol`.
fn check_token(
    shared: &Shared,
    route: Option<Route>,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), Refusal> {
    if matches!(route, Some(Route::NodeInfo | Route::OAuth)) {
        return Ok(());
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).to_string());
    let presented = if route == Some(Route::Streaming) {
        bearer
            .or_else(|| query_values(query, "access_token").into_iter().next())
            .or_else(|| {
                headers
                    .get(header::SEC_WEBSOCKET_PROTOCOL)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.split(',').next().unwrap_or_default().trim().to_string())
            })
    } else {
        bearer
    };
    let expected = shared.state().options.token.clone();
    match presented {
        Some(token) if token == expected => Ok(()),
        Some(_) => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "The access token is invalid",
        )),
        None if route == Some(Route::Instance) => Ok(()),
        None => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "This method requires an authenticated user",
        )),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// A refusal in Mastodon's shape (`{"error": "..."}`), small enough to pass around.
struct Refusal(StatusCode, String);

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal(status, message.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

// ---------------------------------------------------------------------------------------
// Handlers.

async fn well_known_nodeinfo(State(shared): AppState) -> Response {
    let url = shared.state().url.clone();
    Json(json!({"links": [{
        "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
        "href": format!("{url}/nodeinfo/2.0"),
    }]}))
    .into_response()
}

async fn nodeinfo(State(shared): AppState) -> Response {
    let (name, version) = match shared.state().options.flavour {
        Flavour::Mastodon => ("mastodon", "4.4.0"),
        Flavour::GoToSocial => ("gotosocial", "0.19.0"),
    };
    Json(json!({
        "version": "2.0",
        "software": {"name": name, "version": version},
        "protocols": ["activitypub"],
        "services": {"outbound": [], "inbound": []},
        "usage": {"users": {"total": 1, "activeMonth": 1, "activeHalfyear": 1}, "localPosts": 0},
        "openRegistrations": false,
        "metadata": {},
    }))
    .into_response()
}

fn characters_reserved_per_url(flavour: Flavour) -> usize {
    match flavour {
        Flavour::Mastodon => 23,
        // GoToSocial advertises 25 but never applies it.
        Flavour::GoToSocial => 25,
    }
}

async fn instance_v2(State(shared): AppState) -> Response {
    let state = shared.state();
    let flavour = state.options.flavour;
    Json(json!({
        "domain": "127.0.0.1",
        "title": "Fake server",
        "version": if flavour == Flavour::Mastodon { "4.4.0" } else { "3.5.3+0.19.0" },
        "source_url": "https://github.com/mastodon/mastodon",
        "description": "A fake server for tests",
        "usage": {"users": {"active_month": 1}},
        "thumbnail": {"url": format!("{}/thumbnail.png", state.url)},
        "languages": ["en"],
        "configuration": {
            // GoToSocial says `wss://` even when it speaks plain http.
            "urls": {"streaming": match flavour {
                Flavour::Mastodon => state.url.replace("http://", "ws://"),
                Flavour::GoToSocial => state.url.replace("http://", "wss://"),
            }},
            "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
            "statuses": {
                "max_characters": state.options.max_characters,
                "max_media_attachments": 4,
                "characters_reserved_per_url": characters_reserved_per_url(flavour),
            },
            "media_attachments": {
                "supported_mime_types": ["image/png", "image/jpeg", "image/gif", "image/webp"],
                "description_limit": 1500,
                "image_size_limit": 16_777_216,
                "image_matrix_limit": 33_177_600,
                "video_size_limit": 103_809_024,
                "video_frame_rate_limit": 120,
                "video_matrix_limit": 8_294_400,
            },
            "polls": {"max_options": 4, "max_characters_per_option": 50,
                      "min_expiration": 300, "max_expiration": 2_629_746},
            "translation": {"enabled": false},
        },
        "registrations": {"enabled": false, "approval_required": false, "message": null},
        "contact": {"email": "admin@example.org", "account": null},
        "rules": [],
    }))
    .into_response()
}

async fn instance_v1(State(shared): AppState) -> Response {
    let state = shared.state();
    let flavour = state.options.flavour;
    Json(json!({
        "uri": "127.0.0.1",
        "title": "Fake server",
        "short_description": "",
        "description": "A fake server for tests",
        "email": "admin@example.org",
        "version": "4.4.0",
        "urls": {"streaming_api": state.url.replace("http://", "ws://")},
        "stats": {"user_count": 1, "status_count": 0, "domain_count": 1},
        "thumbnail": null,
        "languages": ["en"],
        "registrations": false,
        "approval_required": false,
        "invites_enabled": false,
        "configuration": {
            "statuses": {
                "max_characters": state.options.max_characters,
                "max_media_attachments": 4,
                "characters_reserved_per_url": characters_reserved_per_url(flavour),
            },
            "media_attachments": {"supported_mime_types": ["image/png"], "image_size_limit": 16_777_216},
        },
        // Mastodon may send null here, which megalodon's v1 instance entity cannot read.
        "contact_account": null,
        "rules": [],
    }))
    .into_response()
}

async fn verify_credentials(State(shared): AppState) -> Response {
    let state = shared.state();
    let mut account = bot_account_json(&state);
    account["source"] = json!({
        "privacy": "public", "sensitive": false, "language": "en",
        "note": "", "fields": [], "follow_requests_count": 0,
    });
    account["role"] =
        json!({"id": "-99", "name": "", "permissions": "0", "color": "", "highlighted": false});
    Json(account).into_response()
}

/// The parameters of `POST /api/v1/statuses`, from a form or JSON.
#[derive(Default)]
struct StatusParams {
    status: Option<String>,
    spoiler_text: Option<String>,
    visibility: Option<String>,
    language: Option<String>,
    in_reply_to_id: Option<String>,
    media_ids: Vec<String>,
}

fn status_params(headers: &HeaderMap, body: &[u8]) -> Result<StatusParams, String> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut params = StatusParams::default();
    if json_body {
        let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let text = |key: &str| match &value[key] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        params.status = text("status");
        params.spoiler_text = text("spoiler_text");
        params.visibility = text("visibility");
        params.language = text("language");
        params.in_reply_to_id = text("in_reply_to_id");
        if let Some(ids) = value["media_ids"].as_array() {
            params.media_ids = ids
                .iter()
                .map(|id| match id {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
        }
    } else {
        for (key, value) in url::form_urlencoded::parse(body) {
            let value = value.into_owned();
            match key.as_ref() {
                "status" => params.status = Some(value),
                "spoiler_text" => params.spoiler_text = Some(value),
                "visibility" => params.visibility = Some(value),
                "language" => params.language = Some(value),
                "in_reply_to_id" => params.in_reply_to_id = Some(value),
                "media_ids[]" | "media_ids" => params.media_ids.push(value),
                _ => {}
            }
        }
    }
    Ok(params)
}

async fn post_status(State(shared): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let params = match status_params(&headers, &body) {
        Ok(params) => params,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("Bad Request: {e}")),
    };
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let result = shared.update(|state| -> Result<Value, Refusal> {
        let flavour = state.options.flavour;
        if let (Flavour::Mastodon, Some(key)) = (flavour, &idempotency_key) {
            if let Some((id, at)) = state.idempotency.get(key) {
                if at.elapsed() < IDEMPOTENCY_WINDOW {
                    let original = state.statuses.iter().find(|s| &s.id == id).cloned();
                    if let Some(original) = original {
                        return Ok(status_json(state, &original));
                    }
                }
            }
        }
        let text = params.status.clone().unwrap_or_default();
        let spoiler_text = params.spoiler_text.clone().unwrap_or_default();
        if text.trim().is_empty() && params.media_ids.is_empty() {
            return Err(validation_error(flavour, "Text can't be blank"));
        }
        let max = state.options.max_characters;
        let length = status_length(flavour, &text, &spoiler_text);
        if length > max {
            return Err(match flavour {
                Flavour::Mastodon => Refusal::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("Validation failed: Text character limit of {max} exceeded"),
                ),
                Flavour::GoToSocial => Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!("Bad Request: text with spoiler exceed max chars ({max})"),
                ),
            });
        }
        let visibility = params
            .visibility
            .clone()
            .unwrap_or_else(|| "public".to_string());
        if !matches!(
            visibility.as_str(),
            "public" | "unlisted" | "private" | "direct"
        ) {
            return Err(validation_error(
                flavour,
                "Visibility is not included in the list",
            ));
        }
        if let Some(reply_to) = &params.in_reply_to_id {
            let known = state.statuses.iter().any(|s| &s.id == reply_to)
                || state
                    .remote_statuses
                    .iter()
                    .any(|s| s["id"] == reply_to.as_str());
            if !known {
                return Err(Refusal::new(StatusCode::NOT_FOUND, "Record not found"));
            }
        }
        if params.media_ids.len() > 4 {
            return Err(validation_error(flavour, "Media attachments too many"));
        }
        for media_id in &params.media_ids {
            match state.media.iter().find(|m| &m.id == media_id) {
                // Stricter than Mastodon, which ignores an unknown id: it would be a bug.
                None => {
                    return Err(validation_error(
                        flavour,
                        &format!("unknown media id {media_id}"),
                    ))
                }
                Some(media) if media.polls_left > 0 => return Err(validation_error(
                    flavour,
                    "Cannot attach files that have not finished processing. Try again in a moment!",
                )),
                Some(_) => {}
            }
        }
        let id = state.new_id();
        let stored = StoredStatus {
            id: id.clone(),
            created_at: state.options.now(),
            content: text_to_html(&state.url, &text),
            text,
            spoiler_text,
            visibility,
            language: params.language.clone(),
            in_reply_to_id: params.in_reply_to_id.clone(),
            media_ids: params.media_ids.clone(),
            idempotency_key: idempotency_key.clone(),
        };
        if let Some(key) = &idempotency_key {
            state
                .idempotency
                .insert(key.clone(), (id, tokio::time::Instant::now()));
        }
        let json = status_json(state, &stored);
        state.statuses.push(stored);
        Ok(json)
    });
    match result {
        Ok(json) => Json(json).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

fn validation_error(flavour: Flavour, message: &str) -> Refusal {
    match flavour {
        Flavour::Mastodon => Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Validation failed: {message}"),
        ),
        Flavour::GoToSocial => {
            Refusal::new(StatusCode::BAD_REQUEST, format!("Bad Request: {message}"))
        }
    }
}

async fn account_statuses(
    State(shared): AppState,
    Path(account_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let state = shared.state();
    if account_id != state.options.account_id {
        return error(StatusCode::NOT_FOUND, "Record not found");
    }
    let query = query.as_deref();
    let limit = query_values(query, "limit")
        .first()
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 40);
    let ids: Vec<&StoredStatus> = state.statuses.iter().collect();
    let paging_query;
    let query = if state.ignore_since_id {
        paging_query = query.map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k != "since_id" && k != "min_id")
                .fold(
                    url::form_urlencoded::Serializer::new(String::new()),
                    |mut out, (k, v)| {
                        out.append_pair(&k, &v);
                        out
                    },
                )
                .finish()
        });
        paging_query.as_deref()
    } else {
        query
    };
    let page = page_of(&ids, |s| s.id.as_str(), query, limit);
    let json: Vec<Value> = page.iter().map(|s| status_json(&state, s)).collect();
    Json(json).into_response()
}

/// Mastodon's paging: `max_id` (older than), `since_id` (newer than, newest first),
/// `min_id` (newer than, the oldest ones first); the page is always newest first.
fn page_of<'a, T>(
    items: &[&'a T],
    id: impl Fn(&T) -> &str,
    query: Option<&str>,
    limit: usize,
) -> Vec<&'a T> {
    let first = |key: &str| query_values(query, key).into_iter().next();
    let max_id = first("max_id");
    let since_id = first("since_id");
    let min_id = first("min_id");
    let mut selected: Vec<&T> = items
        .iter()
        .copied()
        .filter(|item| {
            let key = id_key(id(item));
            max_id.as_deref().is_none_or(|m| key < id_key(m))
                && since_id.as_deref().is_none_or(|s| key > id_key(s))
                && min_id.as_deref().is_none_or(|m| key > id_key(m))
        })
        .collect();
    selected.sort_by(|a, b| id_key(id(a)).cmp(&id_key(id(b))));
    if min_id.is_some() {
        selected.truncate(limit); // the oldest `limit` after min_id
    } else {
        let skip = selected.len().saturating_sub(limit);
        selected.drain(..skip); // the newest `limit`
    }
    selected.reverse();
    selected
}

async fn upload_media_v2(State(shared): AppState, request: Request) -> Response {
    upload_media(shared, request, true).await
}

async fn upload_media_v1(State(shared): AppState, request: Request) -> Response {
    upload_media(shared, request, false).await
}

async fn upload_media(shared: Arc<Shared>, request: Request, v2: bool) -> Response {
    let mut multipart = match Multipart::from_request(request, &()).await {
        Ok(multipart) => multipart,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, &rejection.body_text()),
    };
    let mut description = String::new();
    let mut file = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => match field.name() {
                Some("file") => {
                    let file_name = field.file_name().map(str::to_string);
                    let content_type = field.content_type().map(str::to_string);
                    match field.bytes().await {
                        Ok(bytes) => file = Some((file_name, content_type, bytes.len())),
                        Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
                    }
                }
                Some("description") => match field.text().await {
                    Ok(text) => description = text,
                    Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
                },
                _ => {}
            },
            Ok(None) => break,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
        }
    }
    let Some((file_name, content_type, size)) = file else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation failed: File can't be blank",
        );
    };
    let (status, json) = shared.update(|state| {
        let polls_left = if v2 {
            state.options.media_processing_polls
        } else {
            0
        };
        let media = StoredMedia {
            id: state.new_id(),
            description,
            file_name,
            content_type,
            size,
            polls_left,
        };
        let json = media_json(state, &media);
        state.media.push(media);
        let status = if polls_left > 0 {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        (status, json)
    });
    (status, Json(json)).into_response()
}

async fn get_media(State(shared): AppState, Path(id): Path<String>) -> Response {
    let found = shared.update(|state| {
        let index = state.media.iter().position(|m| m.id == id)?;
        let processing = state.media[index].polls_left > 0;
        if processing {
            state.media[index].polls_left -= 1;
        }
        Some((processing, media_json(state, &state.media[index])))
    });
    match found {
        None => error(StatusCode::NOT_FOUND, "Record not found"),
        Some((true, json)) => (StatusCode::PARTIAL_CONTENT, Json(json)).into_response(),
        Some((false, json)) => Json(json).into_response(),
    }
}

async fn notifications(State(shared): AppState, RawQuery(query): RawQuery) -> Response {
    let state = shared.state();
    let query = query.as_deref();
    let types = [query_values(query, "types[]"), query_values(query, "types")].concat();
    let exclude = [
        query_values(query, "exclude_types[]"),
        query_values(query, "exclude_types"),
    ]
    .concat();
    let limit = query_values(query, "limit")
        .first()
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(40)
        .clamp(1, 80);
    let matching: Vec<&(StoredNotification, Value)> = state
        .notifications
        .iter()
        .filter(|(n, _)| {
            state.ignore_notification_types
                || ((types.is_empty() || types.contains(&n.kind)) && !exclude.contains(&n.kind))
        })
        .collect();
    let page = page_of(&matching, |(n, _)| n.id.as_str(), query, limit);
    let json: Vec<Value> = page.iter().map(|(_, v)| v.clone()).collect();
    let mut response = Json(json).into_response();
    if let (Some(newest), Some(oldest)) = (page.first(), page.last()) {
        let filters: String = types
            .iter()
            .map(|t| format!("&types[]={t}"))
            .chain(exclude.iter().map(|t| format!("&exclude_types[]={t}")))
            .collect();
        let base = format!("{}/api/v1/notifications", state.url);
        let link = format!(
            "<{base}?limit={limit}&max_id={}{filters}>; rel=\"next\", <{base}?limit={limit}&min_id={}{filters}>; rel=\"prev\"",
            oldest.0.id, newest.0.id
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

async fn streaming(
    State(shared): AppState,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    let stream = query_values(query.as_deref(), "stream")
        .into_iter()
        .next()
        .unwrap_or_default();
    if !matches!(stream.as_str(), "user" | "user:notification") {
        return error(StatusCode::BAD_REQUEST, "Unknown stream type");
    }
    let token = shared.state().options.token.clone();
    // Echo the token back when it came as the subprotocol, as Mastodon does.
    let upgrade = upgrade.protocols([token]);
    let events = shared.stream_events.subscribe();
    let drops = shared.stream_drops.subscribe();
    let silences = shared.stream_silences.subscribe();
    upgrade.on_upgrade(move |socket| {
        stream_notifications(shared, socket, stream, events, drops, silences)
    })
}

async fn stream_notifications(
    shared: Arc<Shared>,
    mut socket: WebSocket,
    stream: String,
    mut events: broadcast::Receiver<Value>,
    mut drops: watch::Receiver<u64>,
    mut silences: watch::Receiver<u64>,
) {
    shared.update(|state| state.streams += 1);
    let mut ping = tokio::time::interval(Duration::from_secs(30));
    ping.tick().await;
    // Once silent, the connection stays open (the client's frames are still read, so its
    // close is seen) but nothing is sent any more.
    let mut silent = false;
    loop {
        tokio::select! {
            _ = silences.changed(), if !silent => silent = true,
            event = events.recv(), if !silent => match event {
                Ok(notification) => {
                    let frame = json!({
                        "event": "notification",
                        "payload": notification.to_string(),
                        "stream": [stream],
                    });
                    if socket.send(Message::Text(frame.to_string().into())).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = drops.changed() => break, // dropped without a close frame
            message = socket.recv() => match message {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick(), if !silent => {
                if socket.send(Message::Ping(Bytes::new())).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(socket);
    shared.update(|state| state.streams -= 1);
}

/// The same notifications as server-sent events (Mastodon's HTTP streaming, which
/// Mastodon.py's `stream_user` reads): `:)` on connect, then one `event: notification` and
/// `data: {json}` block each, and a `:thump` heartbeat every 15 s. Counted in
/// `stream_count` while open; `drop_streams` cuts the body short (no last chunk),
/// `silence_streams` makes it send nothing more.
async fn streaming_sse(State(shared): AppState) -> Response {
    /// One open SSE connection; counted until the body is dropped.
    struct Sse {
        shared: Arc<Shared>,
        events: broadcast::Receiver<Value>,
        drops: watch::Receiver<u64>,
        silences: watch::Receiver<u64>,
        heartbeat: tokio::time::Interval,
        greeted: bool,
        silent: bool,
    }
    impl Drop for Sse {
        fn drop(&mut self) {
            self.shared.update(|state| state.streams -= 1);
        }
    }
    let mut heartbeat = tokio::time::interval(Duration::from_secs(15));
    heartbeat.reset();
    let sse = Sse {
        events: shared.stream_events.subscribe(),
        drops: shared.stream_drops.subscribe(),
        silences: shared.stream_silences.subscribe(),
        shared: shared.clone(),
        heartbeat,
        greeted: false,
        silent: false,
    };
    shared.update(|state| state.streams += 1);
    let body = futures_util::stream::unfold(Some(sse), |sse| async move {
        let mut sse = sse?;
        if !sse.greeted {
            sse.greeted = true;
            return Some((Ok(Bytes::from_static(b":)\n")), Some(sse)));
        }
        loop {
            tokio::select! {
                _ = sse.silences.changed(), if !sse.silent => sse.silent = true,
                event = sse.events.recv(), if !sse.silent => match event {
                    Ok(notification) => {
                        let block = format!("event: notification\ndata: {notification}\n\n");
                        return Some((Ok(Bytes::from(block)), Some(sse)));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                // An error ends the body without its last chunk: the client sees a cut.
                _ = sse.drops.changed() => {
                    return Some((Err(std::io::Error::other("stream dropped")), None));
                }
                _ = sse.heartbeat.tick(), if !sse.silent => {
                    return Some((Ok(Bytes::from_static(b":thump\n")), Some(sse)));
                }
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// OAuth, for `perennial login`: app registration, the authorization-code grant, and
// `update_credentials` (the bot flag), each recorded so tests can assert what was asked.

/// The scopes Mastodon 4.3+ knows (`config/initializers/doorkeeper.rb`); an app asking for
/// another is refused with 422, as Mastodon does.
const MASTODON_SCOPES: &[&str] = &[
    "read",
    "write",
    "follow",
    "push",
    "profile",
    "read:accounts",
    "read:blocks",
    "read:bookmarks",
    "read:favourites",
    "read:filters",
    "read:follows",
    "read:lists",
    "read:mutes",
    "read:notifications",
    "read:search",
    "read:statuses",
    "write:accounts",
    "write:blocks",
    "write:bookmarks",
    "write:conversations",
    "write:favourites",
    "write:filters",
    "write:follows",
    "write:lists",
    "write:media",
    "write:mutes",
    "write:notifications",
    "write:reports",
    "write:statuses",
];

/// An app registered with `POST /api/v1/apps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredApp {
    pub client_name: String,
    pub redirect_uris: String,
    /// The requested scopes, in the order sent.
    pub scopes: Vec<String>,
    pub website: Option<String>,
    pub client_id: String,
    pub client_secret: String,
}

/// A `POST /oauth/token` as received (the client secret left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    /// Whether a token was given.
    pub granted: bool,
}

/// A `PATCH /api/v1/accounts/update_credentials` as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsUpdate {
    pub content_type: Option<String>,
    /// The body, parsed: JSON as is, a form as an object of strings.
    pub body: Value,
}

#[derive(Default)]
struct OAuthState {
    apps: Vec<RegisteredApp>,
    token_requests: Vec<TokenRequest>,
    credentials_updates: Vec<CredentialsUpdate>,
}

impl FakeServer {
    /// Every app registered, oldest first.
    pub fn registered_apps(&self) -> Vec<RegisteredApp> {
        self.state().oauth.apps.clone()
    }

    /// Every `POST /oauth/token`, oldest first.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state().oauth.token_requests.clone()
    }

    /// Every `PATCH /api/v1/accounts/update_credentials`, oldest first.
    pub fn credentials_updates(&self) -> Vec<CredentialsUpdate> {
        self.state().oauth.credentials_updates.clone()
    }
}

/// A request body as a JSON object: JSON as is, a form (`a=1&b=2`) as strings.
fn body_as_json(headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json_body {
        return serde_json::from_slice(body).map_err(|e| e.to_string());
    }
    let form: serde_json::Map<String, Value> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    Ok(Value::Object(form))
}

/// RFC 8414 metadata: Mastodon (4.3+) lists its scopes, `profile` among them; the GoToSocial
/// flavour has no such document.
async fn oauth_metadata(State(shared): AppState) -> Response {
    let state = shared.state();
    if state.options.flavour != Flavour::Mastodon {
        return error(StatusCode::NOT_FOUND, "page not found");
    }
    Json(json!({
        "issuer": format!("{}/", state.url),
        "authorization_endpoint": format!("{}/oauth/authorize", state.url),
        "token_endpoint": format!("{}/oauth/token", state.url),
        "app_registration_endpoint": format!("{}/api/v1/apps", state.url),
        "scopes_supported": MASTODON_SCOPES,
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
    }))
    .into_response()
}

async fn register_app(State(shared): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let params = match body_as_json(&headers, &body) {
        Ok(params) => params,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("Bad Request: {e}")),
    };
    let text = |key: &str| params[key].as_str().map(str::to_string);
    let (Some(client_name), Some(redirect_uris)) = (text("client_name"), text("redirect_uris"))
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation failed: Name can't be blank, Redirect URI can't be blank",
        );
    };
    let scopes: Vec<String> = text("scopes")
        .unwrap_or_else(|| "read".to_string())
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let result = shared.update(|state| {
        let known = |scope: &str| {
            MASTODON_SCOPES.contains(&scope)
                && (scope != "profile" || state.options.flavour == Flavour::Mastodon)
        };
        if let Some(unknown) = scopes.iter().find(|s| !known(s)) {
            return Err(validation_error(
                state.options.flavour,
                &format!("Scopes {unknown} is not a known scope"),
            ));
        }
        let id = state.new_id();
        let app = RegisteredApp {
            client_name,
            redirect_uris,
            scopes,
            website: text("website"),
            client_id: format!("client-id-{id}"),
            client_secret: format!("client-secret-{id}"),
        };
        let json = json!({
            "id": id,
            "name": app.client_name,
            "website": app.website,
            "scopes": app.scopes,
            "redirect_uri": app.redirect_uris,
            "redirect_uris": [app.redirect_uris],
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "client_secret_expires_at": 0,
        });
        state.oauth.apps.push(app);
        Ok(json)
    });
    match result {
        Ok(json) => Json(json).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// The authorization-code grant as Doorkeeper answers it: the right code from a registered
/// app with its redirect URI gives the server's token; a wrong code 400 `invalid_grant`; an
/// unknown client 401 `invalid_client`.
async fn oauth_token(State(shared): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let params = match body_as_json(&headers, &body) {
        Ok(params) => params,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("Bad Request: {e}")),
    };
    let text = |key: &str| params[key].as_str().map(str::to_string);
    let oauth_error = |status: StatusCode, error: &str, description: &str| {
        (
            status,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    shared.update(|state| {
        let mut request = TokenRequest {
            grant_type: text("grant_type"),
            code: text("code"),
            client_id: text("client_id"),
            redirect_uri: text("redirect_uri"),
            scope: text("scope"),
            granted: false,
        };
        let app = state.oauth.apps.iter().find(|app| {
            Some(&app.client_id) == request.client_id.as_ref()
                && Some(&app.client_secret) == text("client_secret").as_ref()
        });
        let response = match app {
            _ if request.grant_type.as_deref() != Some("authorization_code") => oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            ),
            None => oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed due to unknown client, no client authentication \
                 included, or unsupported authentication method.",
            ),
            Some(app)
                if request.code.as_deref() != Some(TEST_AUTHORIZATION_CODE)
                    || request.redirect_uri.as_ref() != Some(&app.redirect_uris) =>
            {
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "The provided authorization grant is invalid, expired, revoked, does not \
                     match the redirection URI used in the authorization request, or was issued \
                     to another client.",
                )
            }
            Some(app) => {
                request.granted = true;
                Json(json!({
                    "access_token": state.options.token,
                    "token_type": "Bearer",
                    "scope": app.scopes.join(" "),
                    "created_at": Timestamp::now().as_second(),
                }))
                .into_response()
            }
        };
        state.oauth.token_requests.push(request);
        response
    })
}

/// Records the change; `bot` sets the account's bot flag. The GoToSocial flavour, like
/// GoToSocial, refuses `bot` as a string ("true" from a form) with 400.
async fn update_credentials(State(shared): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let params = match body_as_json(&headers, &body) {
        Ok(params) => params,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("Bad Request: {e}")),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    shared.update(|state| {
        state.oauth.credentials_updates.push(CredentialsUpdate {
            content_type,
            body: params.clone(),
        });
        let bot = match (&params["bot"], state.options.flavour) {
            (Value::Null, _) => None,
            (Value::Bool(bot), _) => Some(*bot),
            (Value::String(bot), Flavour::Mastodon) => Some(bot == "true" || bot == "1"),
            (_, _) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: json: cannot unmarshal string into Go struct field \
                     UpdateCredentialsRequest.bot of type bool",
                )
            }
        };
        if let Some(bot) = bot {
            state.options.account_bot = bot;
        }
        Json(bot_account_json(state)).into_response()
    })
}

// ---------------------------------------------------------------------------------------
// Counting, independently of perennial's counter: a plain reading of the servers' rules.

/// The length the server charges for a status.
pub fn status_length(flavour: Flavour, text: &str, spoiler_text: &str) -> usize {
    match flavour {
        // `[spoiler_text, countable_text(text)].join`, in grapheme clusters.
        Flavour::Mastodon => format!("{spoiler_text}{}", mastodon_countable_text(text))
            .graphemes(true)
            .count(),
        // `len([]rune(status)) + len([]rune(spoiler))`.
        Flavour::GoToSocial => text.chars().count() + spoiler_text.chars().count(),
    }
}

/// Every http(s) URL at the start or after whitespace becomes 23 `x`, every
/// `@user@domain` becomes `@user`. URLs end at whitespace, less trailing punctuation.
fn mastodon_countable_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let word_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if word_len == 0 {
            let space = rest.chars().next().expect("not empty");
            out.push(space);
            rest = &rest[space.len_utf8()..];
            continue;
        }
        let word = &rest[..word_len];
        rest = &rest[word_len..];
        let lower = word.to_ascii_lowercase();
        if (lower.starts_with("https://") || lower.starts_with("http://"))
            && word.len() > "https://".len()
        {
            let url = word.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '"', '\'']);
            out.push_str(&"x".repeat(23));
            out.push_str(&word[url.len()..]);
        } else if let Some(mention) = word.strip_prefix('@') {
            let user_len = mention
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(mention.len());
            let after = &mention[user_len..];
            let domain_len = after
                .strip_prefix('@')
                .map(|d| {
                    d.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
                        .unwrap_or(d.len())
                })
                .unwrap_or(0);
            if user_len > 0 && domain_len > 0 {
                out.push('@');
                out.push_str(&mention[..user_len]);
                out.push_str(&after[1 + domain_len..]);
            } else {
                out.push_str(word);
            }
        } else {
            out.push_str(word);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// JSON shapes (Mastodon's, full enough for megalodon's strict entities).

fn bot_account_json(state: &ServerState) -> Value {
    let username = acct_user(&state.options.account_acct);
    json!({
        "id": state.options.account_id,
        "username": username,
        "acct": state.options.account_acct,
        "display_name": "perennial",
        "locked": false,
        "bot": state.options.account_bot,
        "discoverable": true,
        "group": false,
        "created_at": "2026-01-01T00:00:00.000Z",
        "note": "<p>A bot</p>",
        "url": format!("{}/@{username}", state.url),
        "uri": format!("{}/users/{username}", state.url),
        "avatar": format!("{}/avatars/original/missing.png", state.url),
        "avatar_static": format!("{}/avatars/original/missing.png", state.url),
        "header": format!("{}/headers/original/missing.png", state.url),
        "header_static": format!("{}/headers/original/missing.png", state.url),
        "followers_count": 0,
        "following_count": 0,
        "statuses_count": state.statuses.len(),
        "last_status_at": null,
        "emojis": [],
        "fields": [],
    })
}

/// A remote (or local) account that mentions the bot.
fn remote_account(state: &mut ServerState, acct: &str, bot: bool) -> Value {
    let username = acct_user(acct);
    let domain = acct.split_once('@').map_or("127.0.0.1", |(_, d)| d);
    json!({
        "id": state.new_id(),
        "username": username,
        "acct": acct,
        "display_name": username,
        "locked": false,
        "bot": bot,
        "discoverable": true,
        "group": false,
        "created_at": "2025-01-01T00:00:00.000Z",
        "note": "",
        "url": format!("https://{domain}/@{username}"),
        "uri": format!("https://{domain}/users/{username}"),
        "avatar": "", "avatar_static": "", "header": "", "header_static": "",
        "followers_count": 0, "following_count": 0, "statuses_count": 1,
        "emojis": [], "fields": [],
    })
}

fn acct_user(acct: &str) -> &str {
    acct.split('@').next().unwrap_or(acct)
}

fn status_json(state: &ServerState, status: &StoredStatus) -> Value {
    let account = bot_account_json(state);
    let media: Vec<Value> = status
        .media_ids
        .iter()
        .filter_map(|id| state.media.iter().find(|m| &m.id == id))
        .map(|m| media_json(state, m))
        .collect();
    json!({
        "id": status.id,
        "created_at": mastodon_time(status.created_at),
        "in_reply_to_id": status.in_reply_to_id,
        "in_reply_to_account_id": null,
        "sensitive": !status.spoiler_text.is_empty(),
        "spoiler_text": status.spoiler_text,
        "visibility": status.visibility,
        "language": status.language,
        "uri": format!("{}/users/{}/statuses/{}", state.url, account["username"].as_str().unwrap_or_default(), status.id),
        "url": format!("{}/@{}/{}", state.url, account["username"].as_str().unwrap_or_default(), status.id),
        "replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
        "edited_at": null, "favourited": false, "reblogged": false, "muted": false,
        "bookmarked": false, "pinned": false,
        "content": status.content,
        "filtered": [],
        "reblog": null,
        "application": {"name": "perennial", "website": null},
        "account": account,
        "media_attachments": media,
        "mentions": [],
        "tags": [],
        "emojis": [],
        "card": null,
        "poll": null,
    })
}

fn media_json(state: &ServerState, media: &StoredMedia) -> Value {
    let kind = match media
        .content_type
        .as_deref()
        .and_then(|t| t.split('/').next())
    {
        Some("image") => "image",
        Some("video") => "video",
        Some("audio") => "audio",
        _ => "unknown",
    };
    let url = format!("{}/system/media/{}", state.url, media.id);
    json!({
        "id": media.id,
        "type": kind,
        "url": if media.polls_left > 0 { Value::Null } else { Value::String(url.clone()) },
        "preview_url": format!("{url}/small"),
        "remote_url": null,
        "text_url": null,
        "meta": {"focus": {"x": 0.0, "y": 0.0}},
        "description": media.description,
        "blurhash": null,
    })
}

/// Mastodon's `TextFormatter`, simplified: paragraphs on blank lines, `<br />` for a newline,
/// links with `invisible`/`ellipsis` spans, mentions as h-cards (`@user`, domain hidden),
/// hashtags as tag links; everything else escaped.
pub fn text_to_html(base_url: &str, text: &str) -> String {
    let text = text.trim().replace("\r\n", "\n");
    let mut paragraphs = Vec::new();
    for paragraph in text.split("\n\n") {
        let paragraph = paragraph.trim_matches('\n');
        if paragraph.is_empty() {
            continue;
        }
        let lines: Vec<String> = paragraph
            .split('\n')
            .map(|line| linkify(base_url, line))
            .collect();
        paragraphs.push(format!("<p>{}</p>", lines.join("<br />")));
    }
    paragraphs.concat()
}

fn linkify(base_url: &str, line: &str) -> String {
    let mut out = String::new();
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let lower = word.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            let url = word.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '"', '\'']);
            let (scheme, rest) = url.split_at(url.find("://").map_or(0, |i| i + 3));
            let (shown, hidden) =
                rest.split_at(rest.char_indices().nth(30).map_or(rest.len(), |(i, _)| i));
            out.push_str(&format!(
                "<a href=\"{}\" target=\"_blank\" rel=\"nofollow noopener\" translate=\"no\">\
                 <span class=\"invisible\">{}</span><span class=\"{}\">{}</span>\
                 <span class=\"invisible\">{}</span></a>{}",
                escape(url),
                escape(scheme),
                if hidden.is_empty() { "" } else { "ellipsis" },
                escape(shown),
                escape(hidden),
                escape(&word[url.len()..]),
            ));
        } else if let Some(tag) = word
            .strip_prefix('#')
            .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            out.push_str(&format!(
                "<a href=\"{base_url}/tags/{}\" class=\"mention hashtag\" rel=\"tag\">#<span>{}</span></a>",
                escape(&tag.to_lowercase()),
                escape(tag)
            ));
        } else if let Some(mention) = word.strip_prefix('@') {
            let end = mention
                .find(|c: char| {
                    !(c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '.' || c == '-')
                })
                .unwrap_or(mention.len());
            let acct = mention[..end].trim_end_matches(['.', '-']);
            let user = acct_user(acct);
            if user.is_empty() {
                out.push_str(&escape(word));
            } else {
                let domain = acct.split_once('@').map(|(_, d)| d.to_string());
                let href = match domain {
                    Some(domain) => format!("https://{domain}/@{user}"),
                    None => format!("{base_url}/@{user}"),
                };
                out.push_str(&format!(
                    "<span class=\"h-card\" translate=\"no\"><a href=\"{}\" class=\"u-url mention\">@<span>{}</span></a></span>{}",
                    escape(&href),
                    escape(user),
                    escape(&mention[acct.len()..])
                ));
            }
        } else {
            out.push_str(&escape(word));
        }
    }
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Small helpers.

/// Every value of `key` in a query string (repeated keys such as `types[]` included).
fn query_values(query: Option<&str>, key: &str) -> Vec<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).expect("a whole second of a valid time is valid")
}

/// `2026-03-01T12:00:00.000Z`, as Mastodon writes `created_at`.
fn mastodon_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `2026-03-01T12:05:00.000000Z`, as Mastodon writes `X-RateLimit-Reset`.
fn iso8601(t: Timestamp) -> HeaderValue {
    HeaderValue::from_str(&t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .expect("an ISO 8601 time is a valid header value")
}

/// `2026-12-04T21:31:15.000Z`: GoToSocial 0.19.2's `X-Ratelimit-Reset`, whole seconds.
fn gotosocial_time(t: Timestamp) -> HeaderValue {
    HeaderValue::from_str(
        &whole_seconds(t)
            .strftime("%Y-%m-%dT%H:%M:%S.000Z")
            .to_string(),
    )
    .expect("an ISO 8601 time is a valid header value")
}

fn http_date(t: Timestamp) -> HeaderValue {
    let text = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&t)
        .expect("a current time prints as an HTTP date");
    HeaderValue::from_str(&text).expect("an HTTP date is a valid header value")
}

// ---------------------------------------------------------------------------------------
// For the crash soak (`crash_soak.rs`): faults left over when the client was killed, and a
// wait for any change at all.

impl FakeServer {
    /// Removes every queued fault and returns them (the ones no request consumed).
    pub fn clear_faults(&self) -> Vec<(Route, Fault)> {
        self.update(|state| {
            state
                .faults
                .drain(..)
                .filter_map(|(route, injected)| match injected {
                    Injected::Fault(fault) => Some((route, fault)),
                    Injected::Quirk(_) => None,
                })
                .collect()
        })
    }

    /// A counter bumped by every change of the server's state (a request, a status, a
    /// notification, a stream opening or closing...).
    pub fn change_count(&self) -> u64 {
        *self.shared.changes.borrow()
    }

    /// Waits until the state changed after `seen` (a [`FakeServer::change_count`]); returns
    /// the new count.
    pub async fn wait_for_change(&self, seen: u64) -> u64 {
        let mut changes = self.shared.changes.subscribe();
        loop {
            let now = *changes.borrow_and_update();
            if now != seen {
                return now;
            }
            changes
                .changed()
                .await
                .expect("the fake server's state lives as long as it");
        }
    }
}

#[cfg(test)]
mod tests {
    // The fake's own rules, checked against the examples in Mastodon's validator spec.
    use super::*;

    /// The server-sent events stream: token required, `:)` first, then each mention as
    /// `event: notification` with the notification's JSON on one `data:` line.
    #[tokio::test]
    async fn sse_stream_sends_mentions() {
        let server = FakeServer::start(FakeOptions::mastodon());
        let url = format!("{}/api/v1/streaming/user", server.url());
        let client = reqwest::Client::new();
        let refused = client.get(&url).send().await.unwrap();
        assert_eq!(refused.status(), 401);
        let mut response = client
            .get(&url)
            .bearer_auth(server.token())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(server.stream_count(), 1);
        let id = server.add_mention(
            "alice@example.org",
            "<p>hi</p>",
            Visibility::Public,
            None,
            false,
        );
        let mut text = String::new();
        while !text.ends_with("\n\n") {
            let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .expect("the stream stays open");
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        let data = text
            .strip_prefix(":)\nevent: notification\ndata: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("not an SSE notification: {text:?}"));
        let notification: Value = serde_json::from_str(data).unwrap();
        assert_eq!(notification["id"], id.as_str());
        assert_eq!(notification["type"], "mention");
        drop(response);
        tokio::time::timeout(Duration::from_secs(10), server.wait_for_stream_count(0))
            .await
            .expect("a closed SSE connection is no longer counted");
    }

    #[test]
    fn mastodon_counting() {
        let m = |t: &str| status_length(Flavour::Mastodon, t, "");
        assert_eq!(m("hello"), 5);
        assert_eq!(
            m("see https://example.org/a/very/long/path/indeed ok"),
            4 + 23 + 3
        );
        assert_eq!(m("foohttps://example.org"), "foohttps://example.org".len());
        assert_eq!(m("hi @alice@example.social!"), "hi @alice!".len());
        assert_eq!(m("\u{1F469}\u{200D}\u{1F4BB}"), 1);
        assert_eq!(status_length(Flavour::Mastodon, "abc", "cw"), 5);
        assert_eq!(
            status_length(Flavour::GoToSocial, "see https://example.org", "cw"),
            25
        );
    }
}

//! The GoToSocial target of `benches/compare.rs` (only that bench uses this file): a real
//! GoToSocial on loopback, as `.ci/gotosocial start DIR` starts it for the real-server suite
//! (`PERENNIAL_GTS_URL`, `PERENNIAL_GTS_DIR`; the folder holds `bot.token`, `alice.token`,
//! `bot.id` and the server's log `gts.log`). `alice` mentions `bot` through the real API and
//! the bench learns of each reply from alice's own notification stream.
//!
//! What is here:
//!
//! * [`Gts`]: the server, alice's mentions, the bot's stored replies;
//! * [`Watcher`]: alice's streaming websocket, stamping each reply from the bot as it arrives;
//! * [`Floor`]: the server's floor, an in-process replier with no bot logic: for each mention
//!   on the bot's websocket it posts the reply, one at a time;
//! * [`SseAdapter`]: GoToSocial serves streaming only as a websocket (`GET /api/v1/streaming`,
//!   `internal/api/client/streaming/streaming.go`), while ananas reads Mastodon's server-sent
//!   events (`GET /api/v1/streaming/user`, a 404 on GoToSocial): this relays the one as the
//!   other, for ananas's stream only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// GoToSocial answers a request without a user agent with 418.
pub const USER_AGENT: &str = "perennial-bench-compare";
/// What alice writes: the fake target's mention, addressed to the bot.
pub const MENTION_TEXT: &str = "@bot how do I package my Python code?";
/// The fake target's mentions are public; so are alice's.
pub const MENTION_VISIBILITY: &str = "public";
/// The bundled config's packaging guide, which every replier links.
pub const GUIDE_TITLE: &str = "pyOpenSci Python Package Guide";
pub const GUIDE_URL: &str = "https://www.pyopensci.org/python-package-guide/";
/// How many of alice's burst mentions are in flight at once. GoToSocial's throttle lets 8
/// requests per CPU run and queues 8 times that; over the queue it answers 429 and asks for a
/// 30 s wait (`advanced-throttling-multiplier` 8 and `advanced-throttling-retry-after` 30s by
/// default, `internal/middleware/throttling.go`). 8 at a time stays within it on any machine
/// and keeps the server busy; more would only queue inside the server.
pub const BURST_IN_FLIGHT: usize = 8;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// When something was seen: the monotonic clock for the figures, the wall clock to match
/// against the server's log.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub at: Instant,
    pub wall: jiff::Timestamp,
}

impl Stamp {
    pub fn now() -> Stamp {
        Stamp {
            at: Instant::now(),
            wall: jiff::Timestamp::now(),
        }
    }
}

/// One mention alice posted.
#[derive(Debug, Clone)]
pub struct Mention {
    pub id: String,
    /// Just before the request went out: the mention's clock starts here.
    pub sent: Stamp,
    /// When the server's answer (the stored status) came back.
    pub stored: Instant,
    /// Answers 429 or 503 waited out before the server took it.
    pub retries: usize,
}

#[derive(Clone)]
pub struct Gts {
    pub url: String,
    pub dir: PathBuf,
    pub http: reqwest::Client,
    pub bot_token: String,
    pub alice_token: String,
    pub bot_id: String,
}

impl Gts {
    /// The server named by `PERENNIAL_GTS_URL` and `PERENNIAL_GTS_DIR`, or why not.
    pub fn from_env() -> Result<Gts, String> {
        let url = std::env::var("PERENNIAL_GTS_URL").unwrap_or_default();
        let dir = std::env::var("PERENNIAL_GTS_DIR").unwrap_or_default();
        if url.is_empty() || dir.is_empty() {
            return Err("PERENNIAL_GTS_URL and PERENNIAL_GTS_DIR are not set: start a server \
                        with `eval \"$(bash .ci/gotosocial start /tmp/bench-gts)\"` (bench/README.md)"
                .to_string());
        }
        let dir = PathBuf::from(dir);
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map(|text| text.trim().to_string())
                .map_err(|e| format!("{}/{name}: {e}", dir.display()))
        };
        Ok(Gts {
            url: url.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            bot_token: read("bot.token")?,
            alice_token: read("alice.token")?,
            bot_id: read("bot.id")?,
            dir,
        })
    }

    /// The websocket base: `ws://host:port`.
    pub fn ws_base(&self) -> String {
        self.url.replacen("http", "ws", 1)
    }

    async fn get_json(&self, token: &str, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "GET {path}: {status} {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// The server's version, and a panic when it rate-limits: with a limit on, every response
    /// carries `X-Ratelimit-Limit` (`internal/middleware/ratelimit.go`), and a limit of 0
    /// (`--advanced-rate-limit-requests 0`) turns the limiter off, headers and all.
    pub async fn check(&self) -> String {
        let response = self
            .http
            .get(format!("{}/api/v1/instance", self.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GoToSocial at {}: {e}", self.url));
        if let Some(limit) = response.headers().get("x-ratelimit-limit") {
            panic!(
                "GoToSocial at {} rate-limits ({:?} requests per 5 minutes): the bench needs \
                 `--advanced-rate-limit-requests 0` (PERENNIAL_GTS_URL from .ci/gotosocial has it; \
                 PERENNIAL_GTS_LIMITED_URL does not)",
                self.url, limit
            );
        }
        let instance: Value = response.json().await.unwrap();
        instance["version"].as_str().unwrap_or("?").to_string()
    }

    /// Dismisses all of the bot's notifications, so that a replier that catches up at start
    /// (perennial reads `GET /api/v1/notifications`) finds none from earlier runs.
    pub async fn clear_bot_notifications(&self) {
        let response = self
            .http
            .post(format!("{}/api/v1/notifications/clear", self.url))
            .bearer_auth(&self.bot_token)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "POST /api/v1/notifications/clear: {}",
            response.status()
        );
    }

    /// Posts a status with `token`; the stored status's id. A 429 or 503 (the throttle's queue
    /// is full, or the server is starting) is waited out as its `Retry-After` says, and
    /// counted.
    async fn post_status(&self, token: &str, form: &[(&str, &str)]) -> (String, usize) {
        let mut retries = 0;
        loop {
            let response = self
                .http
                .post(format!("{}/api/v1/statuses", self.url))
                .bearer_auth(token)
                .form(form)
                .send()
                .await
                .unwrap_or_else(|e| panic!("POST /api/v1/statuses: {e}"));
            let status = response.status();
            if (status == 429 || status == 503) && retries < 10 {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1u64);
                retries += 1;
                tokio::time::sleep(Duration::from_secs(wait.min(30))).await;
                continue;
            }
            let body = response.text().await.unwrap_or_default();
            assert!(
                status.is_success(),
                "POST /api/v1/statuses: {status} {body}"
            );
            let stored: Value = serde_json::from_str(&body).unwrap();
            return (stored["id"].as_str().unwrap().to_string(), retries);
        }
    }

    /// alice mentions the bot.
    pub async fn mention(&self) -> Mention {
        let sent = Stamp::now();
        let (id, retries) = self
            .post_status(
                &self.alice_token,
                &[("status", MENTION_TEXT), ("visibility", MENTION_VISIBILITY)],
            )
            .await;
        Mention {
            id,
            sent,
            stored: Instant::now(),
            retries,
        }
    }

    /// The bot's statuses newer than status `oldest` (ULIDs sort by time), newest first.
    pub async fn bot_statuses_after(&self, oldest: &str) -> Vec<Value> {
        let mut found = Vec::new();
        let mut max_id: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/accounts/{}/statuses?limit=40", self.bot_id);
            if let Some(max_id) = &max_id {
                path.push_str(&format!("&max_id={max_id}"));
            }
            let page = self.get_json(&self.bot_token, &path).await;
            let page = page.as_array().cloned().unwrap_or_default();
            let Some(last) = page.last() else { break };
            max_id = last["id"].as_str().map(str::to_string);
            let done = max_id.as_deref().is_none_or(|id| id <= oldest);
            found.extend(
                page.into_iter()
                    .filter(|s| s["id"].as_str().is_some_and(|id| id > oldest)),
            );
            if done {
                break;
            }
        }
        found
    }

    /// The text a status was posted with (GoToSocial's `GET /api/v1/statuses/:id/source`).
    pub async fn source_text(&self, id: &str) -> String {
        let source = self
            .get_json(&self.bot_token, &format!("/api/v1/statuses/{id}/source"))
            .await;
        source["text"].as_str().unwrap_or_default().to_string()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("gts.log")
    }

    /// The server log's length now: what [`Self::wait_for_bot_stream`] reads after.
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(self.log_path())
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Waits until the server's log, after byte `from`, says it opened a websocket for the
    /// bot (`opened websocket connection`, `username=bot`, logged at info once the stream is
    /// subscribed: `internal/api/client/streaming/stream.go`); false at the deadline.
    pub async fn wait_for_bot_stream(&self, from: u64, deadline: tokio::time::Instant) -> bool {
        loop {
            if let Ok(log) = std::fs::read(self.log_path()) {
                let from = (from as usize).min(log.len());
                let found = String::from_utf8_lossy(&log[from..]).lines().any(|line| {
                    line.contains("msg=\"opened websocket connection\"")
                        && line.contains(" username=bot ")
                });
                if found {
                    return true;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The bundled `config.toml` aimed at this server, its posts folder made absolute.
    pub fn bundled_config(&self) -> String {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = std::fs::read_to_string(root.join("config.toml"))
            .expect("the bundled config.toml")
            .replace(
                "url = \"https://fosstodon.org\"",
                &format!("url = \"{}\"", self.url),
            )
            .replace(
                "dir = \"posts\"",
                &format!("dir = {:?}", root.join("posts").display().to_string()),
            );
        assert!(
            config.contains(&self.url),
            "the bundled config names its server"
        );
        config
    }
}

/// Opens `token`'s user stream (`GET /api/v1/streaming?stream=user`).
async fn open_user_stream(gts: &Gts, token: &str) -> Result<Socket, tungstenite::Error> {
    let mut request = format!(
        "{}/api/v1/streaming?stream=user&access_token={token}",
        gts.ws_base()
    )
    .into_client_request()?;
    request
        .headers_mut()
        .insert(header::USER_AGENT, USER_AGENT.parse().unwrap());
    let (socket, _response) =
        tokio_tungstenite::connect_async_with_config(request, None, true).await?;
    Ok(socket)
}

/// One frame of GoToSocial's stream: `{"stream": [...], "event": "...", "payload": "..."}`,
/// the payload a JSON document in a string.
fn frame_event(text: &str) -> Option<(String, String)> {
    let frame: Value = serde_json::from_str(text).ok()?;
    Some((
        frame["event"].as_str()?.to_string(),
        frame["payload"].as_str().unwrap_or_default().to_string(),
    ))
}

/// A `mention` notification's status, from a frame of the stream.
fn mention_status(text: &str) -> Option<Value> {
    let (event, payload) = frame_event(text)?;
    if event != "notification" {
        return None;
    }
    let notification: Value = serde_json::from_str(&payload).ok()?;
    (notification["type"] == "mention").then(|| notification["status"].clone())
}

#[derive(Default)]
struct Arrivals {
    /// The bot's replies by the id of the status they answer: when each was seen.
    by_mention: Mutex<HashMap<String, Vec<Stamp>>>,
}

/// alice's user stream: the bot's replies (each mentions alice, so each is a `mention`
/// notification for her) as they come.
pub struct Watcher {
    arrivals: Arc<Arrivals>,
    changes: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Opens alice's stream; returns once the server has it open.
    pub async fn start(gts: &Gts) -> Watcher {
        let mut socket = open_user_stream(gts, &gts.alice_token)
            .await
            .unwrap_or_else(|e| panic!("alice's stream: {e}"));
        let arrivals = Arc::new(Arrivals::default());
        let (changed, changes) = watch::channel(0u64);
        let bot_id = gts.bot_id.clone();
        let task = {
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = socket.next().await {
                    let tungstenite::Message::Text(text) = message else {
                        continue;
                    };
                    let now = Stamp::now();
                    let Some(status) = mention_status(text.as_str()) else {
                        continue;
                    };
                    if status["account"]["id"].as_str() != Some(bot_id.as_str()) {
                        continue;
                    }
                    let Some(reply_to) = status["in_reply_to_id"].as_str() else {
                        continue;
                    };
                    arrivals
                        .by_mention
                        .lock()
                        .unwrap()
                        .entry(reply_to.to_string())
                        .or_default()
                        .push(now);
                    changed.send_modify(|n| *n += 1);
                }
            })
        };
        Watcher {
            arrivals,
            changes,
            task,
        }
    }

    /// When the first reply to `mention` was seen.
    pub fn first_reply(&self, mention: &str) -> Option<Stamp> {
        let arrivals = self.arrivals.by_mention.lock().unwrap();
        arrivals.get(mention).and_then(|seen| seen.first().copied())
    }

    /// Waits for the first reply to `mention` until `deadline`.
    pub async fn wait_for(
        &mut self,
        mention: &str,
        deadline: tokio::time::Instant,
    ) -> Option<Stamp> {
        loop {
            self.changes.borrow_and_update();
            if let Some(seen) = self.first_reply(mention) {
                return Some(seen);
            }
            match tokio::time::timeout_at(deadline, self.changes.changed()).await {
                Ok(Ok(())) => continue,
                // The deadline, or the stream ended.
                _ => return self.first_reply(mention),
            }
        }
    }

    /// Waits until every one of `mentions` has a reply, or `deadline`.
    pub async fn wait_for_all(&mut self, mentions: &[String], deadline: tokio::time::Instant) {
        loop {
            self.changes.borrow_and_update();
            {
                let arrivals = self.arrivals.by_mention.lock().unwrap();
                if mentions.iter().all(|id| arrivals.contains_key(id)) {
                    return;
                }
            }
            match tokio::time::timeout_at(deadline, self.changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => return,
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The reply every replier posts: `@acct`, then the guide.
pub fn reply_text(acct: &str) -> String {
    format!("@{acct} This guide should help:\n{GUIDE_TITLE}: {GUIDE_URL}")
}

/// The server's floor: the bot's stream read in-process, and for each mention the reply
/// posted at once (unlisted, `in_reply_to_id` the mention), one at a time as the bots do; no
/// state, no checks, no keyword matching.
pub struct Floor {
    /// When the floor saw each mention on the bot's stream, by the mention's id.
    seen: Arc<Mutex<HashMap<String, Stamp>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Floor {
    pub async fn start(gts: &Gts) -> Floor {
        let mut socket = open_user_stream(gts, &gts.bot_token)
            .await
            .unwrap_or_else(|e| panic!("the floor's stream: {e}"));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let task = {
            let seen = seen.clone();
            let gts = gts.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = socket.next().await {
                    let tungstenite::Message::Text(text) = message else {
                        continue;
                    };
                    let now = Stamp::now();
                    let Some(status) = mention_status(text.as_str()) else {
                        continue;
                    };
                    let (Some(id), Some(acct)) =
                        (status["id"].as_str(), status["account"]["acct"].as_str())
                    else {
                        continue;
                    };
                    if status["account"]["id"].as_str() == Some(gts.bot_id.as_str()) {
                        continue;
                    }
                    seen.lock().unwrap().insert(id.to_string(), now);
                    let text = reply_text(acct);
                    gts.post_status(
                        &gts.bot_token,
                        &[
                            ("status", text.as_str()),
                            ("in_reply_to_id", id),
                            ("visibility", "unlisted"),
                        ],
                    )
                    .await;
                }
            })
        };
        Floor { seen, task }
    }

    /// When the floor saw mention `id`.
    pub fn seen(&self, id: &str) -> Option<Stamp> {
        self.seen.lock().unwrap().get(id).copied()
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Relays GoToSocial's websocket stream as Mastodon's server-sent events for ananas
/// (Mastodon.py's `stream_user`: `GET /api/v1/streaming/user` with the token in
/// `Authorization`). Each connection opens the user's websocket on the server and writes each
/// frame as `event: EVENT` and `data: PAYLOAD` lines, as Mastodon's streaming server does
/// (every event of the stream, not only notifications), with `:)` first and a `:thump`
/// heartbeat every 15 s. ananas's other requests go to the server directly.
pub struct SseAdapter {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl SseAdapter {
    pub async fn start(gts: &Gts) -> SseAdapter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = axum::Router::new()
            .route("/api/v1/streaming/user", axum::routing::get(relay))
            .with_state(Arc::new(gts.clone()));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        SseAdapter { url, task }
    }
}

impl Drop for SseAdapter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(State(gts): State<Arc<Gts>>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let socket = match open_user_stream(&gts, token).await {
        Ok(socket) => socket,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    struct Relay {
        socket: Socket,
        heartbeat: tokio::time::Interval,
        greeted: bool,
    }
    let mut heartbeat = tokio::time::interval(Duration::from_secs(15));
    heartbeat.reset();
    let relay = Relay {
        socket,
        heartbeat,
        greeted: false,
    };
    let body = futures_util::stream::unfold(relay, |mut relay| async move {
        if !relay.greeted {
            relay.greeted = true;
            return Some((Ok::<_, std::io::Error>(Bytes::from_static(b":)\n")), relay));
        }
        loop {
            tokio::select! {
                message = relay.socket.next() => match message {
                    Some(Ok(tungstenite::Message::Text(text))) => {
                        let Some((event, payload)) = frame_event(text.as_str()) else { continue };
                        let mut block = format!("event: {event}\n");
                        for line in payload.split('\n') {
                            block.push_str("data: ");
                            block.push_str(line);
                            block.push('\n');
                        }
                        block.push('\n');
                        return Some((Ok(Bytes::from(block)), relay));
                    }
                    // Pings (answered by tungstenite), pongs, binary.
                    Some(Ok(_)) => continue,
                    // Closed or broken upstream: the body ends, and Mastodon.py reconnects.
                    _ => return None,
                },
                _ = relay.heartbeat.tick() => {
                    return Some((Ok(Bytes::from_static(b":thump\n")), relay));
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

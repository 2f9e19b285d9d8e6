//! Mentions of the bot: the REST catch-up that pages forward from a cursor
//! ([`Server::mentions_since`]), and the notification stream, a websocket with its own
//! reconnect ([`Server::listen`]).
//!
//! # Why not megalodon
//!
//! Both are direct, for reasons found in megalodon 1.3's source (`src/mastodon/`):
//!
//! * its `user_streaming` reconnects every 5 s with a blocking `std::thread::sleep` inside the
//!   async runtime (a server that is down stalls a runtime thread, and hammers the server),
//!   puts the token in the URL's query string (where proxies and logs keep it), swallows every
//!   error (a revoked token looks like silence), knows only `stream=user`, and does nothing
//!   about what was missed while it was down;
//! * its `get_notifications` has no `types[]`, and its notification type enum is closed, so
//!   one notification of a newer type (`severed_relationships`, `moderation_warning`) fails
//!   the whole page.
//!
//! # Catch-up
//!
//! Nothing is replayed after a reconnect, so the stream alone loses every mention made while
//! it was down. The engine calls [`Server::mentions_since`] on start, after every
//! [`StreamEvent::Connected`] and periodically. Ids are opaque strings (ULIDs on GoToSocial)
//! and are never compared here: paging follows what the server returns, newest first, and
//! each page's first id is the next `min_id`.
//!
//! Notifications held back by a Mastodon 4.3+ notification policy are not asked for
//! (`include_filtered` stays unset), and the stream does not carry them either: the
//! operator's policy for the bot's account wins. One the operator accepts later keeps its
//! old id, behind the cursor by then, so it is not answered: whoever looked at it can.
//!
//! # The stream
//!
//! `GET /api/v1/streaming?stream=user:notification` on the host the instance document names
//! (`configuration.urls.streaming`, which Mastodon may put on another host), else on the
//! server's own. The scheme (`ws`/`wss`) comes from the configured server URL, never from the
//! report: GoToSocial reports `wss://` even when it speaks plain http. The token goes in the
//! upgrade request's `Authorization` header only.
//!
//! * Reconnects with exponential backoff and jitter, [`STREAM_FIRST_RETRY`] doubling up to
//!   [`STREAM_MAX_RETRY`]. The backoff starts over only after a connection stayed up
//!   [`STREAM_STABLE_AFTER`], so a server that accepts and drops at once is not hammered.
//! * Servers ping every 30 s; a connection on which nothing at all arrives for
//!   [`STREAM_IDLE_LIMIT`] is presumed dead (a NAT or proxy forgot it) and replaced.
//! * A refused token (401/403: revoked?) is logged as an error, and like any other refusal
//!   (a server without a streaming API answers 404) retried at the cap, never given up: the
//!   periodic catch-up still finds the mentions if only the stream is refused.
//! * Events go through a bounded channel: when the engine is slow, the stream waits.

use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use reqwest::Method;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::posts::config::Visibility;

use super::Server;
use crate::network::error::{kind_from_status, ErrorKind, ServerError};
use crate::network::{CatchUp, Mention, MentionStream, StreamEvent};
use crate::text::html::html_to_text;

/// The largest page of notifications Mastodon and GoToSocial give.
pub const NOTIFICATIONS_PAGE_LIMIT: usize = 80;
/// At most this many pages per catch-up (1600 mentions). Paging requests have their own rate
/// limit on Mastodon (300 per 15 minutes); the rest comes with the next catch-up, the cursor
/// having moved.
const MAX_CATCH_UP_PAGES: usize = 20;

/// The first wait before reconnecting the stream (less up to a quarter, the jitter).
pub const STREAM_FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait before reconnecting the stream; also the wait after a refused token.
pub const STREAM_MAX_RETRY: Duration = Duration::from_secs(300);
/// A connection that stayed up this long was a good one: the backoff starts over after it.
pub const STREAM_STABLE_AFTER: Duration = Duration::from_secs(60);
/// Nothing at all (not even one of the server's 30-second pings) for this long: the
/// connection is presumed dead and replaced.
pub const STREAM_IDLE_LIMIT: Duration = Duration::from_secs(90);
/// The share of a reconnect wait that is random: waits fall in `[(1 - J) × d, d]`.
const STREAM_RETRY_JITTER: f64 = 0.25;
/// A server's `Retry-After` on the upgrade is honoured up to this.
const MAX_STREAM_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);
/// Events waiting for the engine; beyond it, the stream task waits.
const STREAM_EVENTS_CAPACITY: usize = 256;
/// No notification frame is anywhere near this; a bigger one is a broken or hostile server.
const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;
/// How long a polite close may take at shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

const NOTIFICATIONS_ENDPOINT: &str = "GET /api/v1/notifications";
const STREAMING_ENDPOINT: &str = "GET /api/v1/streaming";
const STREAMING_PATH: &str = "/api/v1/streaming?stream=user:notification";

impl Server {
    /// The mentions after `cursor` (a notification id), oldest first, paging forward with
    /// `min_id` until an empty page or 20 pages, 1600 mentions (see [`CatchUp::complete`]).
    /// Without a cursor (the first start), only the newest page: what is older is history.
    ///
    /// On an error nothing is returned, not even the pages already read: the caller's cursor
    /// has not moved, so the next call reads them again.
    pub async fn mentions_since(&self, cursor: Option<&str>) -> Result<CatchUp, ServerError> {
        let mut catch_up = CatchUp {
            mentions: Vec::new(),
            cursor: cursor.map(str::to_string),
            skipped: 0,
            complete: false,
        };
        if cursor.is_none() {
            let page = self.notifications_page(None).await?;
            catch_up.add_page(&page);
            catch_up.complete = true;
            return Ok(catch_up);
        }
        for _ in 0..MAX_CATCH_UP_PAGES {
            let page = self.notifications_page(catch_up.cursor.as_deref()).await?;
            if !catch_up.add_page(&page) {
                // The end; or a server that ignores `min_id` and would give the same page
                // forever; or a page without one readable id, which cannot be paged past.
                catch_up.complete = true;
                break;
            }
        }
        debug!(
            mentions = catch_up.mentions.len(),
            skipped = catch_up.skipped,
            complete = catch_up.complete,
            "catch-up done"
        );
        Ok(catch_up)
    }

    /// One page of `GET /api/v1/notifications?types[]=mention`, as the server sent it.
    async fn notifications_page(&self, min_id: Option<&str>) -> Result<Vec<Value>, ServerError> {
        let api = &self.inner.api;
        let mut query = vec![
            ("types[]", "mention".to_string()),
            ("limit", NOTIFICATIONS_PAGE_LIMIT.to_string()),
        ];
        if let Some(min_id) = min_id {
            query.push(("min_id", min_id.to_string()));
        }
        let request = api
            .request(Method::GET, "/api/v1/notifications")
            .query(&query);
        let answer = api
            .send(NOTIFICATIONS_ENDPOINT, request, api.timeout())
            .await?;
        answer.json(NOTIFICATIONS_ENDPOINT)
    }

    /// Opens the notification stream in a task of its own and keeps it open, reconnecting as
    /// needed, until `shutdown` is cancelled or the returned stream is dropped.
    pub fn listen(&self, shutdown: CancellationToken) -> MentionStream {
        let shutdown = shutdown.child_token();
        let (sender, events) = mpsc::channel(STREAM_EVENTS_CAPACITY);
        let url = streaming_endpoint(self.url(), self.inner.streaming_url.as_deref());
        tokio::spawn(self.clone().keep_streaming(url, sender, shutdown.clone()));
        MentionStream::new(events, shutdown)
    }

    /// Connects, reads, and reconnects after a wait, until shutdown.
    async fn keep_streaming(
        self,
        url: String,
        events: mpsc::Sender<StreamEvent>,
        shutdown: CancellationToken,
    ) {
        debug!(%url, "notification stream");
        // Failed attempts in a row, a connection that did not last counting as one.
        let mut failures: u32 = 0;
        loop {
            let (reason, retry_in) = match self.stream_once(&url, &events, &shutdown).await {
                Ended::Stopped => return,
                Ended::Dropped { up_for, reason } => {
                    if up_for >= STREAM_STABLE_AFTER {
                        failures = 0;
                    }
                    failures = failures.saturating_add(1);
                    let retry_in = reconnect_delay(failures - 1, rand::random());
                    info!(%reason, retry_in_secs = retry_in.as_secs_f64(), "notification stream lost");
                    (reason, retry_in)
                }
                Ended::Failed(failure) => {
                    failures = failures.saturating_add(1);
                    let refused = matches!(failure.status(), Some(401 | 403));
                    // Retrying a refusal (401, 403, 404...) soon cannot help.
                    let attempt = if failure.retryable() {
                        failures - 1
                    } else {
                        u32::MAX
                    };
                    let mut retry_in = reconnect_delay(attempt, rand::random());
                    if let Some(wait) = failure.retry_after() {
                        retry_in = retry_in.max(wait.min(MAX_STREAM_RETRY_AFTER));
                    }
                    let retry_in_secs = retry_in.as_secs_f64();
                    let reason = if refused {
                        error!(
                            %failure, retry_in_secs,
                            "the server refused the access token for the notification stream: \
                             was it revoked? Mentions are not received until it works again \
                             (`perennial login` gets a new one)"
                        );
                        format!("{failure} (the access token was refused: revoked?)")
                    } else {
                        warn!(%failure, retry_in_secs, "cannot open the notification stream");
                        failure.to_string()
                    };
                    (reason, retry_in)
                }
            };
            let disconnected = StreamEvent::Disconnected { reason, retry_in };
            if !send(&events, &shutdown, disconnected).await {
                return;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(retry_in) => {}
            }
        }
    }

    /// One connection, from the upgrade to its end; the token redacted from its failure (a
    /// refused upgrade's body is the server's, and may echo the `Authorization` header).
    async fn stream_once(
        &self,
        url: &str,
        events: &mpsc::Sender<StreamEvent>,
        shutdown: &CancellationToken,
    ) -> Ended {
        match self.stream_once_unredacted(url, events, shutdown).await {
            Ended::Failed(error) => Ended::Failed(self.inner.api.redact(error)),
            // A close frame's reason is the server's text too.
            Ended::Dropped { up_for, reason } => Ended::Dropped {
                up_for,
                reason: self.inner.api.redact_text(reason),
            },
            Ended::Stopped => Ended::Stopped,
        }
    }

    async fn stream_once_unredacted(
        &self,
        url: &str,
        events: &mpsc::Sender<StreamEvent>,
        shutdown: &CancellationToken,
    ) -> Ended {
        let api = &self.inner.api;
        let request = match api.websocket_request(url) {
            Ok(request) => request,
            Err(kind) => return Ended::Failed(ServerError::new(STREAMING_ENDPOINT, kind)),
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME_BYTES))
            .max_frame_size(Some(MAX_FRAME_BYTES));
        let timeout = api.timeout();
        let connecting = tokio::time::timeout(
            timeout,
            tokio_tungstenite::connect_async_with_config(request, Some(config), true),
        );
        let mut socket = tokio::select! {
            () = shutdown.cancelled() => return Ended::Stopped,
            connected = connecting => match connected {
                Ok(Ok((socket, _response))) => socket,
                Ok(Err(error)) => return Ended::Failed(upgrade_error(error, timeout)),
                Err(_elapsed) => {
                    let kind = ErrorKind::Timeout { after: timeout };
                    return Ended::Failed(ServerError::new(STREAMING_ENDPOINT, kind));
                }
            },
        };
        info!("notification stream connected");
        if !send(events, shutdown, StreamEvent::Connected).await {
            return Ended::Stopped;
        }
        let connected_at = Instant::now();
        let reason = loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => {
                    // Politely, but not at the cost of a prompt shutdown.
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.close(None)).await;
                    return Ended::Stopped;
                }
                received = tokio::time::timeout(STREAM_IDLE_LIMIT, socket.next()) => received,
            };
            let message = match received {
                Err(_idle) => {
                    break format!(
                        "nothing came for {} s, not even a ping: the connection is presumed dead",
                        STREAM_IDLE_LIMIT.as_secs()
                    )
                }
                Ok(None) => break "the server closed the connection".to_string(),
                Ok(Some(Err(error))) => break format!("the connection broke: {error}"),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                tungstenite::Message::Text(text) => {
                    if let Some(mention) = mention_from_frame(text.as_str()) {
                        if !send(events, shutdown, StreamEvent::Mention(mention)).await {
                            return Ended::Stopped;
                        }
                    }
                }
                tungstenite::Message::Close(frame) => {
                    break match frame {
                        Some(frame) => format!(
                            "the server closed the stream (code {}{})",
                            u16::from(frame.code),
                            if frame.reason.is_empty() {
                                String::new()
                            } else {
                                format!(": {}", frame.reason)
                            }
                        ),
                        None => "the server closed the stream".to_string(),
                    }
                }
                // Pings (tungstenite answers them), pongs, binary: alive, nothing to read.
                _ => {}
            }
        };
        Ended::Dropped {
            up_for: connected_at.elapsed(),
            reason,
        }
    }
}

/// How one connection attempt ended.
enum Ended {
    /// Shutdown, or nobody listens any more.
    Stopped,
    /// The stream could not be opened.
    Failed(ServerError),
    /// It was open for `up_for`, then ended.
    Dropped { up_for: Duration, reason: String },
}

impl CatchUp {
    /// Takes in one page (newest first, as the server sends it); false when it did not move
    /// the cursor, so paging must stop.
    fn add_page(&mut self, page: &[Value]) -> bool {
        // The first readable id is the newest: pages come newest first. Without one, nothing
        // on the page is readable (a mention needs its id) and there is no paging past it.
        let Some(newest) = page.iter().find_map(|n| read_id(n.get("id"))) else {
            self.skipped += page.len();
            return false;
        };
        if self.cursor.as_deref() == Some(newest.as_str()) {
            // A server never returns `min_id` itself, unless it ignores it: this page is old.
            debug!("the server ignored min_id; stopping the catch-up here");
            return false;
        }
        for notification in page.iter().rev() {
            match mention_from_notification(notification) {
                Ok(mention) => self.mentions.push(mention),
                Err(skip) => {
                    self.skipped += 1;
                    debug!(id = ?read_id(notification.get("id")), %skip, "skipping a notification");
                }
            }
        }
        self.cursor = Some(newest);
        true
    }
}

/// Sends an event unless shutdown comes first; false when the stream must stop.
async fn send(
    events: &mpsc::Sender<StreamEvent>,
    shutdown: &CancellationToken,
    event: StreamEvent,
) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        sent = events.send(event) => sent.is_ok(),
    }
}

/// Sorts a failed upgrade. Nothing was acted on whatever happened: no status is posted
/// through the stream.
fn upgrade_error(error: tungstenite::Error, timeout: Duration) -> ServerError {
    let kind = match error {
        tungstenite::Error::Http(response) => {
            let body = response.body().as_deref().unwrap_or_default();
            kind_from_status(
                response.status().as_u16(),
                response.headers(),
                body,
                Timestamp::now(),
            )
        }
        tungstenite::Error::Url(error) => ErrorKind::InvalidRequest {
            detail: error.to_string(),
        },
        tungstenite::Error::Io(error) if error.kind() == std::io::ErrorKind::TimedOut => {
            ErrorKind::Timeout { after: timeout }
        }
        error => ErrorKind::Connect {
            detail: error.to_string(),
        },
    };
    ServerError::new(STREAMING_ENDPOINT, kind)
}

/// The wait before reconnecting after `attempt` earlier failures in a row (0 for the first):
/// [`STREAM_FIRST_RETRY`] doubled `attempt` times, at most [`STREAM_MAX_RETRY`], less up to
/// a quarter of it as `random` (in `[0, 1)`) says, so that many clients of a restarted server
/// do not come back in step.
fn reconnect_delay(attempt: u32, random: f64) -> Duration {
    let nominal = 2u32
        .checked_pow(attempt)
        .and_then(|factor| STREAM_FIRST_RETRY.checked_mul(factor))
        .map_or(STREAM_MAX_RETRY, |delay| delay.min(STREAM_MAX_RETRY));
    nominal.mul_f64(1.0 - STREAM_RETRY_JITTER * random.clamp(0.0, 1.0))
}

/// The websocket URL of the notification stream: the host the server reports (`reported`,
/// from its instance document) when it names another host or port, else the server's own
/// URL; the scheme from the server's URL (`https` → `wss`, `http` → `ws`) either way.
fn streaming_endpoint(server_url: &str, reported: Option<&str>) -> String {
    let Ok(server) = url::Url::parse(server_url) else {
        // Cannot happen: the URL was checked when connecting. Let the upgrade report it.
        return format!("{server_url}{STREAMING_PATH}");
    };
    let scheme = if server.scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    let elsewhere = reported
        .and_then(|reported| url::Url::parse(reported).ok())
        .filter(|reported| matches!(reported.scheme(), "ws" | "wss" | "http" | "https"))
        .filter(|reported| reported.host().is_some())
        .filter(|reported| {
            reported.host_str() != server.host_str()
                || reported
                    .port()
                    .is_some_and(|port| Some(port) != server.port())
        });
    let mut base = match elsewhere {
        Some(reported) => {
            info!(streaming = %reported, "the server's streaming API is on another host or port");
            reported
        }
        None => server,
    };
    if base.set_scheme(scheme).is_err() {
        // Only between special schemes, which these all are.
        debug!("cannot set the scheme {scheme} on the streaming URL");
    }
    base.set_query(None);
    base.set_fragment(None);
    format!("{}{STREAMING_PATH}", base.as_str().trim_end_matches('/'))
}

/// The mention in a stream frame, if it carries one. Anything else (another event, another
/// type of notification, an unreadable frame) is left with a debug line that never repeats
/// the frame's content.
fn mention_from_frame(text: &str) -> Option<Mention> {
    let frame: Value = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(error) => {
            debug!(%error, bytes = text.len(), "ignoring a stream frame that is not JSON");
            return None;
        }
    };
    let event = frame
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if event != "notification" {
        debug!(event, "ignoring a stream event");
        return None;
    }
    // A JSON string as the API documents it; an object from a server that does not encode it.
    let notification = match frame.get("payload") {
        Some(Value::String(payload)) => match serde_json::from_str::<Value>(payload) {
            Ok(notification) => notification,
            Err(error) => {
                debug!(%error, "ignoring a notification frame whose payload is not JSON");
                return None;
            }
        },
        Some(payload @ Value::Object(_)) => payload.clone(),
        _ => {
            debug!("ignoring a notification frame without a payload");
            return None;
        }
    };
    match mention_from_notification(&notification) {
        Ok(mention) => Some(mention),
        Err(skip) => {
            debug!(id = ?read_id(notification.get("id")), %skip, "ignoring a streamed notification");
            None
        }
    }
}

/// Why a notification is not a mention the bot can read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Skip {
    /// Another type: `follow`, `favourite`, `severed_relationships`, one not invented yet...
    NotAMention(String),
    /// A mention without this field (or with one that cannot be read).
    Missing(&'static str),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::NotAMention(kind) => write!(f, "not a mention but {kind:?}"),
            Skip::Missing(field) => write!(f, "a mention without a readable `{field}`"),
        }
    }
}

/// Reads a notification leniently: only the fields a [`Mention`] needs, each of any shape;
/// nothing else about the notification can make it fail.
fn mention_from_notification(notification: &Value) -> Result<Mention, Skip> {
    let kind = notification
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind != "mention" {
        return Err(Skip::NotAMention(kind.to_string()));
    }
    let notification_id = read_id(notification.get("id")).ok_or(Skip::Missing("id"))?;
    let status = notification
        .get("status")
        .filter(|status| status.is_object())
        .ok_or(Skip::Missing("status"))?;
    let status_id = read_id(status.get("id")).ok_or(Skip::Missing("status.id"))?;
    let account = notification
        .get("account")
        .filter(|account| account.is_object())
        .or_else(|| status.get("account"))
        .ok_or(Skip::Missing("account"))?;
    let account_id = read_id(account.get("id")).ok_or(Skip::Missing("account.id"))?;
    let acct = read_text(account.get("acct"))
        .filter(|acct| !acct.is_empty())
        .ok_or(Skip::Missing("account.acct"))?;
    let created_at = read_time(notification.get("created_at"))
        .or_else(|| read_time(status.get("created_at")))
        .ok_or(Skip::Missing("created_at"))?;
    Ok(Mention {
        notification_id,
        created_at,
        status_id,
        text: html_to_text(&read_text(status.get("content")).unwrap_or_default()),
        spoiler_text: read_text(status.get("spoiler_text")).unwrap_or_default(),
        visibility: read_visibility(status.get("visibility")),
        in_reply_to_id: read_id(status.get("in_reply_to_id")),
        in_reply_to_account_id: read_id(status.get("in_reply_to_account_id")),
        account_id,
        acct,
        bot: account.get("bot").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// An id: a non-empty string, or a number from a server that sends them bare (kept as its
/// text, never compared as a number).
fn read_id(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

fn read_text(value: Option<&Value>) -> Option<String> {
    value?.as_str().map(str::to_string)
}

fn read_time(value: Option<&Value>) -> Option<Timestamp> {
    value?.as_str()?.parse().ok()
}

/// Unknown or missing is `Direct`, the most private: a reply is never more public than the
/// mention.
fn read_visibility(value: Option<&Value>) -> Visibility {
    match value.and_then(Value::as_str) {
        Some("public") => Visibility::Public,
        Some("unlisted") => Visibility::Unlisted,
        Some("private") => Visibility::Private,
        _ => Visibility::Direct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mastodon_mention() -> Value {
        json!({
            "id": "110000000000000042",
            "type": "mention",
            "created_at": "2026-03-01T12:00:00.000Z",
            "group_key": "ungrouped-42",
            "account": {"id": "7", "acct": "alice@example.org", "bot": false, "username": "alice"},
            "status": {
                "id": "110000000000000041",
                "created_at": "2026-03-01T11:59:59.000Z",
                "in_reply_to_id": "110000000000000001",
                "in_reply_to_account_id": "1",
                "spoiler_text": "cw",
                "visibility": "unlisted",
                "content": "<p>@<span>perennial</span> how do I install it?</p>",
                "account": {"id": "7", "acct": "alice@example.org"},
                "card": {"type": "something-new"},
                "quote": {"state": "new-state"},
            },
        })
    }

    #[test]
    fn a_mastodon_mention_is_read() {
        let mention = mention_from_notification(&mastodon_mention()).unwrap();
        assert_eq!(
            mention,
            Mention {
                notification_id: "110000000000000042".to_string(),
                created_at: "2026-03-01T12:00:00Z".parse().unwrap(),
                status_id: "110000000000000041".to_string(),
                text: html_to_text("<p>@<span>perennial</span> how do I install it?</p>"),
                spoiler_text: "cw".to_string(),
                visibility: Visibility::Unlisted,
                in_reply_to_id: Some("110000000000000001".to_string()),
                in_reply_to_account_id: Some("1".to_string()),
                account_id: "7".to_string(),
                acct: "alice@example.org".to_string(),
                bot: false,
            }
        );
    }

    #[test]
    fn odd_mentions_are_read_leniently() {
        let mut gotosocial = mastodon_mention();
        gotosocial["id"] = json!("01J0000000000000000000000A");
        gotosocial["status"]["visibility"] = json!("mutuals_only");
        gotosocial["status"]["in_reply_to_id"] = json!(null);
        gotosocial["status"]
            .as_object_mut()
            .unwrap()
            .remove("spoiler_text");
        gotosocial.as_object_mut().unwrap().remove("created_at");
        gotosocial["account"]["bot"] = json!(true);
        let mention = mention_from_notification(&gotosocial).unwrap();
        assert_eq!(mention.notification_id, "01J0000000000000000000000A");
        assert_eq!(mention.visibility, Visibility::Direct);
        assert_eq!(mention.in_reply_to_id, None);
        assert_eq!(mention.spoiler_text, "");
        assert!(mention.bot);
        // No notification time: the status's.
        assert_eq!(
            mention.created_at,
            "2026-03-01T11:59:59Z".parse::<Timestamp>().unwrap()
        );

        let mut numeric = mastodon_mention();
        numeric["id"] = json!(42);
        numeric["status"]
            .as_object_mut()
            .unwrap()
            .remove("visibility");
        let mention = mention_from_notification(&numeric).unwrap();
        assert_eq!(mention.notification_id, "42");
        assert_eq!(mention.visibility, Visibility::Direct);
    }

    #[test]
    fn what_is_not_a_readable_mention_is_skipped_with_a_reason() {
        let check = |notification: Value, expected: Skip| {
            assert_eq!(
                mention_from_notification(&notification),
                Err(expected),
                "{notification}"
            );
        };
        let with = |edit: fn(&mut Value)| {
            let mut n = mastodon_mention();
            edit(&mut n);
            n
        };
        check(
            json!({"id": "1", "type": "severed_relationships", "event": {"purged": false}}),
            Skip::NotAMention("severed_relationships".to_string()),
        );
        check(
            json!({"id": "1", "type": "follow", "account": {"id": "2", "acct": "bob"}}),
            Skip::NotAMention("follow".to_string()),
        );
        check(json!({"id": "1"}), Skip::NotAMention(String::new()));
        check(json!("mention"), Skip::NotAMention(String::new()));
        check(with(|n| n["status"] = json!(null)), Skip::Missing("status"));
        check(with(|n| n["id"] = json!("")), Skip::Missing("id"));
        check(
            with(|n| n["status"]["id"] = json!({"oops": 1})),
            Skip::Missing("status.id"),
        );
        check(
            with(|n| n["account"]["acct"] = json!(null)),
            Skip::Missing("account.acct"),
        );
        check(
            with(|n| {
                n["created_at"] = json!("yesterday");
                n["status"]["created_at"] = json!(null);
            }),
            Skip::Missing("created_at"),
        );
    }

    #[test]
    fn stream_frames() {
        let payload = mastodon_mention().to_string();
        let frame = json!({"event": "notification", "payload": payload, "stream": ["user"]});
        let mention = mention_from_frame(&frame.to_string()).unwrap();
        assert_eq!(mention.acct, "alice@example.org");
        // A payload sent as an object rather than a string is read too.
        let frame = json!({"event": "notification", "payload": mastodon_mention()});
        assert!(mention_from_frame(&frame.to_string()).is_some());
        for ignored in [
            "not json".to_string(),
            json!({"event": "update", "payload": payload}).to_string(),
            json!({"event": "notifications_merged", "payload": "1"}).to_string(),
            json!({"event": "notification", "payload": "{broken"}).to_string(),
            json!({"event": "notification"}).to_string(),
            json!({"event": "notification", "payload": json!({"id": "1", "type": "follow"}).to_string()}).to_string(),
        ] {
            assert_eq!(mention_from_frame(&ignored), None, "{ignored}");
        }
    }

    #[test]
    fn reconnect_delays_double_up_to_the_cap_with_jitter_below() {
        let secs = |attempt, random| reconnect_delay(attempt, random).as_secs_f64();
        assert_eq!(secs(0, 0.0), 1.0);
        assert_eq!(secs(1, 0.0), 2.0);
        assert_eq!(secs(4, 0.0), 16.0);
        assert_eq!(secs(8, 0.0), 256.0);
        assert_eq!(secs(9, 0.0), 300.0);
        assert_eq!(secs(40, 0.0), 300.0);
        assert_eq!(secs(u32::MAX, 0.0), 300.0);
        assert_eq!(secs(0, 1.0), 0.75);
        assert_eq!(secs(u32::MAX, 0.5), 300.0 * 0.875);
        assert_eq!(secs(3, 7.0), 6.0); // out of range: clamped
    }

    #[test]
    fn streaming_endpoints() {
        let check = |server: &str, reported: Option<&str>, expected: &str| {
            assert_eq!(
                streaming_endpoint(server, reported),
                format!("{expected}/api/v1/streaming?stream=user:notification"),
                "{server} {reported:?}"
            );
        };
        check("https://example.org", None, "wss://example.org");
        check(
            "https://example.org",
            Some("wss://example.org"),
            "wss://example.org",
        );
        // Mastodon's separate streaming host.
        check(
            "https://mastodon.example",
            Some("wss://streaming.mastodon.example"),
            "wss://streaming.mastodon.example",
        );
        // GoToSocial says wss on plain http: the server URL's scheme wins.
        check(
            "http://127.0.0.1:8080",
            Some("wss://127.0.0.1:8080"),
            "ws://127.0.0.1:8080",
        );
        check(
            "http://127.0.0.1:8080",
            Some("wss://127.0.0.1"),
            "ws://127.0.0.1:8080",
        );
        // Mastodon in development: the streaming server on its own port.
        check(
            "http://localhost:3000",
            Some("ws://localhost:4000"),
            "ws://localhost:4000",
        );
        // A server under a path keeps it.
        check(
            "https://example.org/social",
            None,
            "wss://example.org/social",
        );
        // Unusable reports are ignored.
        for odd in [
            "",
            "streaming.example.org",
            "ftp://example.org",
            "not a url",
        ] {
            check("https://example.org", Some(odd), "wss://example.org");
        }
        // An explicit default port is no different port.
        check(
            "https://example.org",
            Some("wss://example.org:443/"),
            "wss://example.org",
        );
    }

    /// The daemon spawns these on a multi-threaded runtime: they must stay `Send`.
    #[allow(dead_code)]
    fn futures_are_send(server: Server, mut stream: MentionStream) {
        fn future<T: Send>(_: T) {}
        future(server.mentions_since(Some("1")));
        future(stream.next());
        future(server.clone().keep_streaming(
            String::new(),
            mpsc::channel(1).0,
            CancellationToken::new(),
        ));
    }
}

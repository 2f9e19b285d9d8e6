//! Layer 5, the networks: the one boundary through which the daemon reaches a social
//! network. [`Network`] is what a network does for the daemon (connect and learn the limits
//! and the counting rule, send one part, find a part already sent, upload media, mentions
//! since a cursor and as a stream); [`connect`] picks the implementation. Each network is a
//! sibling folder: [`mastodon`] is the Mastodon client API, which Mastodon, GoToSocial,
//! Pleroma and Akkoma all serve.
//!
//! What this layer must not know: the plan, the daemon's loop, how an intent is kept (the
//! engine, `crate::daemon::engine`, keeps it), or anything about people's output. It takes
//! values (a part to send, a [`Lookup`]) and returns values (ids, [`Mention`]s); the text it
//! sends was composed and counted by `crate::text`.
//!
//! # How another network fits
//!
//! Bluesky (the AT Protocol) needs, and gets from this boundary without a change to the
//! daemon: a record key chosen before the first send rather than a search afterwards
//! ([`Network::before_first_part`] returns what the engine saves with the intent, and
//! [`Lookup::after`] hands it back: `com.atproto.repo.getRecord` by that key instead of a
//! search); polling instead of a stream (its [`Network::listen`] feeds the same
//! [`MentionStream`] from a polling task over `app.bsky.notification.listNotifications`);
//! facets (computed from the text in its [`Network::send`]); its own counter ([`Limits::counter`]
//! with its own [`crate::text::count::Software`]) and its own slots (the config's, per network).

pub mod error;
pub mod mastodon;
pub mod retry;
pub mod token;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::posts::config::Visibility;
use crate::state::ServerSeen;
use crate::text::count::{Counter, Software};

pub use crate::text::reply::Mention;
pub use error::{ConnectError, Disposition, ServerError};
pub use mastodon::ServerOptions;
use token::Token;

/// What a network does for the daemon. Object-safe (the futures are boxed: one allocation per
/// request, nothing beside a network round trip), so the daemon holds an `Arc<dyn Network>`
/// and never names an implementation.
pub trait Network: Send + Sync + std::fmt::Debug {
    /// The account the token belongs to.
    fn account(&self) -> &Account;
    /// What the network allows, and so how text is counted for it ([`Limits::counter`]).
    fn limits(&self) -> &Limits;
    /// What the daemon keeps of this network in the state, for offline commands.
    fn seen(&self, at: Timestamp) -> ServerSeen;
    /// Called before the first part of a post or a reply is first sent; what it returns is
    /// saved with the intent and handed back in [`Lookup::after`] (Mastodon: for a post, the
    /// newest own status, so that a part found later must be newer, and nothing for a reply,
    /// which its `in_reply_to` identifies; Bluesky: the record key the part will have).
    fn before_first_part(&self, of: PartOf) -> BoxFuture<'_, Result<Option<String>, ServerError>>;
    /// Sends one part; its id.
    fn send<'a>(&'a self, part: &'a NewStatus) -> BoxFuture<'a, Result<String, ServerError>>;
    /// The part [`Lookup`] describes, if it is out already: asked before anything is sent
    /// again after a failure that may have reached the network, and on resuming an intent.
    fn find_sent<'a>(
        &'a self,
        lookup: &'a Lookup<'a>,
    ) -> BoxFuture<'a, Result<Option<String>, ServerError>>;
    /// Uploads a media file (a real path inside the posts folder) with its alt text; its id for
    /// [`NewStatus::media_ids`].
    fn upload_media<'a>(
        &'a self,
        path: &'a Path,
        alt: &'a str,
    ) -> BoxFuture<'a, Result<String, ServerError>>;
    /// The mentions after `cursor`, oldest first.
    fn mentions_since<'a>(
        &'a self,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CatchUp, ServerError>>;
    /// Mentions as they come, until `shutdown`.
    fn listen(&self, shutdown: CancellationToken) -> MentionStream;
    /// How many more requests the network's newest answer said it allows now (its
    /// rate-limit headers), if it said: replies overlap no further than that.
    fn requests_left(&self) -> Option<u64> {
        None
    }
}

/// Connects to the network `options` names: today always the Mastodon client API (Mastodon,
/// GoToSocial, Pleroma, Akkoma); another network is one more arm here.
pub async fn connect(
    options: ServerOptions,
    token: Token,
) -> Result<Arc<dyn Network>, ConnectError> {
    let server = mastodon::Server::connect(options, token).await?;
    Ok(Arc::new(server))
}

/// What a part belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartOf {
    /// A post (a thread of one or more parts).
    Post,
    /// A reply to a mention.
    Reply,
}

/// How to recognise a part that may be out already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<'a> {
    /// Its text and content warning; `None`: any text (a reply to a mention is recognised by
    /// what it replies to alone).
    pub text: Option<(&'a str, &'a str)>,
    /// What it replies to (`None`: a thread's first part, which replies to nothing).
    pub in_reply_to: Option<&'a str>,
    /// What [`Network::before_first_part`] returned for it.
    pub after: Option<&'a str>,
    /// For an intent saved before `after` existed: not created before this.
    pub not_before: Option<Timestamp>,
}

/// The account the token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    /// `user` for a local account (what the server shows in `acct`).
    pub acct: String,
    pub username: String,
    pub bot: bool,
}

/// What the server allows, as read at connect time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub software: Software,
    /// The config's override when set, else the server's, else the software's default.
    pub max_characters: usize,
    /// The server's own limit (what it reports, else the software's default), whatever the
    /// config says: what [`Server::seen`] keeps for offline commands.
    pub server_max_characters: usize,
    pub characters_reserved_per_url: usize,
    pub max_media_attachments: usize,
    /// The longest alt text.
    pub description_limit: usize,
    /// The largest media files.
    pub media: crate::posts::post::MediaLimits,
}

impl Limits {
    /// The counter with this server's rule and limit.
    pub fn counter(&self) -> Counter {
        Counter::new(
            self.software,
            self.max_characters,
            self.characters_reserved_per_url,
        )
    }
}

/// A status to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStatus {
    pub text: String,
    /// The content warning; `None` or empty for none.
    pub spoiler_text: Option<String>,
    pub visibility: Visibility,
    /// ISO 639 code such as `en`.
    pub language: Option<String>,
    pub in_reply_to_id: Option<String>,
    /// From [`Server::upload_media`], in display order.
    pub media_ids: Vec<String>,
    /// Sent as `Idempotency-Key`: Mastodon answers a repeat within an hour with the original
    /// status instead of posting again. GoToSocial ignores it, so it is a second line of
    /// defence after [`Server::own_statuses`], never the only one.
    pub idempotency_key: Option<String>,
    /// What [`Network::before_first_part`] chose for it, if anything: a network that names
    /// its records (Bluesky's record key) creates the part under that name, so that
    /// [`Network::find_sent`] can ask for it by name. The Mastodon API has no use for it.
    pub prepared: Option<String>,
}

impl NewStatus {
    /// A status with only text and visibility; set the other fields as needed.
    pub fn new(text: impl Into<String>, visibility: Visibility) -> NewStatus {
        NewStatus {
            text: text.into(),
            spoiler_text: None,
            visibility,
            language: None,
            in_reply_to_id: None,
            media_ids: Vec::new(),
            idempotency_key: None,
            prepared: None,
        }
    }
}

/// What one catch-up found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUp {
    /// The mentions, oldest first.
    pub mentions: Vec<Mention>,
    /// The newest notification id seen, skipped ones included; the given cursor when nothing
    /// new came (`None` only when there was none and the server has no mention at all).
    pub cursor: Option<String>,
    /// Notifications seen that are not readable mentions (another type from a server that
    /// ignores `types[]`, a mention without its status...).
    pub skipped: usize,
    /// Whether nothing newer than `cursor` was left unread: the paging reached an empty page
    /// (or, on the first start, the newest page was read: what is older is history). False
    /// when the page cap stopped it: call again for the rest.
    pub complete: bool,
}

/// What the notification stream reports to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The stream is (re)connected. Nothing is replayed: run a catch-up now. A mention made
    /// meanwhile may then come twice, streamed and caught up: the same `notification_id`.
    Connected,
    /// A mention, as it happens.
    Mention(Mention),
    /// The stream is down (or could not be opened); the next attempt is in `retry_in`.
    Disconnected { reason: String, retry_in: Duration },
}

/// The events of [`Network::listen`]. Dropping it stops the stream.
#[derive(Debug)]
pub struct MentionStream {
    events: mpsc::Receiver<StreamEvent>,
    shutdown: CancellationToken,
    _stop_when_dropped: DropGuard,
}

impl MentionStream {
    /// The stream of the events a network's listening task sends on `events`; cancelling
    /// `shutdown` (or dropping the stream) stops that task.
    pub fn new(events: mpsc::Receiver<StreamEvent>, shutdown: CancellationToken) -> MentionStream {
        MentionStream {
            events,
            shutdown: shutdown.clone(),
            _stop_when_dropped: shutdown.drop_guard(),
        }
    }

    /// The next event; `None` once shutdown was requested (events still queued are dropped:
    /// the next start's catch-up finds those mentions).
    pub async fn next(&mut self) -> Option<StreamEvent> {
        if self.shutdown.is_cancelled() {
            return None;
        }
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => None,
            event = self.events.recv() => event,
        }
    }

    /// The next event if one has arrived already, without waiting; `None` when none has, or
    /// once shutdown was requested.
    pub fn ready(&mut self) -> Option<StreamEvent> {
        if self.shutdown.is_cancelled() {
            return None;
        }
        self.events.try_recv().ok()
    }
}

//! Layer 3, **state**: what the daemon remembers between runs, and its file. It knows posts
//! and text (what was sent, and how it was fitted), and must not know the plan's rules, any
//! network's API, the daemon's loop or output for people. Only [`store`] writes the file.
//!
//! What the daemon remembers between runs: the post history, the rotation's position, the
//! post in flight, failed posts and the mention cursor. The types are here; reading and
//! writing the file (atomically, versioned, locked) is in [`store`].
//!
//! Timestamps are stored as RFC 3339 strings in UTC (jiff's serde form); server ids are
//! opaque strings (GoToSocial's are ULIDs), never parsed as numbers.

mod journal;
mod store;
mod upkeep;

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::posts::config::Visibility;

pub use journal::{JournalEntry, COMPACT_AT, JOURNAL_FILE_NAME};
pub use store::{
    resolve_state_dir, SaveStep, StateError, StateLock, StateStore, WriteSteps, STATE_FILE_NAME,
};
pub use upkeep::{follow_renames, prune, Pruned, Rename, KEPT_FOR};

pub mod fit;

/// The schema version this build writes. A file with a higher version is refused (it was
/// written by a newer perennial); lower versions are migrated on read.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything in the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    /// The posts that went out, oldest first: every one of the last [`KEPT_FOR`], and before
    /// that what the plan needs (each post's newest entry and newest ad hoc one); see
    /// [`prune`].
    #[serde(default)]
    pub history: Vec<Posted>,
    #[serde(default)]
    pub rotation: Rotation,
    /// The post being sent, if a run stopped before it was finished: checked at start-up
    /// against the account's own statuses before anything is resent.
    #[serde(default)]
    pub pending: Option<PostIntent>,
    /// Post id → the version of it that the server rejected. A post stays out of the plan
    /// while its file's hash equals the failed one. Entries of posts no longer in the posts
    /// folder go after [`KEPT_FOR`] ([`prune`]).
    #[serde(default)]
    pub failed: BTreeMap<String, FailedPost>,
    #[serde(default)]
    pub mentions: MentionsState,
    /// What the daemon last learnt of the server (software, limits, account) when it
    /// connected: offline commands (`check`, `preview`, `queue`, `post --dry-run`) fit posts
    /// with it, so that what they show is what the daemon sends.
    #[serde(default)]
    pub server: Option<ServerSeen>,
}

/// The server as the daemon last saw it on connecting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSeen {
    /// `[server] url` at the time, without a trailing slash: offline commands use the rest only
    /// while the config still names this server.
    pub url: String,
    pub software: crate::text::count::Software,
    /// The server's own limit, before the config's `max_characters` override.
    pub max_characters: usize,
    pub characters_reserved_per_url: usize,
    pub max_media_attachments: usize,
    pub description_limit: usize,
    /// The largest image and video the server takes, in bytes (`None` in a state written
    /// before they were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_size_limit: Option<u64>,
    /// The account the token belongs to.
    pub account_id: String,
    pub acct: String,
    pub at: Timestamp,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: SCHEMA_VERSION,
            history: Vec::new(),
            rotation: Rotation::default(),
            pending: None,
            failed: BTreeMap::new(),
            mentions: MentionsState::default(),
            server: None,
        }
    }
}

/// Why a post went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostReason {
    /// An evergreen rotation slot.
    Slot,
    /// An ad hoc post at its own `at`.
    Adhoc,
    /// `perennial post POST`, by hand.
    Manual,
}

/// One post that went out (all parts of its thread).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Posted {
    pub post: String,
    /// [`crate::posts::post::Post::content_hash`] of the version that was sent.
    pub hash: String,
    /// The slot or `at` time it was planned for (the nominal time, before jitter).
    pub slot: Timestamp,
    /// When the first part was accepted.
    pub at: Timestamp,
    pub reason: PostReason,
    /// Category at the time of posting (a later edit may move the post).
    pub category: String,
    /// Server ids of the thread's parts, in order.
    pub statuses: Vec<String>,
}

/// Where the evergreen rotation stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// The nominal time of the last slot that was dealt with (posted, skipped or empty).
    /// Slots at or before it are never considered again.
    #[serde(default)]
    pub last_slot: Option<Timestamp>,
    /// When the daemon last looked for due and missed posts. Slots and ad hoc posts whose
    /// time fell between this and `now - grace` were missed (logged once, then forgotten).
    #[serde(default)]
    pub checked: Option<Timestamp>,
    /// Smooth weighted round-robin: each category's current credit.
    #[serde(default)]
    pub credit: BTreeMap<String, f64>,
}

/// A post being sent: written before the first request, updated after each part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostIntent {
    pub post: String,
    pub hash: String,
    pub slot: Timestamp,
    pub reason: PostReason,
    pub category: String,
    /// When the intent was written; statuses created before it cannot be ours.
    pub started: Timestamp,
    pub visibility: Visibility,
    #[serde(default)]
    pub language: Option<String>,
    /// Attached to the first part; uploaded again if a run stopped before it was sent.
    #[serde(default)]
    pub media: Vec<IntentMedia>,
    /// For a rotation slot: the rotation credit to store once the post is out.
    #[serde(default)]
    pub credit_after: Option<BTreeMap<String, f64>>,
    /// The account sending it: an intent left by another account (the token was changed)
    /// cannot be verified against this one's statuses.
    #[serde(default)]
    pub account: Option<String>,
    /// The newest of the account's own statuses just before the first part was sent (`None`:
    /// the account had none, or the intent predates this field). A first part found later
    /// must be newer than it: ids grow with time on Mastodon (snowflakes), GoToSocial
    /// (ULIDs) and Pleroma (flake ids), so this needs no clock.
    #[serde(default)]
    pub after_status: Option<String>,
    /// Whether `after_status` was read (an account with no status at all has none to name).
    #[serde(default)]
    pub after_status_read: bool,
    /// The fitting settings it was composed with (see [`FailedPost::settings`]).
    #[serde(default)]
    pub settings: Option<String>,
    /// One entry per thread part, in order.
    pub parts: Vec<IntentPart>,
}

/// A media file of a post in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentMedia {
    pub path: std::path::PathBuf,
    pub alt: String,
}

/// One status of a post in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentPart {
    /// The exact text to send (no secrets in it: it is public once sent).
    pub text: String,
    #[serde(default)]
    pub spoiler_text: Option<String>,
    /// This part's own visibility (later parts of a public thread are `unlisted`). `None` in
    /// an intent written before parts had their own: the intent's.
    #[serde(default)]
    pub visibility: Option<Visibility>,
    /// This part's own language; `None`: the intent's.
    #[serde(default)]
    pub language: Option<String>,
    /// Sent as `Idempotency-Key` (Mastodon honours it for an hour; others ignore it).
    pub idempotency_key: String,
    /// Set once the server accepted this part.
    #[serde(default)]
    pub status_id: Option<String>,
}

/// A version of a post that the server rejected for good (e.g. 422).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedPost {
    pub hash: String,
    pub at: Timestamp,
    /// The server's message.
    pub message: String,
    /// What the post was fitted with ([`crate::text::compose::FitSettings::fingerprint`]): a
    /// failed post is tried again when its file or these change (say `max_characters` was
    /// fixed). `None` in entries written before this field: tried again once.
    #[serde(default)]
    pub settings: Option<String>,
}

/// Mentions: the catch-up cursor, what was dealt with recently, and a reply in flight.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MentionsState {
    /// The newest notification id seen; catch-up pages forward from it with `min_id`.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Mentions dealt with recently (answered or skipped), oldest first. Trimmed to what
    /// duplicates and the hourly caps need (see `crate::daemon::mentions`).
    #[serde(default)]
    pub handled: Vec<HandledMention>,
    /// When the last catch-up that read every notification up to the server's newest
    /// started: a mention dealt with before then is behind the cursor and cannot come back,
    /// so its entry in `handled` may go (once the hourly caps no longer need it).
    #[serde(default)]
    pub caught_up: Option<Timestamp>,
    /// Replies written down before they are sent, oldest first: on start-up, the server is
    /// searched for each before anything is sent again (at most one reply per mention).
    /// Written as one object when there is one (the form of earlier versions, which had at
    /// most one), as a list when there are more.
    #[serde(default, with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<ReplyIntent>,
}

/// `pending` as earlier versions wrote it (`null` or one object) or as a list.
mod one_or_many {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::ReplyIntent;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(Box<ReplyIntent>),
        Many(Vec<ReplyIntent>),
    }

    pub fn serialize<S: Serializer>(
        pending: &[ReplyIntent],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match pending {
            [one] => one.serialize(serializer),
            many => many.serialize(serializer),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<ReplyIntent>, D::Error> {
        Ok(match Option::<Form>::deserialize(deserializer)? {
            None => Vec::new(),
            Some(Form::One(one)) => vec![*one],
            Some(Form::Many(many)) => many,
        })
    }
}

/// A mention the bot dealt with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandledMention {
    /// The notification's id.
    pub notification: String,
    /// The mentioning status's id.
    pub status: String,
    /// Its author's `acct`.
    pub acct: String,
    /// When the bot dealt with it.
    pub at: Timestamp,
    pub outcome: MentionOutcome,
}

/// What the bot did with a mention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MentionOutcome {
    /// Answered with this status.
    Replied { status_id: String },
    /// Not answered, for this reason.
    Skipped { reason: SkipReason },
}

/// Why a mention got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The bot's own account.
    Own,
    /// An account flagged as a bot (`ignore_bots`).
    Bot,
    /// On first start, older than `first_start_lookback`.
    TooOld,
    /// A reply to one of the bot's own statuses that asks for nothing ("thanks!").
    NothingAsked,
    /// Even the shortest reply does not fit the server's limit.
    NothingFits,
    /// The author's `acct` is not a plain `user` or `user@domain` handle, so it cannot be
    /// written into a reply safely.
    UnusableAcct,
    /// The author had `per_account_per_hour` replies in the last hour.
    AccountCap,
    /// The bot sent `per_hour` replies in the last hour.
    HourCap,
    /// The server refused the reply for good (e.g. 422).
    Refused,
}

/// A reply in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyIntent {
    pub notification: String,
    /// The mentioning status, which the reply answers (`in_reply_to_id`).
    pub status: String,
    pub acct: String,
    /// The exact text to send (composed from the config's guides, never from the mention).
    pub text: String,
    pub visibility: Visibility,
    /// Sent as `Idempotency-Key`.
    pub idempotency_key: String,
    /// When the intent was written.
    pub started: Timestamp,
    /// What the network chose before the reply was first sent, to recognise it by (a record
    /// key); none on the Mastodon API, where the mentioning status does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl State {
    /// Sets every time in the state that lies more than `margin` after `now` to `now`, and
    /// says how many there were. Such times were written while the clock was ahead; left as
    /// they are, they would hold the schedule back (slots at or before `last_slot` are never
    /// considered) until real time caught up with them.
    pub fn clamp_future(&mut self, now: Timestamp, margin: jiff::SignedDuration) -> usize {
        let limit = now.checked_add(margin).unwrap_or(Timestamp::MAX);
        let mut clamped = 0;
        // The rotation's position goes back to the last slot actually posted (a slot at or
        // before it is never considered again), and the missed-slot check starts afresh.
        if self.rotation.last_slot.is_some_and(|slot| slot > limit) {
            self.rotation.last_slot = self
                .history
                .iter()
                .map(|posted| posted.slot)
                .filter(|slot| *slot <= limit)
                .max();
            clamped += 1;
        }
        if self.rotation.checked.is_some_and(|checked| checked > limit) {
            self.rotation.checked = None;
            clamped += 1;
        }
        let mut clamp = |time: &mut Timestamp| {
            if *time > limit {
                *time = now;
                clamped += 1;
            }
        };
        for posted in &mut self.history {
            // `slot` stays: it names the slot the post was for.
            clamp(&mut posted.at);
        }
        if let Some(pending) = &mut self.pending {
            clamp(&mut pending.started);
        }
        for failed in self.failed.values_mut() {
            clamp(&mut failed.at);
        }
        for handled in &mut self.mentions.handled {
            clamp(&mut handled.at);
        }
        if let Some(caught_up) = &mut self.mentions.caught_up {
            clamp(caught_up);
        }
        for pending in &mut self.mentions.pending {
            clamp(&mut pending.started);
        }
        clamped
    }

    /// The last time `post` went out, if ever. A scan of the history (bounded by [`prune`]);
    /// the planner builds its own index in one pass instead.
    pub fn last_posted(&self, post: &str) -> Option<Timestamp> {
        self.history
            .iter()
            .rev()
            .find(|entry| entry.post == post)
            .map(|entry| entry.at)
    }
}

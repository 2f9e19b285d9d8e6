//! Sends one post (every part of its thread) exactly once, whatever the network and the
//! server do (README.md, "Running the daemon"; ARCHITECTURE.md, "Exactly once"):
//!
//! 1. The intent (post, version, slot, the exact text of every part) is saved before the
//!    first request; each part's status id is saved as soon as the server accepts it.
//! 2. After a failure that may have reached the server (a timeout, a connection lost
//!    before the answer, a 5xx), and when resuming an intent left by an earlier run, the
//!    account's own recent statuses are searched for the part before it is sent again. A
//!    half-posted thread resumes from the next part, replying to the last one found.
//!    The first part must be newer than the newest own status seen just before it was first
//!    sent (ids grow with time), so neither an older identical status nor the local clock
//!    can make a false match.
//! 3. Retryable failures are retried ([`crate::network::retry::wait`]: the server's `Retry-After` /
//!    `X-RateLimit-Reset` capped at an hour, never less than the jittered backoff) until the
//!    deadline; a post none of whose parts went out is then dropped (the slot is missed,
//!    never posted late), while a thread already started is finished later. Sending never
//!    sleeps: it returns [`Outcome::Retry`] and the daemon schedules the next try, answering
//!    mentions meanwhile.
//! 4. Only the server's verdict that the status is invalid (422, GoToSocial's 400) marks this
//!    version of the post failed, until its file or the fitting settings change; the parts
//!    already out are kept in the history. A refused token (401/403) is the daemon's
//!    condition and fails nothing; anything else (3xx, 404, 5xx, 429, network) is retried.
//!
//! `Idempotency-Key` is sent too (Mastodon honours it), in addition to step 2, not instead.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::daemon::clock::Clock;
use crate::daemon::engine::{Checkpoint, Engine};
use crate::network::{Disposition, Network, ServerError};
use crate::posts::post::Post;
use crate::state::{
    FailedPost, IntentMedia, IntentPart, PostIntent, PostReason, Posted, State, StateError,
    StateStore,
};
use crate::text::compose::Composed;

/// How one try at sending ended. Sending never sleeps: a retry is the caller's to schedule
/// (the daemon answers mentions meanwhile), with [`Progress`] carried to the next try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every part is out; recorded in the history.
    Sent { statuses: Vec<String> },
    /// The server judged the post invalid (422, GoToSocial's 400), or it cannot be sent as
    /// composed; this version of the post is marked failed until its file or the fitting
    /// settings change.
    Rejected { message: String },
    /// Try again after `wait`, with `progress`; the intent stays pending. `token_refused`:
    /// the server refused the token (401/403), the daemon's condition, not the post's.
    Retry {
        wait: Duration,
        progress: Progress,
        reason: String,
        token_refused: bool,
    },
    /// Not now: the post's time has passed, or the daemon is stopping. When a part is out or
    /// may be, the intent stays pending and is resolved first next time.
    Deferred { reason: String, still_pending: bool },
}

/// What one try leaves for the next: how many tries failed in a row, whether the last
/// failure may have reached the server (so the next try looks for the part first), and the
/// media already uploaded for the first part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub attempt: u32,
    pub must_look: bool,
    media_ids: Option<Vec<String>>,
}

impl Progress {
    /// Resuming an intent left by an earlier run (or a deferral): look first.
    pub fn resume() -> Progress {
        Progress {
            must_look: true,
            ..Progress::default()
        }
    }
}

/// How long an intent whose parts cannot be looked for (the own-status search keeps failing)
/// may hold the schedule back. Past its deadline (nothing out) or this long after it started
/// (a thread partly out), it is recorded as possibly posted and the schedule goes on: never
/// twice rather than never silent for good.
const UNVERIFIABLE_AFTER: SignedDuration = SignedDuration::from_hours(24);
/// What a post is sent for, and with what.
#[derive(Debug, Clone)]
pub struct IntentSpec {
    pub slot: Timestamp,
    pub reason: PostReason,
    pub credit_after: Option<std::collections::BTreeMap<String, f64>>,
    /// [`settings_fingerprint`] of what it was composed with.
    pub settings: String,
}

/// The intent to send `composed` (the composition of `post`).
pub fn new_intent(
    post: &Post,
    composed: &Composed,
    spec: IntentSpec,
    now: Timestamp,
) -> PostIntent {
    let first = composed.statuses.first();
    PostIntent {
        post: post.id.clone(),
        hash: post.content_hash.clone(),
        slot: spec.slot,
        reason: spec.reason,
        category: post.category.clone(),
        started: now,
        visibility: first.map_or(crate::posts::config::Visibility::Public, |s| s.visibility),
        language: first.map(|s| s.language.clone()).filter(|l| !l.is_empty()),
        media: post
            .media
            .iter()
            .map(|media| IntentMedia {
                path: media.path.clone(),
                alt: media.alt.clone(),
            })
            .collect(),
        credit_after: spec.credit_after,
        settings: Some(spec.settings),
        account: None,
        after_status: None,
        after_status_read: false,
        parts: composed
            .statuses
            .iter()
            .enumerate()
            .map(|(index, status)| IntentPart {
                text: status.text.clone(),
                spoiler_text: Some(status.spoiler_text.clone()).filter(|s| !s.is_empty()),
                visibility: Some(status.visibility),
                language: Some(status.language.clone()).filter(|l| !l.is_empty()),
                idempotency_key: idempotency_key(post, spec.slot, index),
                status_id: None,
            })
            .collect(),
    }
}

/// What a post was fitted with, as a short stable string: a failed post is tried again when
/// this changes (the limit was fixed, `long_posts` changed...).
pub fn settings_fingerprint(settings: &crate::text::compose::FitSettings<'_>) -> String {
    use sha2::Digest;
    let counter = settings.counter;
    let digest = sha2::Sha256::digest(format!(
        "{:?}\n{}\n{}\n{:?}\n{}\n{:?}\n{:?}\n{}",
        counter.software(),
        counter.limit(),
        counter.characters_reserved_per_url(),
        settings.long_posts,
        settings.max_thread,
        settings.default_hashtags,
        settings.visibility,
        settings.language,
    ));
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Stable for a post version, slot and part: a resend after a restart carries the same key.
fn idempotency_key(post: &Post, slot: Timestamp, part: usize) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!(
        "{}\n{}\n{}\n{}",
        post.id,
        post.content_hash,
        slot.as_second(),
        part
    ));
    format!(
        "perennial-{}",
        digest[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    )
}

/// Sends the pending intent of `state`.
pub struct Publisher<'a> {
    pub network: &'a dyn Network,
    pub store: &'a StateStore,
    pub clock: &'a dyn Clock,
    /// Checked between parts: a thread stops after the part in flight (the rest is sent
    /// next time), and a retry is not scheduled.
    pub shutdown: &'a CancellationToken,
    pub checkpoint: Option<&'a Checkpoint>,
}

impl Publisher<'_> {
    /// Saves `intent` as pending and makes the first try. `deadline`: when to stop retrying
    /// a post none of whose parts went out.
    pub async fn publish(
        &self,
        state: &mut State,
        mut intent: PostIntent,
        deadline: Timestamp,
    ) -> Result<Outcome, StateError> {
        debug_assert!(state.pending.is_none(), "one post in flight at a time");
        intent.account = Some(self.network.account().id.clone());
        self.engine().begin(state, &intent).await?;
        self.try_pending(state, deadline, Progress::default()).await
    }

    /// One more try at the pending intent (after an [`Outcome::Retry`], or with
    /// [`Progress::resume`] for an intent an earlier run left): looks for the part among the
    /// account's statuses first when the last failure may have reached the server. A post
    /// none of whose parts went out is sent only while `deadline` has not passed.
    pub async fn try_pending(
        &self,
        state: &mut State,
        deadline: Timestamp,
        mut progress: Progress,
    ) -> Result<Outcome, StateError> {
        let Some(mut intent) = state.pending.clone() else {
            return Ok(Outcome::Deferred {
                reason: "nothing pending".into(),
                still_pending: false,
            });
        };
        if let Some(account) = &intent.account {
            if account != &self.network.account().id {
                return self.unverifiable(
                    state,
                    &intent,
                    format!(
                        "it was being sent by another account (id {account}), whose statuses this token cannot search"
                    ),
                );
            }
        }
        for index in 0..intent.parts.len() {
            if intent.parts[index].status_id.is_some() {
                continue;
            }
            if let Some(outcome) = self
                .try_part(state, &mut intent, index, deadline, &mut progress)
                .await?
            {
                return Ok(outcome);
            }
        }
        // Every part is out.
        let statuses = sent_ids(&intent);
        self.record_sent(state, &intent, statuses.clone());
        self.save(state)?;
        Ok(Outcome::Sent { statuses })
    }

    /// One part: looked for first when the last try may have reached the server, else sent
    /// (the first with what it needs first). `None`: the part is out, go on to the next.
    async fn try_part(
        &self,
        state: &mut State,
        intent: &mut PostIntent,
        index: usize,
        deadline: Timestamp,
        progress: &mut Progress,
    ) -> Result<Option<Outcome>, StateError> {
        if progress.must_look {
            match self.engine().look(state, intent, index).await? {
                Ok(Some(id)) => {
                    tracing::info!(post = %intent.post, part = index + 1, status = %id, "found the part already posted; not sending it again");
                    return Ok(None);
                }
                Ok(None) => progress.must_look = false,
                Err(error) => {
                    return self
                        .cannot_look(state, intent, &error, progress.clone(), deadline)
                        .map(Some)
                }
            }
        }
        let nothing_out = intent.parts.iter().all(|part| part.status_id.is_none());
        if nothing_out && self.clock.now() > deadline {
            let reason = format!("its time has passed (deadline {deadline})");
            return self.defer(state, intent, reason, false).map(Some);
        }
        if index == 0 {
            if let Some(outcome) = self.before_first(state, intent, deadline, progress).await? {
                return Ok(Some(outcome));
            }
        }
        let media_ids = progress.media_ids.clone().unwrap_or_default();
        match self.engine().send(state, intent, index, &media_ids).await? {
            Ok(id) => {
                tracing::info!(post = %intent.post, part = index + 1, of = intent.parts.len(), status = %id, "posted");
                progress.attempt = 0;
                let sent = index + 1;
                if sent < intent.parts.len() && self.shutdown.is_cancelled() {
                    let reason = format!(
                        "the daemon is stopping after part {sent} of {}; the rest is sent next time",
                        intent.parts.len()
                    );
                    return self.defer(state, intent, reason, true).map(Some);
                }
                Ok(None)
            }
            Err(error) if error.disposition() == Disposition::Invalid => {
                let message = error
                    .server_message()
                    .map(str::to_string)
                    .unwrap_or_else(|| error.to_string());
                self.reject(state, intent, message).map(Some)
            }
            Err(error) => {
                progress.must_look = error.uncertain();
                self.retry_after(state, intent, &error, progress.clone(), deadline)
                    .map(Some)
            }
        }
    }

    /// Before the first part is first sent: what will recognise it later
    /// ([`Engine::prepare`]), and its media uploaded. `Some`: not now.
    async fn before_first(
        &self,
        state: &mut State,
        intent: &mut PostIntent,
        deadline: Timestamp,
        progress: &mut Progress,
    ) -> Result<Option<Outcome>, StateError> {
        match self.engine().prepare(state, intent).await? {
            Ok(()) => {}
            // A refused token, or a server asking us to wait (429, a 503 with `Retry-After`):
            // the post would be refused too, so wait first.
            Err(error)
                if error.disposition() == Disposition::TokenRefused
                    || error.retry_after().is_some() =>
            {
                return self
                    .retry_after(state, intent, &error, progress.clone(), deadline)
                    .map(Some)
            }
            Err(error) => {
                // A broken search must not stop posting: without the bound, a part lost in
                // flight is looked for by time, as before the bound existed.
                tracing::warn!(post = %intent.post, %error, "cannot read the newest own status before sending; sending anyway");
            }
        }
        // Media go with the first part.
        if progress.media_ids.is_none() {
            match self.upload_media(intent).await {
                Ok(ids) => progress.media_ids = Some(ids),
                Err(error) if error.disposition() == Disposition::Invalid => {
                    return self.reject(state, intent, error.to_string()).map(Some);
                }
                Err(error) => {
                    return self
                        .retry_after(state, intent, &error, progress.clone(), deadline)
                        .map(Some)
                }
            }
        }
        Ok(None)
    }

    fn engine(&self) -> Engine<'_> {
        Engine {
            network: self.network,
            store: self.store,
            checkpoint: self.checkpoint,
        }
    }

    /// The part cannot be looked for. Past the post's deadline (nothing out) or a day after it
    /// started (a thread partly out), it is recorded as possibly posted; else retried.
    fn cannot_look(
        &self,
        state: &mut State,
        intent: &PostIntent,
        error: &ServerError,
        progress: Progress,
        deadline: Timestamp,
    ) -> Result<Outcome, StateError> {
        let now = self.clock.now();
        let nothing_out = intent.parts.iter().all(|p| p.status_id.is_none());
        let gave_up = (nothing_out && now > deadline)
            || now
                > intent
                    .started
                    .checked_add(UNVERIFIABLE_AFTER)
                    .unwrap_or(Timestamp::MAX);
        if gave_up && error.disposition() != Disposition::TokenRefused {
            return self.unverifiable(
                state,
                intent,
                format!("the account's statuses cannot be searched: {error}"),
            );
        }
        self.retry_after(state, intent, error, progress, deadline)
    }

    async fn upload_media(&self, intent: &PostIntent) -> Result<Vec<String>, ServerError> {
        let mut ids = Vec::with_capacity(intent.media.len());
        for media in &intent.media {
            ids.push(self.network.upload_media(&media.path, &media.alt).await?);
        }
        Ok(ids)
    }

    /// After a failure: when to try again, or why not to.
    fn retry_after(
        &self,
        state: &mut State,
        intent: &PostIntent,
        error: &ServerError,
        mut progress: Progress,
        deadline: Timestamp,
    ) -> Result<Outcome, StateError> {
        let wait = crate::network::retry::wait(error.retry_after(), progress.attempt);
        progress.attempt = progress.attempt.saturating_add(1);
        let token_refused = error.disposition() == Disposition::TokenRefused;
        let nothing_out = intent.parts.iter().all(|part| part.status_id.is_none());
        let resume_at = self
            .clock
            .now()
            .checked_add(SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
        if self.shutdown.is_cancelled() {
            return self.defer(
                state,
                intent,
                format!("{error}; the daemon is stopping"),
                progress.must_look,
            );
        }
        if nothing_out && resume_at > deadline {
            return self.defer(
                state,
                intent,
                format!(
                    "{error}; the next try (in {} s) would be after the deadline {deadline}",
                    wait.as_secs()
                ),
                progress.must_look,
            );
        }
        if !token_refused {
            tracing::warn!(post = %intent.post, %error, wait_seconds = wait.as_secs(), "sending failed; will retry");
        }
        Ok(Outcome::Retry {
            wait,
            progress,
            reason: error.to_string(),
            token_refused,
        })
    }

    fn record_sent(&self, state: &mut State, intent: &PostIntent, statuses: Vec<String>) {
        let now = self.clock.now();
        state.history.push(Posted {
            post: intent.post.clone(),
            hash: intent.hash.clone(),
            slot: intent.slot,
            at: now,
            reason: intent.reason,
            category: intent.category.clone(),
            statuses,
        });
        if intent.reason == PostReason::Slot {
            crate::plan::record_slot(state, intent.slot, intent.credit_after.as_ref());
        }
        state.failed.remove(&intent.post);
        state.pending = None;
    }

    /// An intent whose parts cannot be looked for: recorded as (possibly) posted, with the
    /// parts known to be out, and never sent again; the schedule goes on.
    fn unverifiable(
        &self,
        state: &mut State,
        intent: &PostIntent,
        why: String,
    ) -> Result<Outcome, StateError> {
        tracing::error!(post = %intent.post, reason = %why, "cannot tell whether this post went out; it is recorded as posted and not sent again (never twice), and the schedule goes on");
        self.record_sent(state, intent, sent_ids(intent));
        self.save(state)?;
        Ok(Outcome::Deferred {
            reason: why,
            still_pending: false,
        })
    }

    /// Fails this version of the post without sending anything (it cannot be sent as
    /// composed: [`crate::text::compose::Composed::unsendable`]).
    pub fn refuse(
        &self,
        state: &mut State,
        intent: &PostIntent,
        message: String,
        settings: &str,
    ) -> Result<Outcome, StateError> {
        tracing::error!(post = %intent.post, %message, "the post cannot be sent as composed; it is left out until its file or the settings change");
        self.mark_failed(state, intent, message, Some(settings.to_string()))
    }

    fn reject(
        &self,
        state: &mut State,
        intent: &PostIntent,
        message: String,
    ) -> Result<Outcome, StateError> {
        tracing::error!(post = %intent.post, %message, "the server refused the post; it is left out until its file or the settings change");
        let sent = sent_ids(intent);
        if !sent.is_empty() {
            // Part of a thread is out: that much is history.
            self.record_sent(state, intent, sent);
        }
        state.pending = None;
        self.mark_failed(state, intent, message, intent.settings.clone())
    }

    /// Leaves this version of the post out of the plan until its file or the fitting
    /// settings change, and saves.
    fn mark_failed(
        &self,
        state: &mut State,
        intent: &PostIntent,
        message: String,
        settings: Option<String>,
    ) -> Result<Outcome, StateError> {
        state.failed.insert(
            intent.post.clone(),
            FailedPost {
                hash: intent.hash.clone(),
                at: self.clock.now(),
                message: message.clone(),
                settings,
            },
        );
        self.save(state)?;
        Ok(Outcome::Rejected { message })
    }

    /// Gives up for now. The intent stays pending when a part is out or may be out.
    fn defer(
        &self,
        state: &mut State,
        intent: &PostIntent,
        reason: String,
        may_be_out: bool,
    ) -> Result<Outcome, StateError> {
        let any_out = intent.parts.iter().any(|part| part.status_id.is_some());
        let still_pending = any_out || may_be_out;
        if still_pending {
            tracing::warn!(post = %intent.post, %reason, "not finished; it will be checked and completed first thing next time");
            state.pending = Some(intent.clone());
        } else {
            tracing::warn!(post = %intent.post, %reason, "not posted");
            state.pending = None;
        }
        self.save(state)?;
        Ok(Outcome::Deferred {
            reason,
            still_pending,
        })
    }

    fn save(&self, state: &State) -> Result<(), StateError> {
        self.store.save(state)
    }
}

/// The ids of the parts of `intent` known to be out, in order.
fn sent_ids(intent: &PostIntent) -> Vec<String> {
    intent
        .parts
        .iter()
        .filter_map(|part| part.status_id.clone())
        .collect()
}

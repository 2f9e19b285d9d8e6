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

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::daemon::clock::Clock;
use crate::network::mastodon::{Disposition, NewStatus, OwnStatus, Server, ServerError};
use crate::posts::post::Post;
use crate::state::{
    FailedPost, IntentMedia, IntentPart, PostIntent, PostReason, Posted, State, StateError,
    StateStore,
};
use crate::text::compose::Composed;

/// Points in the sending of a post where a test can stop the daemon dead, as a crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The intent is saved; nothing is sent yet.
    IntentSaved,
    /// Part `n` (from 0) is about to be sent.
    BeforePart(usize),
    /// The server accepted part `n`; its id is not saved yet.
    Accepted(usize),
    /// Part `n`'s id is saved.
    Recorded(usize),
    /// A reply to a mention: its intent is saved; nothing is sent yet.
    ReplyIntentSaved,
    /// The server accepted the reply; that is not saved yet.
    ReplyAccepted,
}

/// A test hook: called at each [`Step`]; returning `true` stops the task there for good
/// (the test then aborts it, as a crash would). `None` in production.
pub type Checkpoint = Arc<dyn Fn(Step) -> bool + Send + Sync>;

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
/// How many of the account's latest statuses are searched (Mastodon's largest page).
pub(crate) const OWN_STATUSES_SEARCHED: usize = 40;
/// Intents written before `after_status` existed are matched by time: a status created this
/// long before the intent was written may still be ours (clock skew).
const LEGACY_CLOCK_SKEW: SignedDuration = SignedDuration::from_secs(300);

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
    pub server: &'a Server,
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
        intent.account = Some(self.server.account().id.clone());
        state.pending = Some(intent);
        self.save(state)?;
        self.halt(Step::IntentSaved).await;
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
            if account != &self.server.account().id {
                return self.unverifiable(
                    state,
                    &intent,
                    format!(
                        "it was being sent by another account (id {account}), whose statuses this token cannot search"
                    ),
                );
            }
        }
        let mut index = 0;
        while index < intent.parts.len() {
            if intent.parts[index].status_id.is_some() {
                index += 1;
                continue;
            }
            let in_reply_to = if index == 0 {
                None
            } else {
                intent.parts[index - 1].status_id.clone()
            };
            if progress.must_look {
                match self.find_sent(&intent, index, in_reply_to.as_deref()).await {
                    Ok(Some(id)) => {
                        tracing::info!(post = %intent.post, part = index + 1, status = %id, "found the part already posted; not sending it again");
                        intent.parts[index].status_id = Some(id);
                        state.pending = Some(intent.clone());
                        self.save(state)?;
                        index += 1;
                        continue;
                    }
                    Ok(None) => progress.must_look = false,
                    Err(error) => {
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
                                &intent,
                                format!("the account's statuses cannot be searched: {error}"),
                            );
                        }
                        return self.retry_after(state, &intent, &error, progress, deadline);
                    }
                }
            }
            let nothing_out = intent.parts.iter().all(|part| part.status_id.is_none());
            if nothing_out && self.clock.now() > deadline {
                return self.defer(
                    state,
                    &intent,
                    format!("its time has passed (deadline {deadline})"),
                    false,
                );
            }
            if index == 0 && !intent.after_status_read {
                // The newest own status before the first send: a first part found later
                // must be newer (ids grow with time), whatever the local clock says.
                match self.server.newest_own_status_id().await {
                    Ok(newest) => {
                        intent.after_status = newest;
                        intent.after_status_read = true;
                        state.pending = Some(intent.clone());
                        self.save(state)?;
                    }
                    // A refused token, or a server asking us to wait (429, a 503 with
                    // `Retry-After`): the post would be refused too, so wait first.
                    Err(error)
                        if error.disposition() == Disposition::TokenRefused
                            || error.retry_after().is_some() =>
                    {
                        return self.retry_after(state, &intent, &error, progress, deadline)
                    }
                    Err(error) => {
                        // A broken search must not stop posting: without the bound, a part
                        // lost in flight is looked for by time, as before the bound existed.
                        tracing::warn!(post = %intent.post, %error, "cannot read the newest own status before sending; sending anyway");
                    }
                }
            }
            // Media go with the first part.
            if index == 0 && progress.media_ids.is_none() {
                match self.upload_media(&intent).await {
                    Ok(ids) => progress.media_ids = Some(ids),
                    Err(error) if error.disposition() == Disposition::Invalid => {
                        return self.reject(state, &intent, error.to_string());
                    }
                    Err(error) => {
                        return self.retry_after(state, &intent, &error, progress, deadline)
                    }
                }
            }
            let part = &intent.parts[index];
            let status = NewStatus {
                text: part.text.clone(),
                spoiler_text: part.spoiler_text.clone(),
                visibility: part.visibility.unwrap_or(intent.visibility),
                language: part.language.clone().or_else(|| intent.language.clone()),
                in_reply_to_id: in_reply_to,
                media_ids: if index == 0 {
                    progress.media_ids.clone().unwrap_or_default()
                } else {
                    Vec::new()
                },
                idempotency_key: Some(part.idempotency_key.clone()),
            };
            self.halt(Step::BeforePart(index)).await;
            match self.server.post_status(&status).await {
                Ok(posted) => {
                    self.halt(Step::Accepted(index)).await;
                    tracing::info!(post = %intent.post, part = index + 1, of = intent.parts.len(), status = %posted.id, "posted");
                    intent.parts[index].status_id = Some(posted.id);
                    state.pending = Some(intent.clone());
                    self.save(state)?;
                    self.halt(Step::Recorded(index)).await;
                    progress.attempt = 0;
                    index += 1;
                    if index < intent.parts.len() && self.shutdown.is_cancelled() {
                        return self.defer(
                            state,
                            &intent,
                            format!(
                                "the daemon is stopping after part {index} of {}; the rest is sent next time",
                                intent.parts.len()
                            ),
                            true,
                        );
                    }
                }
                Err(error) if error.disposition() == Disposition::Invalid => {
                    let message = error
                        .server_message()
                        .map(str::to_string)
                        .unwrap_or_else(|| error.to_string());
                    return self.reject(state, &intent, message);
                }
                Err(error) => {
                    progress.must_look = error.uncertain();
                    return self.retry_after(state, &intent, &error, progress, deadline);
                }
            }
        }
        // Every part is out.
        let statuses: Vec<String> = intent
            .parts
            .iter()
            .filter_map(|part| part.status_id.clone())
            .collect();
        self.record_sent(state, &intent, statuses.clone());
        self.save(state)?;
        Ok(Outcome::Sent { statuses })
    }

    /// Looks among the account's latest statuses for part `index` of `intent`. The first
    /// part must be newer than the newest own status seen before it was sent (no clock
    /// involved); a later part must reply to the part before it, which only ours can.
    async fn find_sent(
        &self,
        intent: &PostIntent,
        index: usize,
        in_reply_to: Option<&str>,
    ) -> Result<Option<String>, ServerError> {
        let part = &intent.parts[index];
        let after = if index == 0 && intent.after_status_read {
            intent.after_status.as_deref()
        } else {
            None
        };
        let statuses = self
            .server
            .own_statuses_after(OWN_STATUSES_SEARCHED, after)
            .await?;
        // An intent written before `after_status` existed: the old rule, by time.
        let legacy_earliest = (index == 0 && !intent.after_status_read).then(|| {
            intent
                .started
                .checked_sub(LEGACY_CLOCK_SKEW)
                .unwrap_or(Timestamp::MIN)
        });
        Ok(statuses
            .iter()
            .filter(|status| legacy_earliest.is_none_or(|earliest| status.created_at >= earliest))
            .filter(|status| status.in_reply_to_id.as_deref() == in_reply_to)
            // The oldest match: the first copy is the one that counts. `own_statuses` is
            // newest first.
            .rfind(|status| is_same_status(status, part))
            .map(|status| status.id.clone()))
    }

    async fn upload_media(&self, intent: &PostIntent) -> Result<Vec<String>, ServerError> {
        let mut ids = Vec::with_capacity(intent.media.len());
        for media in &intent.media {
            ids.push(self.server.upload_media(&media.path, &media.alt).await?);
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
        let sent: Vec<String> = intent
            .parts
            .iter()
            .filter_map(|part| part.status_id.clone())
            .collect();
        self.record_sent(state, intent, sent);
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
        state.failed.insert(
            intent.post.clone(),
            FailedPost {
                hash: intent.hash.clone(),
                at: self.clock.now(),
                message: message.clone(),
                settings: Some(settings.to_string()),
            },
        );
        self.save(state)?;
        Ok(Outcome::Rejected { message })
    }

    fn reject(
        &self,
        state: &mut State,
        intent: &PostIntent,
        message: String,
    ) -> Result<Outcome, StateError> {
        tracing::error!(post = %intent.post, %message, "the server refused the post; it is left out until its file or the settings change");
        let sent: Vec<String> = intent
            .parts
            .iter()
            .filter_map(|part| part.status_id.clone())
            .collect();
        if !sent.is_empty() {
            // Part of a thread is out: that much is history.
            self.record_sent(state, intent, sent);
        }
        state.pending = None;
        state.failed.insert(
            intent.post.clone(),
            FailedPost {
                hash: intent.hash.clone(),
                at: self.clock.now(),
                message: message.clone(),
                settings: intent.settings.clone(),
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

    /// Gives a test's checkpoint its say; one that halts here never returns (the test then
    /// aborts the task, as a crash would).
    async fn halt(&self, step: Step) {
        halt(self.checkpoint, step).await;
    }
}

/// Stops here for good when the test hook says so (as a crash would, once the test aborts
/// the task); nothing in production.
pub(crate) async fn halt(checkpoint: Option<&Checkpoint>, step: Step) {
    if let Some(checkpoint) = checkpoint {
        if checkpoint(step) {
            std::future::pending::<()>().await;
        }
    }
}

/// Whether a status read back is the part we meant to send. The server's HTML loses some
/// detail (a remote mention's domain, whitespace), so both sides are compared as their
/// letters and digits, lower-cased, without `@mentions`.
fn is_same_status(status: &OwnStatus, part: &IntentPart) -> bool {
    fingerprint(&status.text) == fingerprint(&part.text)
        && fingerprint(&status.spoiler_text)
            == fingerprint(part.spoiler_text.as_deref().unwrap_or(""))
}

fn fingerprint(text: &str) -> String {
    text.split_whitespace()
        .filter(|word| !word.starts_with('@'))
        .flat_map(|word| word.chars())
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_what_html_loses() {
        assert_eq!(
            fingerprint("@alice@example.org Hello,\n\nworld! https://example.org/a?b=1"),
            fingerprint("@alice Hello, world! https://example.org/a?b=1")
        );
        assert_ne!(
            fingerprint("Hello world 1/3"),
            fingerprint("Hello world 2/3")
        );
    }
}

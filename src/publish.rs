//! Sends one post (every part of its thread) exactly once, whatever the network and the
//! server do (product.md §4):
//!
//! 1. The intent (post, version, slot, the exact text of every part) is saved before the
//!    first request; each part's status id is saved as soon as the server accepts it.
//! 2. After a failure that may have reached the server (a timeout, a connection lost
//!    before the answer, a 5xx), and when resuming an intent left by an earlier run, the
//!    account's own recent statuses are searched for the part before it is sent again. A
//!    half-posted thread resumes from the next part, replying to the last one found.
//! 3. Retryable failures wait (the server's `Retry-After` / `X-RateLimit-Reset`, else
//!    exponential backoff with full jitter, capped at 5 minutes) until the deadline; a
//!    post none of whose parts went out is then dropped (the slot is missed, never posted
//!    late), while a thread already started is finished later.
//! 4. A permanent rejection (422, GoToSocial's 400) marks this version of the post failed
//!    until its file changes; the parts already out are kept in the history.
//!
//! `Idempotency-Key` is sent too (Mastodon honours it), in addition to step 2, not instead.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::compose::Composed;
use crate::post::Post;
use crate::server::{NewStatus, OwnStatus, Server, ServerError};
use crate::state::{
    FailedPost, IntentMedia, IntentPart, PostIntent, PostReason, Posted, State, StateError,
    StateStore,
};

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

/// How sending ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every part is out; recorded in the history.
    Sent { statuses: Vec<String> },
    /// The server refused it for good; this version of the post is marked failed.
    Rejected { message: String },
    /// Not now: the server could not be reached in time, or the daemon is stopping. When a
    /// part is out or may be, the intent stays pending and is resolved first next time.
    Deferred { reason: String, still_pending: bool },
}

/// Backoff: the first wait, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A status created this long before the intent was written may still be ours (clock skew
/// between this machine and the server).
pub(crate) const CLOCK_SKEW: SignedDuration = SignedDuration::from_secs(300);
/// How many of the account's latest statuses are searched (Mastodon's largest page).
pub(crate) const OWN_STATUSES_SEARCHED: usize = 40;

/// What a post is sent for, and with what.
#[derive(Debug, Clone)]
pub struct IntentSpec {
    pub slot: Timestamp,
    pub reason: PostReason,
    pub credit_after: Option<std::collections::BTreeMap<String, f64>>,
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
        visibility: first.map_or(crate::config::Visibility::Public, |s| s.visibility),
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
    pub shutdown: &'a CancellationToken,
    pub checkpoint: Option<&'a Checkpoint>,
}

enum Wait {
    /// Waited; go on.
    Done,
    /// The deadline would pass, or the daemon is stopping.
    GiveUp(String),
}

impl Publisher<'_> {
    /// Saves `intent` as pending and sends it. `deadline`: when to stop retrying a post
    /// none of whose parts went out.
    pub async fn publish(
        &self,
        state: &mut State,
        intent: PostIntent,
        deadline: Timestamp,
    ) -> Result<Outcome, StateError> {
        debug_assert!(state.pending.is_none(), "one post in flight at a time");
        state.pending = Some(intent);
        self.save(state)?;
        self.halt(Step::IntentSaved).await;
        self.send_pending(state, deadline, false).await
    }

    /// Finishes the intent an earlier run left pending: looks for each part among the
    /// account's statuses first. A post none of whose parts went out is sent only while
    /// `deadline` has not passed; otherwise it is dropped.
    pub async fn resume(
        &self,
        state: &mut State,
        deadline: Timestamp,
    ) -> Result<Outcome, StateError> {
        self.send_pending(state, deadline, true).await
    }

    async fn send_pending(
        &self,
        state: &mut State,
        deadline: Timestamp,
        resuming: bool,
    ) -> Result<Outcome, StateError> {
        let Some(mut intent) = state.pending.clone() else {
            return Ok(Outcome::Deferred {
                reason: "nothing pending".into(),
                still_pending: false,
            });
        };
        let mut must_look = resuming;
        let mut attempt = 0u32;
        let mut media_ids: Option<Vec<String>> = None;
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
            if must_look {
                match self.find_sent(&intent, index, in_reply_to.as_deref()).await {
                    Ok(Some(id)) => {
                        tracing::info!(post = %intent.post, part = index + 1, status = %id, "found the part already posted; not sending it again");
                        intent.parts[index].status_id = Some(id);
                        state.pending = Some(intent.clone());
                        self.save(state)?;
                        index += 1;
                        continue;
                    }
                    Ok(None) => must_look = false,
                    Err(error) => {
                        match self
                            .wait_after(&error, &mut attempt, &intent, deadline)
                            .await
                        {
                            Wait::Done => continue,
                            Wait::GiveUp(reason) => {
                                return self.defer(state, &intent, reason, true)
                            }
                        }
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
            // Media go with the first part.
            if index == 0 && media_ids.is_none() {
                match self.upload_media(&intent).await {
                    Ok(ids) => media_ids = Some(ids),
                    Err(error) if error.retryable() => {
                        match self
                            .wait_after(&error, &mut attempt, &intent, deadline)
                            .await
                        {
                            Wait::Done => continue,
                            Wait::GiveUp(reason) => {
                                return self.defer(state, &intent, reason, false)
                            }
                        }
                    }
                    Err(error) => return self.reject(state, &intent, error.to_string()),
                }
            }
            let part = &intent.parts[index];
            let status = NewStatus {
                text: part.text.clone(),
                spoiler_text: part.spoiler_text.clone(),
                visibility: intent.visibility,
                language: intent.language.clone(),
                in_reply_to_id: in_reply_to,
                media_ids: if index == 0 {
                    media_ids.clone().unwrap_or_default()
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
                    attempt = 0;
                    index += 1;
                }
                Err(error) if !error.retryable() => {
                    let message = error
                        .server_message()
                        .map(str::to_string)
                        .unwrap_or_else(|| error.to_string());
                    return self.reject(state, &intent, message);
                }
                Err(error) => {
                    must_look = error.uncertain();
                    tracing::warn!(post = %intent.post, part = index + 1, %error, "sending failed; will retry");
                    match self
                        .wait_after(&error, &mut attempt, &intent, deadline)
                        .await
                    {
                        Wait::Done => {}
                        Wait::GiveUp(reason) => {
                            return self.defer(state, &intent, reason, must_look)
                        }
                    }
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

    /// Looks among the account's latest statuses for part `index` of `intent`.
    async fn find_sent(
        &self,
        intent: &PostIntent,
        index: usize,
        in_reply_to: Option<&str>,
    ) -> Result<Option<String>, ServerError> {
        let part = &intent.parts[index];
        let statuses = self.server.own_statuses(OWN_STATUSES_SEARCHED).await?;
        let earliest = intent.started - CLOCK_SKEW;
        Ok(statuses
            .iter()
            .filter(|status| status.created_at >= earliest)
            .filter(|status| status.in_reply_to_id.as_deref() == in_reply_to)
            .filter(|status| is_same_status(status, part))
            // The oldest match: the first copy is the one that counts.
            .min_by_key(|status| status.created_at)
            .map(|status| status.id.clone()))
    }

    async fn upload_media(&self, intent: &PostIntent) -> Result<Vec<String>, ServerError> {
        let mut ids = Vec::with_capacity(intent.media.len());
        for media in &intent.media {
            ids.push(self.server.upload_media(&media.path, &media.alt).await?);
        }
        Ok(ids)
    }

    /// Waits before the next try, or says why not to try again.
    async fn wait_after(
        &self,
        error: &ServerError,
        attempt: &mut u32,
        intent: &PostIntent,
        deadline: Timestamp,
    ) -> Wait {
        let wait = error.retry_after().unwrap_or_else(|| backoff(*attempt));
        *attempt = attempt.saturating_add(1);
        let nothing_out = intent.parts.iter().all(|part| part.status_id.is_none());
        let resume_at =
            self.clock.now() + SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX);
        if nothing_out && resume_at > deadline {
            return Wait::GiveUp(format!(
                "{error}; the next try ({} s) would be after the deadline {deadline}",
                wait.as_secs()
            ));
        }
        tracing::info!(post = %intent.post, wait_seconds = wait.as_secs(), "waiting before trying again");
        tokio::select! {
            () = tokio::time::sleep(wait) => Wait::Done,
            () = self.shutdown.cancelled() => Wait::GiveUp("the daemon is stopping".into()),
        }
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

    fn reject(
        &self,
        state: &mut State,
        intent: &PostIntent,
        message: String,
    ) -> Result<Outcome, StateError> {
        tracing::error!(post = %intent.post, %message, "the server refused the post; it is left out until its file changes");
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
                settings: None,
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

/// Exponential backoff with full jitter: a random wait up to 2 s, 4 s, 8 s … 5 min.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(MAX_BACKOFF);
    let millis =
        rand::rng().random_range(ceiling.as_millis() as u64 / 2..=ceiling.as_millis() as u64);
    Duration::from_millis(millis)
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

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..40 {
            let wait = backoff(attempt);
            let ceiling = FIRST_BACKOFF
                .saturating_mul(2u32.saturating_pow(attempt.min(16)))
                .min(MAX_BACKOFF);
            assert!(
                wait <= ceiling && wait >= ceiling / 2,
                "{attempt}: {wait:?}"
            );
        }
        assert!(backoff(30) <= MAX_BACKOFF);
    }
}

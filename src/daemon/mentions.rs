//! Sending a reply to a mention at most once across crashes and restarts, through the
//! exactly-once engine ([`crate::daemon::engine`]); which mentions get one, and what is
//! remembered, is decided in [`crate::plan::mentions`] (pure).

use std::time::Duration;

use jiff::SignedDuration;

use crate::daemon::clock::Clock;
use crate::daemon::engine::{At, Checkpoint, Engine, Intent, Step};
use crate::network::{Disposition, Lookup, Network, NewStatus, PartOf, ServerError};
use crate::plan::mentions::record;
use crate::state::{MentionOutcome, ReplyIntent, SkipReason, State, StateError, StateStore};

/// A reply whose intent is older than this when it can finally be sent is dropped: an
/// answer a day late is noise.
const REPLY_EXPIRES: SignedDuration = SignedDuration::from_hours(24);

/// How sending a reply ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// Out (or found already out); recorded.
    Sent { status_id: String },
    /// Expired; recorded as skipped.
    Dropped,
    /// The server judged the reply invalid; recorded as refused (it counts against the
    /// caps). The daemon pauses replying with backoff while refusals go on.
    Refused,
    /// Not now: the intent stays pending; try again after `retry_in`. `token_refused`: the
    /// server refused the token (401/403), the daemon's condition.
    Deferred {
        retry_in: Duration,
        token_refused: bool,
    },
}

/// Sends replies: one at a time, each recorded before and after.
pub struct Replier<'a> {
    pub network: &'a dyn Network,
    pub store: &'a StateStore,
    pub clock: &'a dyn Clock,
    pub checkpoint: Option<&'a Checkpoint>,
    /// The `language` of replies.
    pub language: Option<&'a str>,
}

impl Replier<'_> {
    fn engine(&self) -> Engine<'_> {
        Engine {
            network: self.network,
            store: self.store,
            checkpoint: self.checkpoint,
        }
    }

    /// Saves `intent` as pending, then sends it.
    pub async fn send(
        &self,
        state: &mut State,
        intent: ReplyIntent,
        attempt: u32,
    ) -> Result<ReplyOutcome, StateError> {
        debug_assert!(state.mentions.pending.is_none(), "one reply in flight");
        self.engine().begin(state, &self.delivery(intent)).await?;
        self.send_pending(state, false, attempt).await
    }

    /// Resolves the intent an earlier attempt (or run) left pending: looks for the reply
    /// among the account's statuses first, and sends it only when it is not there.
    pub async fn resume(
        &self,
        state: &mut State,
        attempt: u32,
    ) -> Result<ReplyOutcome, StateError> {
        self.send_pending(state, true, attempt).await
    }

    fn delivery(&self, intent: ReplyIntent) -> ReplyDelivery<'_> {
        ReplyDelivery {
            intent,
            language: self.language,
        }
    }

    async fn send_pending(
        &self,
        state: &mut State,
        look_first: bool,
        attempt: u32,
    ) -> Result<ReplyOutcome, StateError> {
        let Some(intent) = state.mentions.pending.clone() else {
            return Ok(ReplyOutcome::Dropped);
        };
        let expired = self.clock.now() > intent.started + REPLY_EXPIRES;
        if expired && !look_first {
            return self.expire(state, &intent);
        }
        let mut delivery = self.delivery(intent.clone());
        if expired {
            // Looked for, never sent: a reply a day late is noise.
            return match self.engine().find(&delivery, 0).await {
                Ok(Some(status_id)) => self.found(state, &intent, status_id),
                Ok(None) => self.expire(state, &intent),
                Err(error) => Ok(self.defer(&error, attempt)),
            };
        }
        if look_first {
            match self.engine().look(state, &mut delivery, 0).await? {
                Ok(Some(status_id)) => return self.found(state, &intent, status_id),
                Ok(None) => {}
                Err(error) => return Ok(self.defer(&error, attempt)),
            }
        }
        if let Err(error) = self.engine().prepare(state, &mut delivery).await? {
            return Ok(self.defer(&error, attempt));
        }
        match self.engine().send(state, &mut delivery, 0, &[]).await? {
            Ok(status_id) => {
                tracing::info!(acct = %intent.acct, status = %status_id, "replied to a mention");
                self.finish(state, &intent, MentionOutcome::Replied { status_id })
            }
            Err(error) if error.disposition() == Disposition::Invalid => {
                tracing::error!(%error, acct = %intent.acct, "the server refused the reply; the mention stays unanswered");
                self.drop_intent(state, &intent, SkipReason::Refused)?;
                Ok(ReplyOutcome::Refused)
            }
            Err(error) => {
                // After an uncertain failure the next try looks first (resume does).
                if error.disposition() != Disposition::TokenRefused {
                    tracing::warn!(%error, acct = %intent.acct, "the reply could not be sent; trying again later");
                }
                Ok(self.defer(&error, attempt))
            }
        }
    }

    fn found(
        &self,
        state: &mut State,
        intent: &ReplyIntent,
        status_id: String,
    ) -> Result<ReplyOutcome, StateError> {
        tracing::info!(acct = %intent.acct, status = %status_id, "found the reply already posted; not sending it again");
        self.finish(state, intent, MentionOutcome::Replied { status_id })
    }

    fn expire(&self, state: &mut State, intent: &ReplyIntent) -> Result<ReplyOutcome, StateError> {
        tracing::warn!(acct = %intent.acct, started = %intent.started, "a reply could not be sent for a day; dropping it");
        self.drop_intent(state, intent, SkipReason::TooOld)
    }

    fn drop_intent(
        &self,
        state: &mut State,
        intent: &ReplyIntent,
        reason: SkipReason,
    ) -> Result<ReplyOutcome, StateError> {
        self.finish(state, intent, MentionOutcome::Skipped { reason })
    }

    /// Records how the pending reply ended, clears it, and saves.
    fn finish(
        &self,
        state: &mut State,
        intent: &ReplyIntent,
        outcome: MentionOutcome,
    ) -> Result<ReplyOutcome, StateError> {
        let result = match &outcome {
            MentionOutcome::Replied { status_id } => ReplyOutcome::Sent {
                status_id: status_id.clone(),
            },
            MentionOutcome::Skipped { .. } => ReplyOutcome::Dropped,
        };
        record(
            &mut state.mentions,
            &intent.notification,
            &intent.status,
            &intent.acct,
            outcome,
            self.clock.now(),
        );
        state.mentions.pending = None;
        self.store.save(state)?;
        Ok(result)
    }

    fn defer(&self, error: &ServerError, attempt: u32) -> ReplyOutcome {
        ReplyOutcome::Deferred {
            retry_in: crate::network::retry::wait(error.retry_after(), attempt),
            token_refused: error.disposition() == Disposition::TokenRefused,
        }
    }
}

/// A reply as the engine sends it: one part, answering the mention's status, in the replies'
/// `language`. Only a status of ours replying to that very status can be it, so it is
/// recognised by that alone (no text, no clock).
pub struct ReplyDelivery<'a> {
    pub intent: ReplyIntent,
    pub language: Option<&'a str>,
}

impl Intent for ReplyDelivery<'_> {
    fn of(&self) -> PartOf {
        PartOf::Reply
    }

    fn prepared(&self) -> bool {
        self.intent.key.is_some()
    }

    fn set_prepared(&mut self, bound: Option<String>) {
        self.intent.key = bound;
    }

    fn status(&self, _index: usize, _media_ids: &[String]) -> NewStatus {
        let intent = &self.intent;
        NewStatus {
            language: self.language.map(str::to_string),
            in_reply_to_id: Some(intent.status.clone()),
            idempotency_key: Some(intent.idempotency_key.clone()),
            prepared: intent.key.clone(),
            ..NewStatus::new(intent.text.clone(), intent.visibility)
        }
    }

    fn lookup(&self, _index: usize) -> Lookup<'_> {
        Lookup {
            text: None,
            in_reply_to: Some(self.intent.status.as_str()),
            after: self.intent.key.as_deref(),
            not_before: None,
        }
    }

    /// The user records the outcome itself ([`Replier::finish`]), in the same save.
    fn record(&mut self, _index: usize, _id: &str) {}

    fn keep(&self, state: &mut State) {
        state.mentions.pending = Some(self.intent.clone());
    }

    fn saves_each_part(&self) -> bool {
        false
    }

    fn step(&self, at: At) -> Option<Step> {
        match at {
            At::Saved => Some(Step::ReplyIntentSaved),
            At::Accepted(_) => Some(Step::ReplyAccepted),
            At::Before(_) | At::Recorded(_) => None,
        }
    }
}

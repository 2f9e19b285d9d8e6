//! Sending a reply to a mention at most once across crashes and restarts, through the
//! exactly-once engine ([`crate::daemon::engine`]); which mentions get one, and what is
//! remembered, is decided in [`crate::plan::mentions`] (pure).

use std::time::Duration;

use jiff::SignedDuration;

use crate::daemon::clock::Clock;
use crate::daemon::engine::{At, Checkpoint, Engine, Intent, Step};
use crate::network::{Disposition, Lookup, Network, NewStatus, PartOf, ServerError};
use futures_util::future::join_all;

use crate::plan::mentions::record;
use crate::state::{
    HandledMention, JournalEntry, MentionOutcome, ReplyIntent, SkipReason, State, StateError,
    StateStore,
};

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

/// How many replies may be in flight at once. A burst of mentions is answered this many at
/// a time: their intents are written in one flush, their requests overlap, and their outcomes
/// are recorded together; each reply is still sent at most once. Small, so that a server's
/// rate limit (GoToSocial's default: 300 requests per 5 minutes per account) and the hourly
/// caps are reached no faster than a person would notice; a 429 pauses every reply.
pub const REPLIES_IN_FLIGHT: usize = 4;

/// How many replies to send at once: [`REPLIES_IN_FLIGHT`], or fewer when the network's
/// rate-limit headers say fewer requests are left (at least one: a refusal then says when to
/// try again). Pure.
pub fn replies_at_once(requests_left: Option<u64>) -> usize {
    requests_left.map_or(REPLIES_IN_FLIGHT, |left| {
        usize::try_from(left)
            .unwrap_or(usize::MAX)
            .clamp(1, REPLIES_IN_FLIGHT)
    })
}

/// Sends replies: several at once, each recorded before and after.
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

    /// Writes `intents` down as pending (one flush for all), then sends them, overlapping.
    /// The outcomes are in the order of `intents`.
    pub async fn send(
        &self,
        state: &mut State,
        intents: Vec<ReplyIntent>,
        attempt: u32,
    ) -> Result<Vec<ReplyOutcome>, StateError> {
        let deliveries: Vec<_> = intents
            .into_iter()
            .map(|intent| self.delivery(intent))
            .collect();
        self.engine().begin_all(state, &deliveries).await?;
        self.deliver(state, deliveries, false, attempt).await
    }

    /// Resolves the intents an earlier attempt (or run) left pending: looks for each reply
    /// among the account's statuses first, and sends it only when it is not there.
    pub async fn resume(
        &self,
        state: &mut State,
        attempt: u32,
    ) -> Result<Vec<ReplyOutcome>, StateError> {
        let deliveries = state
            .mentions
            .pending
            .iter()
            .map(|intent| self.delivery(intent.clone()))
            .collect();
        self.deliver(state, deliveries, true, attempt).await
    }

    fn delivery(&self, intent: ReplyIntent) -> ReplyDelivery<'_> {
        ReplyDelivery {
            intent,
            language: self.language,
        }
    }

    /// Takes `deliveries` (pending in `state`) through the engine's steps together: look
    /// (when `look_first`, or to drop an expired one without sending it twice), prepare,
    /// send. Each step's requests overlap; what they change is written down between steps.
    async fn deliver(
        &self,
        state: &mut State,
        mut deliveries: Vec<ReplyDelivery<'_>>,
        look_first: bool,
        attempt: u32,
    ) -> Result<Vec<ReplyOutcome>, StateError> {
        let now = self.clock.now();
        // How each reply ended; `None` while it is still to be sent.
        let mut ended: Vec<Option<ReplyOutcome>> = deliveries.iter().map(|_| None).collect();
        let mut done = Vec::new();
        let expired = |delivery: &ReplyDelivery<'_>| now > delivery.intent.started + REPLY_EXPIRES;

        // Look, where needed. An expired reply is looked for, never sent: a day late is noise.
        let engine = self.engine();
        let looks = join_all(deliveries.iter().map(|delivery| async {
            if look_first || expired(delivery) {
                Some(engine.find(delivery, 0).await)
            } else {
                None
            }
        }))
        .await;
        for ((delivery, ended), look) in deliveries.iter().zip(&mut ended).zip(looks) {
            let intent = &delivery.intent;
            *ended = match look {
                Some(Ok(Some(status_id))) => {
                    tracing::info!(acct = %intent.acct, status = %status_id, "found the reply already posted; not sending it again");
                    Some(self.finish(state, intent, replied(status_id), &mut done))
                }
                Some(Err(error)) => Some(self.defer(&error, attempt)),
                Some(Ok(None)) | None if expired(delivery) => {
                    tracing::warn!(acct = %intent.acct, started = %intent.started, "a reply could not be sent for a day; dropping it");
                    Some(self.finish(state, intent, skipped(SkipReason::TooOld), &mut done))
                }
                Some(Ok(None)) | None => None,
            };
        }

        // Prepare: what the network chooses before a first send, kept before anything is sent.
        let chosen = join_all(
            deliveries
                .iter()
                .zip(&ended)
                .map(|(delivery, ended)| async {
                    match ended {
                        None => Some(engine.choose(delivery).await),
                        Some(_) => None,
                    }
                }),
        )
        .await;
        let mut keyed = Vec::new();
        for (index, chosen) in chosen.into_iter().enumerate() {
            match chosen {
                Some(Ok(Some(bound))) => {
                    let delivery = &mut deliveries[index];
                    let has_key = bound.is_some();
                    delivery.set_prepared(bound);
                    if has_key {
                        delivery.keep(state);
                        keyed.extend(delivery.journal());
                    }
                }
                Some(Err(error)) => ended[index] = Some(self.defer(&error, attempt)),
                Some(Ok(None)) | None => {}
            }
        }
        if !keyed.is_empty() {
            self.store.append(&keyed, true)?;
        }

        // Send.
        let sent = join_all(
            deliveries
                .iter()
                .zip(&ended)
                .map(|(delivery, ended)| async {
                    match ended {
                        None => Some(engine.transmit(delivery, 0, &[]).await),
                        Some(_) => None,
                    }
                }),
        )
        .await;
        for ((delivery, ended), sent) in deliveries.iter().zip(&mut ended).zip(sent) {
            let Some(sent) = sent else { continue };
            let intent = &delivery.intent;
            *ended = Some(match sent {
                Ok(status_id) => {
                    tracing::info!(acct = %intent.acct, status = %status_id, "replied to a mention");
                    self.finish(state, intent, replied(status_id), &mut done)
                }
                Err(error) if error.disposition() == Disposition::Invalid => {
                    tracing::error!(%error, acct = %intent.acct, "the server refused the reply; the mention stays unanswered");
                    self.finish(state, intent, skipped(SkipReason::Refused), &mut done);
                    ReplyOutcome::Refused
                }
                Err(error) => {
                    // After an uncertain failure the next try looks first (resume does).
                    if error.disposition() != Disposition::TokenRefused {
                        tracing::warn!(%error, acct = %intent.acct, "the reply could not be sent; trying again later");
                    }
                    self.defer(&error, attempt)
                }
            });
        }
        // Without a flush of its own: lost in a power cut, the intents are pending again and
        // resolving them finds the replies on the server (`crate::state::journal`).
        self.store.append_outcomes(&done, state)?;
        // Every reply was either ended before the send or sent.
        Ok(ended.into_iter().flatten().collect())
    }

    /// Records how a pending reply ended and clears it, in `state`; the record goes to the
    /// journal with the others ([`StateStore::append_outcomes`]).
    fn finish(
        &self,
        state: &mut State,
        intent: &ReplyIntent,
        outcome: MentionOutcome,
        done: &mut Vec<JournalEntry>,
    ) -> ReplyOutcome {
        let result = match &outcome {
            MentionOutcome::Replied { status_id } => ReplyOutcome::Sent {
                status_id: status_id.clone(),
            },
            MentionOutcome::Skipped { .. } => ReplyOutcome::Dropped,
        };
        let handled = HandledMention {
            notification: intent.notification.clone(),
            status: intent.status.clone(),
            acct: intent.acct.clone(),
            at: self.clock.now(),
            outcome,
        };
        record(
            &mut state.mentions,
            &handled.notification,
            &handled.status,
            &handled.acct,
            handled.outcome.clone(),
            handled.at,
        );
        state
            .mentions
            .pending
            .retain(|pending| pending.notification != intent.notification);
        done.push(JournalEntry::Handled(handled));
        result
    }

    fn defer(&self, error: &ServerError, attempt: u32) -> ReplyOutcome {
        ReplyOutcome::Deferred {
            retry_in: crate::network::retry::wait(error.retry_after(), attempt),
            token_refused: error.disposition() == Disposition::TokenRefused,
        }
    }
}

fn replied(status_id: String) -> MentionOutcome {
    MentionOutcome::Replied { status_id }
}

fn skipped(reason: SkipReason) -> MentionOutcome {
    MentionOutcome::Skipped { reason }
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

    /// The user records the outcome itself ([`Replier::finish`]), in the journal.
    fn record(&mut self, _index: usize, _id: &str) {}

    /// Pending, as the journal's line for it says on replay.
    fn keep(&self, state: &mut State) {
        state
            .mentions
            .apply(JournalEntry::Intent(self.intent.clone()));
    }

    fn journal(&self) -> Option<JournalEntry> {
        Some(JournalEntry::Intent(self.intent.clone()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_overlap_no_further_than_the_rate_limit_allows() {
        assert_eq!(replies_at_once(None), REPLIES_IN_FLIGHT);
        assert_eq!(replies_at_once(Some(300)), REPLIES_IN_FLIGHT);
        assert_eq!(replies_at_once(Some(2)), 2);
        assert_eq!(replies_at_once(Some(0)), 1);
    }
}

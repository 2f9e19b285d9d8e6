//! Deciding on mentions: which ones get a reply (guards and caps), what is remembered of each,
//! and the intent of a reply (README.md, "Answering mentions"). Pure; sending the reply at
//! most once across crashes and restarts is `crate::daemon::mentions`.
//!
//! * **Who gets a reply** is [`decide`], a pure function of the mention, what was handled
//!   before, the config and `now`. In order: a mention already handled is ignored; the bot's
//!   own account, accounts flagged `bot` (with `ignore_bots`), and, on the first start,
//!   mentions older than `first_start_lookback` are recorded as skipped; then the reply is
//!   composed ([`crate::text::reply`]): a "thanks!" to one of the bot's statuses gets none; last,
//!   the caps: `per_account_per_hour` and `per_hour` count the replies sent in the last hour
//!   (from the state, so a restart does not reset them). A mention over a cap is recorded
//!   as skipped, never queued for later: answering it hours later, in a burst, is what the
//!   caps are there to prevent.
//! * **At most once**: every mention dealt with is recorded in `state.mentions.handled`; a
//!   reply's intent (its exact text and an idempotency key) is saved before it is sent, and
//!   an intent found on start-up is resolved by looking for a status of ours that replies to
//!   the mention before anything is sent again (`crate::daemon::mentions::Replier::resume`).
//! * **Never missed**: the catch-up cursor only moves past mentions that were dealt with;
//!   the daemon pages forward from it on start, after every stream reconnect and every
//!   `poll_every`, so a mention that came while the stream was down is read then.

use jiff::{SignedDuration, Timestamp};
use rand::Rng;

use crate::posts::config::MentionsConfig;
use crate::state::{HandledMention, MentionOutcome, MentionsState, ReplyIntent, SkipReason};
use crate::text::reply::{compose_reply, Decision, Mention, NoReplyReason, Reply, ReplySettings};

/// How long the hourly caps look back.
const CAP_WINDOW: SignedDuration = SignedDuration::from_hours(1);
/// A safety valve on the size of `handled` (and so of the state file), whatever happens to
/// the catch-up: the oldest entries beyond it go first.
pub const MAX_HANDLED: usize = 5_000;

/// What to do with one mention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Dealt with before (by the stream and now by the catch-up, or by an earlier run).
    AlreadyHandled,
    /// Recorded, not answered.
    Skip(SkipReason),
    /// Send this reply.
    Answer(Reply),
}

/// The rules [`decide`] applies.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub config: &'a MentionsConfig,
    pub reply: ReplySettings<'a>,
    /// The bot's own account: its mentions of itself are never answered.
    pub bot_account_id: &'a str,
    /// The first start: no cursor was ever saved, so old mentions are recorded, not answered.
    pub first_start: bool,
}

/// Decides what to do with `mention`. Pure.
pub fn decide(
    mention: &Mention,
    state: &MentionsState,
    policy: &Policy<'_>,
    now: Timestamp,
) -> Verdict {
    if state.is_handled(&mention.notification_id)
        || state
            .pending
            .iter()
            .any(|intent| intent.notification == mention.notification_id)
    {
        return Verdict::AlreadyHandled;
    }
    if mention.account_id == policy.bot_account_id {
        return Verdict::Skip(SkipReason::Own);
    }
    if mention.bot && policy.config.ignore_bots {
        return Verdict::Skip(SkipReason::Bot);
    }
    if policy.first_start && mention.created_at < now - policy.config.first_start_lookback {
        return Verdict::Skip(SkipReason::TooOld);
    }
    let reply = match compose_reply(mention, &policy.reply) {
        Decision::Reply(reply) => reply,
        Decision::NoReply(NoReplyReason::ReplyWithoutTopic) => {
            return Verdict::Skip(SkipReason::NothingAsked)
        }
        Decision::NoReply(NoReplyReason::NothingFits) => {
            return Verdict::Skip(SkipReason::NothingFits)
        }
        Decision::NoReply(NoReplyReason::UnusableAcct) => {
            return Verdict::Skip(SkipReason::UnusableAcct)
        }
    };
    if replies_since(state, now - CAP_WINDOW, Some(&mention.acct))
        >= policy.config.per_account_per_hour as usize
    {
        return Verdict::Skip(SkipReason::AccountCap);
    }
    if replies_since(state, now - CAP_WINDOW, None) >= policy.config.per_hour as usize {
        return Verdict::Skip(SkipReason::HourCap);
    }
    Verdict::Answer(reply)
}

/// Replies attempted since `since` (sent, or refused by the server: a refused attempt is a
/// POST all the same, and a server refusing every reply must not be asked thousands of
/// times an hour), and replies in flight (pending: each is about to be attempted, and
/// several are decided before any is sent), to `acct` only when given.
pub fn replies_since(state: &MentionsState, since: Timestamp, acct: Option<&str>) -> usize {
    let in_flight = state
        .pending
        .iter()
        .filter(|intent| acct.is_none_or(|acct| intent.acct == acct))
        .count();
    in_flight
        + state
            .handled
            .iter()
            .rev()
            .take_while(|handled| handled.at >= since)
            .filter(|handled| {
                matches!(
                    handled.outcome,
                    MentionOutcome::Replied { .. }
                        | MentionOutcome::Skipped {
                            reason: SkipReason::Refused
                        }
                )
            })
            .filter(|handled| acct.is_none_or(|acct| handled.acct == acct))
            .count()
}

/// Records what was done with a mention, and trims what is no longer needed.
pub fn record(
    state: &mut MentionsState,
    notification: &str,
    status: &str,
    acct: &str,
    outcome: MentionOutcome,
    now: Timestamp,
) {
    state.handled.push(HandledMention {
        notification: notification.to_string(),
        status: status.to_string(),
        acct: acct.to_string(),
        at: now,
        outcome,
    });
    trim(state, now);
}

/// Drops the entries of `handled` that can no longer matter: behind the cursor (dealt with
/// before the last complete catch-up began) and older than the caps' hour. Beyond
/// [`MAX_HANDLED`], the oldest go regardless.
pub fn trim(state: &mut MentionsState, now: Timestamp) {
    if let Some(caught_up) = state.caught_up {
        let cutoff = caught_up.min(now - CAP_WINDOW);
        let keep_from = state
            .handled
            .iter()
            .position(|handled| handled.at >= cutoff)
            .unwrap_or(state.handled.len());
        state.handled.drain(..keep_from);
    }
    if state.handled.len() > MAX_HANDLED {
        let excess = state.handled.len() - MAX_HANDLED;
        state.handled.drain(..excess);
    }
}

/// A new reply intent for `reply` to `mention`.
pub fn new_reply_intent(mention: &Mention, reply: &Reply, now: Timestamp) -> ReplyIntent {
    let key: u128 = rand::rng().random();
    ReplyIntent {
        notification: mention.notification_id.clone(),
        status: mention.status_id.clone(),
        acct: mention.acct.clone(),
        text: reply.text.clone(),
        visibility: reply.visibility,
        idempotency_key: format!("perennial-reply-{key:032x}"),
        started: now,
        key: None,
    }
}

//! Layer 4, **plan**: the decisions, pure (no I/O, `now` passed in; the tidy test checks it):
//! the slots ([`schedule`]), which post goes out when (here), and which mentions get a reply
//! ([`mentions`]). It knows posts, text and the state's types; it must not know any network,
//! the daemon or the commands.
//!
//! The plan: which post goes out when. A pure function of (posts, schedule, state, now):
//! the same inputs always give the same plan, and `perennial queue` prints it.
//!
//! Rules (README.md, "Seeing the plan"):
//! - Ad hoc posts go out at their own `at`, once (an ad hoc post is identified by its id and
//!   its `at`, so moving `at` to a new date schedules it again). With `then = "evergreen"`
//!   they join the rotation once `at` has passed. Blackouts do not hold them back.
//! - At each slot, categories take turns by smooth weighted round-robin (nginx's algorithm:
//!   every taking part category gains its weight, the richest is chosen and pays the total).
//!   A category takes part when it has an eligible post that was not posted within
//!   `repeat_after`; only when no category has one do the others take part, and the least
//!   recently posted post repeats (the account stays alive). A slot with no eligible post at
//!   all stays empty.
//! - Inside the category: never-posted posts first, then the post whose time since it last
//!   went out, times its `weight`, is largest (weight 2 comes round twice as often); ties
//!   by a per-post key from a seeded `rand` generator, so adding or editing one post never
//!   reorders the others.
//! - After downtime at most one missed slot is posted, the latest, and only when it is at
//!   most `grace` late; the others are reported as missed. Ad hoc posts more than `grace`
//!   late are reported as missed too.

pub mod mentions;
pub mod schedule;

use std::collections::{BTreeMap, HashSet};

use rustc_hash::{FxHashMap, FxHashSet};

use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};

use crate::plan::schedule::{Slot, SlotClock};
use crate::posts::config::ScheduleConfig;
use crate::posts::post::{Post, PostKind};
use crate::state::{PostReason, State};

/// What the plan is made from.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub posts: &'a [Post],
    pub schedule: &'a ScheduleConfig,
    /// Fixes jitter and tie-breaking; see [`seed_for`].
    pub seed: u64,
    pub state: &'a State,
    pub now: Timestamp,
}

/// One planned moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// When it is due (slot time plus jitter, or the ad hoc `at`).
    pub at: Timestamp,
    /// The slot's nominal time, or the ad hoc `at`: its identity in the state file.
    pub slot: Timestamp,
    pub reason: PostReason,
    /// `None`: a slot with no eligible post.
    pub post: Option<String>,
    pub category: Option<String>,
    /// The rotation credit after this slot; stored when the slot is done.
    pub credit_after: BTreeMap<String, f64>,
}

impl Entry {
    /// Due at `now` (it may be up to `grace` late).
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.at <= now
    }
}

/// Something that should have gone out while the daemon was not running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missed {
    /// Rotation slots, counted (up to [`MAX_MISSED_COUNT`]), with the first and last.
    Slots {
        count: usize,
        first: Timestamp,
        last: Timestamp,
    },
    Adhoc {
        post: String,
        at: Timestamp,
    },
}

/// Counting missed slots stops here (`every = "2s"` after a month down is a million).
pub const MAX_MISSED_COUNT: usize = 10_000;

/// The plan: entries in time order (due ones first), and what was missed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub entries: Vec<Entry>,
    pub missed: Vec<Missed>,
    /// The nominal time of the latest slot at or before `now`, due or missed: once the
    /// daemon has dealt with what is due, `rotation.last_slot` moves here.
    pub last_slot_passed: Option<Timestamp>,
}

/// The seed of an account's plan: a stable hash of the server URL and the time zone, so
/// two accounts differ and a restart changes nothing.
pub fn seed_for(server_url: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(server_url.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The plan from `input.now` up to `until` (inclusive), at most `max_entries` entries.
pub fn plan(input: &PlanInput, until: Timestamp, max_entries: usize) -> Plan {
    let mut planner = Planner::new(input);
    let mut plan = Plan::default();
    let grace = input.schedule.grace.max(SignedDuration::ZERO);
    let earliest = input.now - grace;
    let clock = SlotClock::new(input.schedule, input.seed);

    // Slots that have passed since the last one dealt with.
    let (due_slot, last_passed) = passed_slots(input, &clock, earliest, &mut plan.missed);
    plan.last_slot_passed = last_passed;

    // Ad hoc posts: due, missed or upcoming.
    let mut adhoc: Vec<(Timestamp, usize)> = Vec::new();
    for (index, post) in input.posts.iter().enumerate() {
        let PostKind::Adhoc { at, .. } = post.kind else {
            continue;
        };
        if planner.adhoc_done(post, at) || planner.failed(post) || at > until {
            continue;
        }
        if at < earliest {
            let since = input.state.rotation.checked;
            if since.is_some_and(|checked| at > checked) {
                plan.missed.push(Missed::Adhoc {
                    post: post.id.clone(),
                    at,
                });
            }
            continue;
        }
        adhoc.push((at, index));
    }
    let id = |index: usize| input.posts[index].id.as_str();
    adhoc.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| id(a.1).cmp(id(b.1))));

    // A slot whose nominal time has passed may still be ahead with its jitter.
    let jitter = input.schedule.jitter.max(SignedDuration::ZERO);
    let upcoming = clock
        .slots_after(input.now - jitter - SignedDuration::from_secs(1))
        .filter(|slot| slot.at > input.now);
    let mut slots = due_slot.into_iter().chain(upcoming).peekable();
    let mut adhoc = adhoc.into_iter().peekable();
    while plan.entries.len() < max_entries {
        let next_slot = slots.peek().copied().filter(|slot| slot.at <= until);
        let next_adhoc = adhoc.peek().copied();
        let take_adhoc = match (next_slot, next_adhoc) {
            (None, None) => break,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            // An ad hoc post at the same moment goes first: it is the timely one.
            (Some(slot), Some((at, _))) => at <= slot.at,
        };
        if take_adhoc {
            let (at, index) = adhoc.next().expect("peeked");
            plan.entries.push(planner.adhoc(index, at));
        } else {
            let slot = slots.next().expect("peeked");
            plan.entries.push(planner.slot(slot));
        }
    }
    plan
}

/// Looks at the slots after `rotation.last_slot` that are due by now: the latest one no
/// more than `grace` late is returned (to post now); the others go to `missed`. Also gives
/// the latest passed slot's nominal time.
fn passed_slots(
    input: &PlanInput,
    clock: &SlotClock,
    earliest: Timestamp,
    missed: &mut Vec<Missed>,
) -> (Option<Slot>, Option<Timestamp>) {
    let rotation = &input.state.rotation;
    // A slot whose nominal time is at or before this is more than `grace` late whatever
    // its jitter. With no slot dealt with yet, nothing before it counts as missed: a
    // first start is not downtime.
    let window_start =
        earliest - input.schedule.jitter.max(SignedDuration::ZERO) - SignedDuration::from_secs(1);
    let start = rotation.last_slot.unwrap_or(window_start);
    let mut report = MissedSlots {
        // Only what the last run did not already see.
        after: rotation.checked.unwrap_or(Timestamp::MAX),
        count: 0,
        first: None,
        last: None,
    };
    let mut last_passed = None;
    // Long before now: missed, counted up to MAX_MISSED_COUNT (`every = "2s"` after a
    // month down is a million slots).
    for slot in clock
        .slots_after(start)
        .take_while(|slot| slot.nominal <= window_start)
        .take(MAX_MISSED_COUNT)
    {
        last_passed = Some(slot.nominal);
        report.note(slot);
    }
    // The last `grace`: the latest passed slot is due, the others are missed.
    let mut due = None;
    for slot in clock
        .slots_after(start.max(window_start))
        .take_while(|slot| slot.at <= input.now)
    {
        last_passed = Some(slot.nominal);
        if slot.at < earliest {
            report.note(slot);
        } else if let Some(previous) = due.replace(slot) {
            report.note(previous);
        }
    }
    if let (Some(first), Some(last)) = (report.first, report.last) {
        missed.push(Missed::Slots {
            count: report.count,
            first,
            last,
        });
    }
    (due, last_passed)
}

/// Missed slots as they are reported: how many, the first and the last.
struct MissedSlots {
    /// Slots due at or before this were reported by an earlier run.
    after: Timestamp,
    count: usize,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
}

impl MissedSlots {
    fn note(&mut self, slot: Slot) {
        if slot.at <= self.after {
            return;
        }
        self.count += 1;
        self.first.get_or_insert(slot.at);
        self.last = Some(slot.at);
    }
}

/// `Planner::last_posted_ns` of a post never posted: before any instant, so never posted is
/// always fresh. No timestamp comes near it (jiff's are within ten thousand years of 1970, about
/// 2^68 nanoseconds), nor does any `at - repeat_after` (a `SignedDuration` is at most about 2^93).
const NEVER_POSTED: i128 = i128::MIN;

/// The rotation as it unfolds over the planned slots.
struct Planner<'a> {
    input: &'a PlanInput<'a>,
    credit: BTreeMap<String, f64>,
    /// When each post (by its index in `input.posts`) last went out (history, then the plan
    /// itself): built in one pass over the history, which [`crate::state::prune`] keeps
    /// bounded.
    last_posted: Vec<Option<Timestamp>>,
    /// The same in nanoseconds since the Unix epoch, [`NEVER_POSTED`] for `None`: whether a
    /// candidate is fresh is then one integer comparison (see [`Planner::is_fresh`]). Kept
    /// with `last_posted` by [`Planner::posted`].
    last_posted_ns: Vec<i128>,
    /// Ad hoc posts done: (id, at). From the history, it holds every ad hoc post's pair for its
    /// own `at` when that is on record (the pass over the history may stop before older pairs).
    adhoc_done: FxHashSet<(&'a str, Timestamp)>,
    /// Category → its posts that can ever be in the rotation.
    categories: BTreeMap<&'a str, Vec<Candidate<'a>>>,
}

/// A post that can take its turn in the rotation.
#[derive(Debug, Clone, Copy)]
struct Candidate<'a> {
    post: &'a Post,
    /// In `input.posts`.
    index: usize,
    /// Its tie-break key ([`tie_break_key`]).
    key: u64,
}

impl<'a> Planner<'a> {
    fn new(input: &'a PlanInput<'a>) -> Self {
        // What planning costs beyond a fresh state is this pass over the history (a year of
        // record, [`crate::state::KEPT_FOR`], is 800 entries at two posts a day) and the
        // lookups of when each candidate last went out, at every slot: so each entry read
        // costs one fast lookup (FxHash) of its post's index, the pass stops as soon as the
        // rest of the history cannot change the plan, and the slots look posts up by index,
        // hashing nothing, and tell a fresh post by one integer comparison
        // ([`Planner::is_fresh`]), which costs the same whether the post went out or not.
        let by_id: FxHashMap<&str, usize> = input
            .posts
            .iter()
            .enumerate()
            .map(|(index, post)| (post.id.as_str(), index))
            .collect();
        // The history is oldest first: read from the end, a post's first entry is its newest.
        // The plan asks the history two things: when each post last went out, and whether
        // each ad hoc post went out at its own `at` ([`Planner::adhoc_done`] is asked nothing
        // else). Once every post has its answers the older entries cannot change the plan,
        // so the pass stops there: where every post went out within the history, it reads the
        // entries back to the least recently sent post's newest, not the whole year.
        let mut last_posted: Vec<Option<Timestamp>> = vec![None; input.posts.len()];
        let mut adhoc_done = FxHashSet::default();
        // Questions without an answer yet: one per post, one more per ad hoc post. Each
        // answer counts once (a post's newest entry is found once, a pair is inserted once),
        // and a post whose id another post shares is never found by its own index, so with
        // such posts the pass reads the whole history, as before.
        let mut unanswered = input.posts.len()
            + input
                .posts
                .iter()
                .filter(|post| matches!(post.kind, PostKind::Adhoc { .. }))
                .count();
        for entry in input.state.history.iter().rev() {
            if unanswered == 0 {
                break;
            }
            let Some(&index) = by_id.get(entry.post.as_str()) else {
                continue;
            };
            if last_posted[index].is_none() {
                last_posted[index] = Some(entry.at);
                unanswered -= 1;
            }
            if entry.reason == PostReason::Adhoc {
                let post = &input.posts[index];
                let at_own_at = matches!(post.kind, PostKind::Adhoc { at, .. } if at == entry.slot);
                if adhoc_done.insert((post.id.as_str(), entry.slot)) && at_own_at {
                    unanswered -= 1;
                }
            }
        }
        let mut categories: BTreeMap<&str, Vec<Candidate>> = BTreeMap::new();
        for (index, post) in input.posts.iter().enumerate() {
            let in_rotation = match post.kind {
                PostKind::Evergreen => true,
                PostKind::Adhoc { then_evergreen, .. } => then_evergreen,
            };
            if in_rotation && !is_failed(input.state, post) {
                categories
                    .entry(post.category.as_str())
                    .or_default()
                    .push(Candidate {
                        post,
                        index,
                        key: tie_break_key(input.seed, &post.id),
                    });
            }
        }
        // Credit only for categories that exist now; a removed one leaves no debt behind.
        let credit = input
            .state
            .rotation
            .credit
            .iter()
            .filter(|(category, _)| categories.contains_key(category.as_str()))
            .map(|(category, credit)| (category.clone(), *credit))
            .collect();
        let last_posted_ns = last_posted
            .iter()
            .map(|last| last.map_or(NEVER_POSTED, Timestamp::as_nanosecond))
            .collect();
        Planner {
            input,
            credit,
            last_posted,
            last_posted_ns,
            adhoc_done,
            categories,
        }
    }

    /// Notes that the post at `index` goes out at `at`.
    fn posted(&mut self, index: usize, at: Timestamp) {
        self.last_posted[index] = Some(at);
        self.last_posted_ns[index] = at.as_nanosecond();
    }

    fn adhoc_done(&self, post: &Post, at: Timestamp) -> bool {
        self.adhoc_done.contains(&(post.id.as_str(), at))
    }

    fn failed(&self, post: &Post) -> bool {
        is_failed(self.input.state, post)
    }

    fn adhoc(&mut self, index: usize, at: Timestamp) -> Entry {
        let post = &self.input.posts[index];
        self.posted(index, at);
        self.adhoc_done.insert((post.id.as_str(), at));
        Entry {
            at,
            slot: at,
            reason: PostReason::Adhoc,
            post: Some(post.id.clone()),
            category: Some(post.category.clone()),
            credit_after: self.credit.clone(),
        }
    }

    fn slot(&mut self, slot: Slot) -> Entry {
        let chosen = self.choose(slot.at);
        if let Some(candidate) = chosen {
            self.posted(candidate.index, slot.at);
        }
        let post = chosen.map(|candidate| candidate.post);
        Entry {
            at: slot.at,
            slot: slot.nominal,
            reason: PostReason::Slot,
            post: post.map(|post| post.id.clone()),
            category: post.map(|post| post.category.clone()),
            credit_after: self.credit.clone(),
        }
    }

    /// Smooth weighted round-robin over the taking-part categories, then the best post.
    fn choose(&mut self, at: Timestamp) -> Option<Candidate<'a>> {
        // A post is fresh when `at.duration_since(last) >= repeat_after`; both sides are exact
        // in nanoseconds (an i128 holds any of them without overflow), so that is
        // `last <= at - repeat_after` in nanoseconds, the subtraction once per slot.
        let fresh_until = at.as_nanosecond() - self.input.schedule.repeat_after.as_nanos();
        let mut fresh: Vec<(&'a str, Vec<Candidate<'a>>)> = Vec::new();
        let mut stale: Vec<(&'a str, Vec<Candidate<'a>>)> = Vec::new();
        for (category, posts) in &self.categories {
            let eligible: Vec<Candidate<'a>> = posts
                .iter()
                .copied()
                .filter(|candidate| eligible_in_rotation(candidate.post, at))
                .collect();
            if eligible.is_empty() {
                continue;
            }
            let fresh_posts: Vec<Candidate<'a>> = eligible
                .iter()
                .copied()
                .filter(|candidate| self.is_fresh(candidate, fresh_until))
                .collect();
            if fresh_posts.is_empty() {
                stale.push((category, eligible));
            } else {
                fresh.push((category, fresh_posts));
            }
        }
        let taking_part = if fresh.is_empty() { stale } else { fresh };
        if taking_part.is_empty() {
            return None;
        }
        let total: f64 = taking_part
            .iter()
            .map(|(category, _)| self.input.schedule.weight_of(category))
            .sum();
        let mut best: Option<(usize, f64)> = None;
        for (index, (category, _)) in taking_part.iter().enumerate() {
            let credit = self.credit.entry(category.to_string()).or_insert(0.0);
            *credit += self.input.schedule.weight_of(category);
            // Ties go to the first category by name (the order of the map).
            if best.is_none_or(|(_, best_credit)| *credit > best_credit) {
                best = Some((index, *credit));
            }
        }
        let (index, _) = best.expect("at least one category");
        let (category, candidates) = &taking_part[index];
        *self.credit.get_mut(*category).expect("credited above") -= total;
        self.best_post(candidates, at)
    }

    /// Not posted since `fresh_until` (nanoseconds since the Unix epoch), or never.
    fn is_fresh(&self, candidate: &Candidate, fresh_until: i128) -> bool {
        self.last_posted_ns[candidate.index] <= fresh_until
    }

    /// Never posted first (by key), then the largest weighted time since it last went out.
    fn best_post(&self, candidates: &[Candidate<'a>], at: Timestamp) -> Option<Candidate<'a>> {
        candidates
            .iter()
            // Each candidate's score once.
            .map(|candidate| {
                let score = self.last_posted[candidate.index]
                    .map(|last| at.duration_since(last).as_secs_f64() * candidate.post.weight);
                (score, candidate)
            })
            .max_by(|(score_a, a), (score_b, b)| match (score_a, score_b) {
                (None, None) => b.key.cmp(&a.key),
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (Some(x), Some(y)) => x.total_cmp(y).then_with(|| b.key.cmp(&a.key)),
            })
            .map(|(_, candidate)| *candidate)
    }
}

fn eligible_in_rotation(post: &Post, at: Timestamp) -> bool {
    if !post.is_active_at(at) {
        return false;
    }
    match post.kind {
        PostKind::Evergreen => true,
        // Joins the rotation once its own moment has passed.
        PostKind::Adhoc { at: own, .. } => at > own,
    }
}

fn is_failed(state: &State, post: &Post) -> bool {
    state
        .failed
        .get(&post.id)
        .is_some_and(|failed| failed.hash == post.content_hash)
}

/// An ad hoc post whose time has passed (by more than `grace`) without it going out: it will
/// never be posted at its time. `check` warns about it, `queue` lists it and the daemon logs
/// it at start, so that an example or an announcement left with last year's date does not
/// rot in silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleAdhoc {
    pub post: String,
    pub at: Timestamp,
    /// `then = "evergreen"`: it still takes part in the rotation.
    pub then_evergreen: bool,
}

impl StaleAdhoc {
    /// What it means, for a message.
    pub fn consequence(&self) -> &'static str {
        if self.then_evergreen {
            "its announcement will not be posted (it still takes turns in the rotation)"
        } else {
            "it will not be posted"
        }
    }
}

/// The ad hoc posts in `posts` whose `at` is more than `grace` before `now` and that did not go
/// out at it (per the history), leaving out the post in flight and failed posts (reported as
/// such elsewhere). In `at` order.
pub fn stale_adhoc(
    posts: &[Post],
    state: &State,
    now: Timestamp,
    grace: SignedDuration,
) -> Vec<StaleAdhoc> {
    let earliest = now - grace.max(SignedDuration::ZERO);
    // The ad hoc sends on record, looked up once rather than scanned for each post.
    let sent: HashSet<(&str, Timestamp)> = state
        .history
        .iter()
        .filter(|entry| entry.reason == PostReason::Adhoc)
        .map(|entry| (entry.post.as_str(), entry.slot))
        .collect();
    let mut stale: Vec<StaleAdhoc> = posts
        .iter()
        .filter_map(|post| match post.kind {
            PostKind::Adhoc { at, then_evergreen } if at < earliest => {
                Some((post, at, then_evergreen))
            }
            _ => None,
        })
        .filter(|(post, at, _)| {
            let done = sent.contains(&(post.id.as_str(), *at));
            let in_flight = state
                .pending
                .as_ref()
                .is_some_and(|pending| pending.post == post.id);
            !done && !in_flight && !is_failed(state, post)
        })
        .map(|(post, at, then_evergreen)| StaleAdhoc {
            post: post.id.clone(),
            at,
            then_evergreen,
        })
        .collect();
    stale.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.post.cmp(&b.post)));
    stale
}

/// A post's place among equals: from a generator seeded with the plan's seed and the
/// post's id, so it depends on nothing else.
fn tie_break_key(seed: u64, id: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let id_hash = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    rand::rngs::StdRng::seed_from_u64(seed ^ id_hash).random()
}

/// Records in `state` that `entry` was dealt with at `at`: sent as `statuses` (with the
/// version `hash` of the post), or, for a slot with nothing to send, just passed.
pub fn record_entry(
    state: &mut State,
    entry: &Entry,
    hash: &str,
    at: Timestamp,
    statuses: Vec<String>,
) {
    if let (Some(post), Some(category)) = (&entry.post, &entry.category) {
        state.history.push(crate::state::Posted {
            post: post.clone(),
            hash: hash.to_string(),
            slot: entry.slot,
            at,
            reason: entry.reason,
            category: category.clone(),
            statuses,
        });
    }
    if entry.reason == PostReason::Slot {
        record_slot(state, entry.slot, Some(&entry.credit_after));
    }
}

/// Records that the rotation slot at `slot` (nominal) is done, with the rotation credit
/// after it (`None`: unchanged).
pub fn record_slot(
    state: &mut State,
    slot: Timestamp,
    credit_after: Option<&BTreeMap<String, f64>>,
) {
    if let Some(credit) = credit_after {
        state.rotation.credit = credit.clone();
    }
    if state.rotation.last_slot.is_none_or(|last| last < slot) {
        state.rotation.last_slot = Some(slot);
    }
}

/// Records that everything due or missed by `now` has been dealt with: missed slots are
/// skipped for good and nothing before `now` is reported as missed again.
pub fn record_checked(state: &mut State, plan: &Plan, now: Timestamp) {
    if let Some(passed) = plan.last_slot_passed {
        record_slot(state, passed, None);
    }
    state.rotation.checked = Some(now);
}

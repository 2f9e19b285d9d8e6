//! What the state keeps of the past: a post's record follows it when its file is renamed
//! ([`follow_renames`]), and what no plan needs any more is dropped ([`prune`]), so the state
//! file, and the cost of planning and of every save, stay the same size however many years
//! the daemon runs. Pure functions of (posts folder, state, now).
//!
//! The rule ([`prune`]), also in ARCHITECTURE.md:
//! - every history entry from the last [`KEPT_FOR`] is kept (a year of record for the
//!   operator, and long enough for a post removed and restored, or renamed, to keep its
//!   place);
//! - before that, a post still in the posts folder (good or with problems) keeps its newest
//!   entry, which is when it last went out (the planner's `last_posted`), and its newest
//!   ad hoc entry (an ad hoc post is done when (id, `at`) is in the history; an older `at` is
//!   long past, so the planner skips it whether it is recorded or not);
//! - everything else older goes, all entries of posts no longer in the folder included;
//! - a `failed` entry goes when its post is no longer in the folder and it is older than
//!   [`KEPT_FOR`] (one whose post is there stays: it keeps that version out of the plan).
//!
//! Exactly once does not rest on the history: the intent (`pending`) is saved before anything
//! is sent and is never pruned. So with at most a year of posts plus two entries per post,
//! the plan is the same as with the whole history (tests/it/state_over_years.rs checks that
//! over ten simulated years), except for a post that was missing from the folder at a prune
//! and had not gone out for [`KEPT_FOR`]: when it comes back it counts as never posted (it may
//! go out before its turn, but never twice within [`KEPT_FOR`]).
//!
//! What that costs (issue 19 item 4, `cargo bench --bench plan -- years`): after ten years
//! of two posts a day over 200 posts and 100,000 mentions, the state holds what it held after
//! the first [`KEPT_FOR`] (800 history entries, 232 KB; the mentions' `handled` a few entries,
//! see `crate::plan::mentions::trim`), so nothing grows with age. Against a fresh state,
//! planning costs about the same (the planner reads the history newest first and stops once
//! older entries cannot change the plan); a save costs more by what the year of record holds,
//! which the fsyncs hide only where they are slow (BENCHMARKS.md). The year is kept on
//! purpose: it is the record of what went out that the exactly-once checks read back (every
//! status on the server is in one history entry), and keeping only each post's newest entry
//! would still leave one entry per post, so a save without fsync would not come within 10 %
//! of a fresh one anyway.

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};

use crate::posts::library::Library;

use super::{PostReason, State};

/// How long every history entry is kept, and a removed post's entries and `failed` entry:
/// a year and a month.
pub const KEPT_FOR: SignedDuration = SignedDuration::from_hours(400 * 24);

/// A post file renamed (`git mv`) without a change to its text: its record moved with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    pub from: String,
    pub to: String,
}

/// Moves the record of a post whose file was renamed to its new id: the history, the
/// `failed` entry. A post counts as renamed when
/// - it has no record at all (no history, no `failed` entry, not in flight), and
/// - its content hash equals the hash of the newest history entry (or of the `failed` entry)
///   of exactly one id that is no longer a post file, and no other new post has that hash.
///
/// Anything ambiguous (two new posts with the same text, two old ids with it, the old id still
/// there) is left alone: those posts are new, as before. An old id that is in flight is left
/// until the post is recorded (the next call moves it). Returns what was moved, by new id.
pub fn follow_renames(library: &Library, state: &mut State) -> Vec<Rename> {
    let present = ids_in_folder(library);
    let in_flight = state.pending.as_ref().map(|pending| pending.post.as_str());
    // The newest history entry's hash of each id (the history is oldest first).
    let mut newest: HashMap<&str, &str> = HashMap::new();
    for entry in &state.history {
        newest.insert(entry.post.as_str(), entry.hash.as_str());
    }
    // hash → ids no longer in the folder that were last recorded with it.
    let mut gone_by_hash: HashMap<&str, Vec<&str>> = HashMap::new();
    let gone = newest
        .iter()
        .map(|(id, hash)| (*id, *hash))
        .chain(
            state
                .failed
                .iter()
                .map(|(id, failed)| (id.as_str(), failed.hash.as_str())),
        )
        .filter(|(id, _)| !present.contains(id) && Some(*id) != in_flight);
    for (id, hash) in gone {
        let ids = gone_by_hash.entry(hash).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if gone_by_hash.is_empty() {
        return Vec::new();
    }
    // hash → posts with no record at all.
    let mut new_by_hash: HashMap<&str, Vec<&str>> = HashMap::new();
    for post in &library.posts {
        let id = post.id.as_str();
        if newest.contains_key(id) || state.failed.contains_key(id) || Some(id) == in_flight {
            continue;
        }
        new_by_hash
            .entry(post.content_hash.as_str())
            .or_default()
            .push(id);
    }
    // One old id and one new post per hash, and neither in another pair.
    let pairs: Vec<(&str, &str)> = new_by_hash
        .iter()
        .filter_map(
            |(hash, new)| match (gone_by_hash.get(hash)?.as_slice(), new.as_slice()) {
                ([from], [to]) => Some((*from, *to)),
                _ => None,
            },
        )
        .collect();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (from, to) in &pairs {
        *uses.entry(from).or_default() += 1;
        *uses.entry(to).or_default() += 1;
    }
    let mut renames: Vec<Rename> = pairs
        .into_iter()
        .filter(|(from, to)| uses[from] == 1 && uses[to] == 1)
        .map(|(from, to)| Rename {
            from: from.to_string(),
            to: to.to_string(),
        })
        .collect();
    renames.sort_by(|a, b| a.to.cmp(&b.to));
    for rename in &renames {
        for entry in &mut state.history {
            if entry.post == rename.from {
                entry.post.clone_from(&rename.to);
            }
        }
        if let Some(failed) = state.failed.remove(&rename.from) {
            state.failed.insert(rename.to.clone(), failed);
        }
    }
    renames
}

/// What [`prune`] dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub history: usize,
    pub failed: usize,
}

impl Pruned {
    pub fn any(&self) -> bool {
        self.history > 0 || self.failed > 0
    }
}

/// Drops what no plan needs any more (the rule is in the module's documentation). Linear in
/// the size of the state, which it keeps bounded.
pub fn prune(library: &Library, state: &mut State, now: Timestamp) -> Pruned {
    if library.files.is_empty() {
        // A posts folder that is missing or empty (a checkout or a deploy half done) says
        // nothing about which posts are gone.
        return Pruned::default();
    }
    let cutoff = now.checked_sub(KEPT_FOR).unwrap_or(Timestamp::MIN);
    let present = ids_in_folder(library);
    // For each post in the folder: the index of its newest entry and of its newest ad hoc one.
    let mut newest: HashMap<&str, usize> = HashMap::new();
    let mut newest_adhoc: HashMap<&str, usize> = HashMap::new();
    for (index, entry) in state.history.iter().enumerate() {
        let id = entry.post.as_str();
        if !present.contains(id) {
            continue;
        }
        newest.insert(id, index);
        if entry.reason == PostReason::Adhoc {
            newest_adhoc.insert(id, index);
        }
    }
    let keep: Vec<bool> = state
        .history
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            entry.at >= cutoff
                || newest.get(entry.post.as_str()) == Some(&index)
                || newest_adhoc.get(entry.post.as_str()) == Some(&index)
        })
        .collect();
    let before = state.history.len();
    let mut keep = keep.into_iter();
    state
        .history
        .retain(|_| keep.next().expect("one flag per entry"));
    let history = before - state.history.len();
    let before = state.failed.len();
    state
        .failed
        .retain(|id, failed| present.contains(id.as_str()) || failed.at >= cutoff);
    Pruned {
        history,
        failed: before - state.failed.len(),
    }
}
/// The ids of every post file in the folder, good or bad.
fn ids_in_folder(library: &Library) -> HashSet<&str> {
    library
        .files
        .iter()
        .map(|(id, _)| id.as_str())
        .chain(library.posts.iter().map(|post| post.id.as_str()))
        .collect()
}

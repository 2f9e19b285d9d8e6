//! When slots happen: the configured wall-clock times (or interval) in the configured time
//! zone, minus blackout days, each moved by a seeded jitter. Pure: no clock, no I/O.
//!
//! Daylight saving: a wall-clock time that does not exist on a spring-forward day moves
//! forward by the length of the gap (02:30 becomes 03:30), and one that happens twice on a
//! fall-back day is used once, at its first occurrence (jiff's "compatible"
//! disambiguation, the same rule as RFC 5545 and JavaScript's Temporal).
//!
//! `every` slots are counted from midnight of 1970-01-01 in the configured zone, so they do
//! not depend on when the daemon was started, and they keep a fixed interval across DST
//! changes (an interval is elapsed time, not wall-clock time).

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};

use crate::posts::config::{Blackout, ScheduleConfig, Slots};

/// One posting slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    /// The configured time, before jitter: the slot's identity in the state file.
    pub nominal: Timestamp,
    /// When it is due: `nominal` plus the jitter, never at or past the next slot's nominal.
    pub at: Timestamp,
}

/// The slots of one schedule, with the seed that fixes their jitter.
#[derive(Debug, Clone, Copy)]
pub struct SlotClock<'a> {
    schedule: &'a ScheduleConfig,
    seed: u64,
}

impl<'a> SlotClock<'a> {
    pub fn new(schedule: &'a ScheduleConfig, seed: u64) -> Self {
        SlotClock { schedule, seed }
    }

    /// Every slot whose nominal time is strictly after `after`, in order. Endless: callers
    /// stop with `take_while`.
    pub fn slots_after(&self, after: Timestamp) -> impl Iterator<Item = Slot> + 'a {
        let mut nominals = NominalSlots::new(self.schedule, after).peekable();
        let seed = self.seed;
        let jitter = self.schedule.jitter;
        std::iter::from_fn(move || {
            let nominal = nominals.next()?;
            // Half the gap to the next slot at most, so jitter never reorders slots; the
            // next slot is a fixed function of this one, so the result does not depend on
            // where the iteration started.
            let room = nominals
                .peek()
                .map(|next| next.duration_since(nominal) / 2)
                .unwrap_or(jitter);
            let offset = jitter_offset(seed, nominal, jitter.min(room));
            Some(Slot {
                nominal,
                at: nominal + offset,
            })
        })
    }

    /// Whether `at` falls on a blackout day (in the schedule's zone).
    pub fn in_blackout(&self, at: Timestamp) -> bool {
        blackout_containing(self.schedule, local_date(self.schedule, at)).is_some()
    }
}

/// A reproducible offset in `[0, max]` for the slot at `nominal`.
fn jitter_offset(seed: u64, nominal: Timestamp, max: SignedDuration) -> SignedDuration {
    let max_seconds = max.as_secs();
    if max_seconds <= 0 {
        return SignedDuration::ZERO;
    }
    let slot_seed = seed ^ (nominal.as_second() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rng = rand::rngs::StdRng::seed_from_u64(slot_seed);
    SignedDuration::from_secs(rng.random_range(0..=max_seconds))
}

fn local_date(schedule: &ScheduleConfig, at: Timestamp) -> Date {
    at.to_zoned(schedule.timezone.clone()).date()
}

fn blackout_containing(schedule: &ScheduleConfig, date: Date) -> Option<&Blackout> {
    schedule
        .blackout
        .iter()
        .filter(|range| range.first <= date && date <= range.last)
        .max_by_key(|range| range.last)
}

/// The instant a wall-clock time names in `zone`: a time in a DST gap moves forward by the
/// gap, a repeated time is its first occurrence.
fn resolve(zone: &TimeZone, datetime: DateTime) -> Option<Timestamp> {
    zone.to_ambiguous_timestamp(datetime).compatible().ok()
}

/// Nominal slot times after a given instant, skipping blackout days.
struct NominalSlots<'a> {
    schedule: &'a ScheduleConfig,
    after: Timestamp,
    state: Cursor,
}

enum Cursor {
    /// `times` on `days`: the day being walked and its remaining slots (reversed).
    Times {
        day: Date,
        pending: Vec<Timestamp>,
    },
    /// `every`: the index of the next slot counted from the anchor.
    Every {
        anchor: Timestamp,
        next: i64,
    },
    Done,
}

/// How many days `times`/`days` may walk without finding a slot before giving up (only a
/// schedule with no days at all could get there; config validation forbids it).
const MAX_EMPTY_DAYS: i32 = 366 * 2;

impl<'a> NominalSlots<'a> {
    fn new(schedule: &'a ScheduleConfig, after: Timestamp) -> Self {
        let state = match &schedule.slots {
            Slots::Times { .. } => {
                // Start one day early: a slot late on the previous local day can still be
                // after `after` when jitter or a DST gap is involved.
                let day = local_date(schedule, after)
                    .yesterday()
                    .unwrap_or(local_date(schedule, after));
                Cursor::Times {
                    day,
                    pending: Vec::new(),
                }
            }
            Slots::Every(every) => {
                let anchor = resolve(
                    &schedule.timezone,
                    jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0),
                )
                .unwrap_or(Timestamp::UNIX_EPOCH);
                let every_seconds = every.as_secs().max(1);
                let since = after.as_second() - anchor.as_second();
                Cursor::Every {
                    anchor,
                    next: since.div_euclid(every_seconds) + 1,
                }
            }
        };
        NominalSlots {
            schedule,
            after,
            state,
        }
    }

    fn next_times(&mut self) -> Option<Timestamp> {
        let Slots::Times { times, days } = &self.schedule.slots else {
            return None;
        };
        let Cursor::Times { day, pending } = &mut self.state else {
            return None;
        };
        let mut empty_days = 0;
        loop {
            if let Some(next) = pending.pop() {
                return Some(next);
            }
            if empty_days > MAX_EMPTY_DAYS {
                self.state = Cursor::Done;
                return None;
            }
            let today = *day;
            *day = today.tomorrow().ok()?;
            empty_days += 1;
            if let Some(range) = blackout_containing(self.schedule, today) {
                // Jump past the whole range at once.
                *day = range.last.tomorrow().ok()?;
                continue;
            }
            if !days.contains(&today.weekday()) {
                continue;
            }
            let mut slots: Vec<Timestamp> = times
                .iter()
                .filter_map(|time| resolve(&self.schedule.timezone, today.to_datetime(*time)))
                .filter(|slot| *slot > self.after)
                .collect();
            // A time in a DST gap can land on another configured time: use it once.
            slots.sort();
            slots.dedup();
            slots.reverse();
            *pending = slots;
            if !pending.is_empty() {
                empty_days = 0;
            }
        }
    }

    fn next_every(&mut self) -> Option<Timestamp> {
        let Slots::Every(every) = &self.schedule.slots else {
            return None;
        };
        let every_seconds = every.as_secs().max(1);
        let Cursor::Every { anchor, next } = &mut self.state else {
            return None;
        };
        loop {
            let slot = anchor
                .checked_add(SignedDuration::from_secs(next.checked_mul(every_seconds)?))
                .ok()?;
            *next += 1;
            let date = local_date(self.schedule, slot);
            match blackout_containing(self.schedule, date) {
                None => return Some(slot),
                Some(range) => {
                    // Jump to the first slot after the range's last day.
                    let end = resolve(
                        &self.schedule.timezone,
                        range.last.tomorrow().ok()?.at(0, 0, 0, 0),
                    )?;
                    let since = end.as_second() - 1 - anchor.as_second();
                    *next = (*next).max(since.div_euclid(every_seconds) + 1);
                }
            }
        }
    }
}

impl Iterator for NominalSlots<'_> {
    type Item = Timestamp;

    fn next(&mut self) -> Option<Timestamp> {
        match self.state {
            Cursor::Times { .. } => self.next_times(),
            Cursor::Every { .. } => self.next_every(),
            Cursor::Done => None,
        }
    }
}

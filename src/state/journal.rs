//! The mentions journal: what happened to mentions since the state file was last saved, one
//! JSON line per event, appended to `<state dir>/mentions.journal`.
//!
//! Why: saving the whole state file (write a temporary file, flush it, rename it, flush the
//! folder) twice per reply cost four flushes and two renames of a file of tens of kilobytes
//! for each mention answered. A reply needs only its intent on disk before it is sent; an
//! appended line and one `fdatasync(2)` give that.
//!
//! * A reply's **intent** is appended and flushed before the reply is sent
//!   ([`JournalEntry::Intent`]): at any power cut after that, the next start finds it pending
//!   and looks for the reply before anything is sent again, as with the state file.
//! * **What was done** with a mention ([`JournalEntry::Handled`]) is appended without a flush
//!   of its own: the next flush (the next intent's, or a save) carries it. Lost in a power
//!   cut, the intent it closed is pending again, and resolving it finds the reply on the
//!   server: nothing is sent twice, and nothing acknowledged is lost.
//! * **Compaction**: every save of the state file includes everything journaled (the daemon
//!   applies each event to its state before appending it), so a save empties the journal,
//!   after the new state file is in place and flushed. The daemon saves when the journal
//!   reaches [`COMPACT_AT`] events, after each catch-up and at shutdown.
//! * **Replay** ([`MentionsState::apply`]) is idempotent, so a journal whose emptying was lost
//!   in a crash replays onto a state file that already has its events, harmlessly.
//! * A last line cut short by a crash (no newline at its end) was never flushed, so never
//!   acknowledged: it is ignored. Any other line that does not parse is refused like a
//!   corrupt state file, and the file is never overwritten.

use serde::{Deserialize, Serialize};

use super::{HandledMention, MentionsState, ReplyIntent};

/// The journal's name inside the state directory.
pub const JOURNAL_FILE_NAME: &str = "mentions.journal";

/// The daemon folds the journal into the state file once it holds this many events: the
/// journal stays small (a few hundred kilobytes at most) and a start replays it at once.
pub const COMPACT_AT: usize = 500;

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum JournalEntry {
    /// A reply is about to be sent: it is pending until a [`JournalEntry::Handled`] of the
    /// same notification.
    Intent(ReplyIntent),
    /// A mention was dealt with (answered, or skipped); its intent, if any, is done.
    Handled(HandledMention),
}

impl MentionsState {
    /// Applies one journaled event. Idempotent: applying an event the state already has
    /// changes nothing.
    pub fn apply(&mut self, entry: JournalEntry) {
        match entry {
            JournalEntry::Intent(intent) => {
                if self.is_handled(&intent.notification) {
                    return;
                }
                match self
                    .pending
                    .iter_mut()
                    .find(|pending| pending.notification == intent.notification)
                {
                    // The same intent again, with what the network chose before its first
                    // send.
                    Some(pending) => *pending = intent,
                    None => self.pending.push(intent),
                }
            }
            JournalEntry::Handled(handled) => {
                self.pending
                    .retain(|pending| pending.notification != handled.notification);
                if !self.is_handled(&handled.notification) {
                    self.handled.push(handled);
                }
            }
        }
    }

    /// Whether `notification` is among the mentions dealt with.
    pub fn is_handled(&self, notification: &str) -> bool {
        // Newest last: a duplicate is almost always recent.
        self.handled
            .iter()
            .rev()
            .any(|handled| handled.notification == notification)
    }
}

/// What reading a journal's bytes gave.
pub(super) struct Replayed {
    pub entries: Vec<JournalEntry>,
    /// A last line without its newline (cut short by a crash), ignored.
    pub torn_tail: bool,
}

/// Parses a journal's bytes. `Err` names the line (from 1) and column of the first line that
/// does not parse, other than a torn last one. Pure.
pub(super) fn parse_journal(bytes: &[u8]) -> Result<Replayed, String> {
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |n| n + 1);
    let torn_tail = complete < bytes.len();
    let mut entries = Vec::new();
    for (index, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry = serde_json::from_slice::<JournalEntry>(line).map_err(|error| {
            format!(
                "line {}, column {}: {}",
                index + 1,
                error.column().max(1),
                strip_position(&error)
            )
        })?;
        entries.push(entry);
    }
    Ok(Replayed { entries, torn_tail })
}

/// serde_json's message without its " at line L column C".
fn strip_position(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    full.strip_suffix(&position).unwrap_or(&full).to_string()
}

/// The events as journal lines, each ending in a newline.
pub(super) fn journal_lines(entries: &[JournalEntry]) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = Vec::with_capacity(256 * entries.len());
    for entry in entries {
        serde_json::to_writer(&mut bytes, entry)?;
        bytes.push(b'\n');
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::posts::config::Visibility;
    use crate::state::{MentionOutcome, SkipReason};

    fn intent(notification: &str) -> ReplyIntent {
        ReplyIntent {
            notification: notification.to_string(),
            status: format!("s{notification}"),
            acct: "alice".to_string(),
            text: "@alice see https://example.org/guide".to_string(),
            visibility: Visibility::Unlisted,
            idempotency_key: format!("k{notification}"),
            started: Timestamp::UNIX_EPOCH,
            key: None,
        }
    }

    fn handled(notification: &str) -> HandledMention {
        HandledMention {
            notification: notification.to_string(),
            status: format!("s{notification}"),
            acct: "alice".to_string(),
            at: Timestamp::UNIX_EPOCH,
            outcome: MentionOutcome::Replied {
                status_id: format!("r{notification}"),
            },
        }
    }

    fn replay(state: &mut MentionsState, entries: &[JournalEntry]) {
        for entry in entries {
            state.apply(entry.clone());
        }
    }

    #[test]
    fn replaying_twice_is_replaying_once() {
        let entries = [
            JournalEntry::Intent(intent("1")),
            JournalEntry::Intent(intent("2")),
            JournalEntry::Handled(handled("1")),
            JournalEntry::Handled(HandledMention {
                outcome: MentionOutcome::Skipped {
                    reason: SkipReason::Bot,
                },
                ..handled("3")
            }),
        ];
        let mut once = MentionsState::default();
        replay(&mut once, &entries);
        assert_eq!(once.pending, vec![intent("2")]);
        let notifications: Vec<_> = once.handled.iter().map(|h| &h.notification).collect();
        assert_eq!(notifications, ["1", "3"]);
        let mut twice = once.clone();
        replay(&mut twice, &entries);
        assert_eq!(twice, once);
    }

    #[test]
    fn an_intent_again_keeps_what_was_chosen_before_its_first_send() {
        let mut state = MentionsState::default();
        state.apply(JournalEntry::Intent(intent("1")));
        let keyed = ReplyIntent {
            key: Some("3kabc".to_string()),
            ..intent("1")
        };
        state.apply(JournalEntry::Intent(keyed.clone()));
        assert_eq!(state.pending, vec![keyed]);
    }

    #[test]
    fn lines_round_trip_and_a_torn_last_line_is_ignored() {
        let entries = vec![
            JournalEntry::Intent(intent("1")),
            JournalEntry::Handled(handled("1")),
        ];
        let mut bytes = journal_lines(&entries).unwrap();
        let whole = parse_journal(&bytes).unwrap();
        assert_eq!(whole.entries, entries);
        assert!(!whole.torn_tail);
        let more = journal_lines(&[JournalEntry::Intent(intent("2"))]).unwrap();
        bytes.extend_from_slice(&more[..more.len() / 2]);
        let torn = parse_journal(&bytes).unwrap();
        assert_eq!(torn.entries, entries);
        assert!(torn.torn_tail);
    }

    #[test]
    fn a_bad_line_before_the_last_is_refused_with_its_position() {
        let mut bytes = journal_lines(&[JournalEntry::Intent(intent("1"))]).unwrap();
        bytes.extend_from_slice(b"{\"handled\": 12}\n");
        bytes.extend_from_slice(&journal_lines(&[JournalEntry::Handled(handled("1"))]).unwrap());
        let error = parse_journal(&bytes).err().expect("refused");
        assert!(error.starts_with("line 2, column "), "{error}");
    }
}

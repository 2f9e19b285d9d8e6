//! How long to wait before trying a request again: one rule for posts, replies, catch-ups and
//! connecting.
//!
//! Every retry waits at least the jittered exponential backoff of its attempt (1–2 s, 2–4 s,
//! … up to 2.5–5 min), even when the server named a shorter wait: GoToSocial sends
//! `X-Ratelimit-Reset` in whole seconds and no `Retry-After`, so a wait computed from it
//! rounds to 0 s, and retrying at once would spin
//! (<https://docs.gotosocial.org/en/latest/api/ratelimiting/>). A wait the server names
//! (`Retry-After`, `X-RateLimit-Reset`) is honoured up to [`MAX_SERVER_WAIT`]: a header
//! saying "a billion seconds" (or an epoch sent as seconds) must not stop the bot for good.

use std::time::Duration;

use rand::Rng;

/// The first backoff ceiling; the wait of attempt 0 is between half of it and it.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// The largest backoff ceiling.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// The longest wait taken from a server's header.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(3600);
/// Jitter added on top of a wait the server named, so that clients sharing one bucket do not
/// all come back in the same second.
const SERVER_WAIT_JITTER: Duration = Duration::from_secs(1);

/// The wait before retry number `attempt + 1` (attempt 0 is the first retry). `hint`: what
/// the server asked for, if anything.
pub fn wait(hint: Option<Duration>, attempt: u32) -> Duration {
    let floor = backoff(attempt);
    match hint {
        Some(hint) => {
            let jitter = rand::rng().random_range(0..=SERVER_WAIT_JITTER.as_millis() as u64);
            (hint.min(MAX_SERVER_WAIT) + Duration::from_millis(jitter)).max(floor)
        }
        None => floor,
    }
}

/// Exponential backoff with jitter: a random wait between half the ceiling and the ceiling,
/// the ceiling being 2 s, 4 s, 8 s … 5 min.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = backoff_ceiling(attempt);
    let millis =
        rand::rng().random_range(ceiling.as_millis() as u64 / 2..=ceiling.as_millis() as u64);
    Duration::from_millis(millis)
}

fn backoff_ceiling(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(MAX_BACKOFF)
}

/// `now + wait` on tokio's clock, never panicking (a wait too long to represent becomes
/// [`MAX_SERVER_WAIT`]).
pub fn instant_after(wait: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(wait)
        .or_else(|| now.checked_add(MAX_SERVER_WAIT))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..40 {
            let wait = backoff(attempt);
            let ceiling = backoff_ceiling(attempt);
            assert!(
                wait <= ceiling && wait >= ceiling / 2,
                "{attempt}: {wait:?}"
            );
        }
        assert!(backoff(30) <= MAX_BACKOFF);
    }

    #[test]
    fn a_zero_second_hint_still_waits_the_backoff_floor() {
        for attempt in 0..10 {
            let wait = wait(Some(Duration::ZERO), attempt);
            assert!(wait >= backoff_ceiling(attempt) / 2, "{attempt}: {wait:?}");
        }
    }

    #[test]
    fn a_huge_hint_is_capped_at_an_hour() {
        for hint in [
            Duration::from_secs(1_000_000_000_000),
            Duration::from_secs(1_796_354_000),
            Duration::MAX,
        ] {
            let wait = wait(Some(hint), 0);
            assert!(wait <= MAX_SERVER_WAIT + SERVER_WAIT_JITTER, "{wait:?}");
            assert!(wait >= MAX_SERVER_WAIT, "{wait:?}");
        }
    }

    #[test]
    fn a_named_wait_is_honoured_with_a_little_jitter() {
        let wait = wait(Some(Duration::from_secs(52)), 0);
        assert!(wait >= Duration::from_secs(52) && wait <= Duration::from_secs(53));
    }

    #[test]
    fn instants_never_overflow() {
        let _ = instant_after(Duration::MAX);
        let _ = instant_after(Duration::from_secs(u64::MAX));
    }
}

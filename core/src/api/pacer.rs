//! One shared pace for every call of a client, slowing down after 429s.

use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

/// The pace skysync keeps by default, in calls per second: Blackbaud's rate-limit docs say 5
/// calls per second (its newer throttling page says 10), so 5 is safe under either. The CLI's
/// `--rate-limit` and the browser bindings both start from it.
pub const DEFAULT_PACE: f64 = 5.0;

/// The longest spacing a [`Pacer`] uses.
const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

/// A shared pace for all requests of a client: at most `rate` calls per second, slowing down
/// after each 429 and recovering slowly.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<PacerState>,
    floor: Duration,
}

#[derive(Debug)]
struct PacerState {
    interval: Duration,
    next_slot: Option<OffsetDateTime>,
}

impl Pacer {
    /// A pacer for `per_second` calls per second (0 = unlimited).
    pub fn new(per_second: f64) -> Self {
        // A tiny rate would overflow `Duration` (and the slot arithmetic): one call a day is slow enough.
        let floor = if per_second > 0.0 {
            Duration::try_from_secs_f64(1.0 / per_second).unwrap_or(MAX_INTERVAL).min(MAX_INTERVAL)
        } else {
            Duration::ZERO
        };
        Self { state: Mutex::new(PacerState { interval: floor, next_slot: None }), floor }
    }

    /// Reserves the next slot at or after `now`; returns how long to wait for it.
    pub fn reserve(&self, now: OffsetDateTime) -> Duration {
        let mut st = self.state.lock().expect("pacer");
        let slot = match st.next_slot {
            Some(s) if s > now => s,
            _ => now,
        };
        st.next_slot = Some(slot + st.interval);
        let wait = slot - now;
        if wait.is_positive() { wait.unsigned_abs() } else { Duration::ZERO }
    }

    /// A 429 arrived: hold everyone until `retry_after` has passed and slow down by half.
    pub fn throttled(&self, now: OffsetDateTime, retry_after: Duration) {
        let mut st = self.state.lock().expect("pacer");
        let base = st.interval.max(Duration::from_millis(50));
        // Slow down, capped at 5 s between calls, but never faster than the configured pace.
        st.interval = (base * 3 / 2).min(Duration::from_secs(5)).max(self.floor);
        let resume = now + retry_after;
        if st.next_slot.is_none_or(|s| s < resume) {
            st.next_slot = Some(resume);
        }
    }

    /// A call succeeded: drift back toward the configured pace.
    pub fn succeeded(&self) {
        let mut st = self.state.lock().expect("pacer");
        if st.interval > self.floor {
            st.interval = (st.interval * 19 / 20).max(self.floor);
        }
    }

    /// The current spacing between calls.
    pub fn interval(&self) -> Duration {
        self.state.lock().expect("pacer").interval
    }
}

//! The per-merchant pace of calls to WeChat.
//!
//! One call every `60 s / rate_per_minute`, never two in the same slot: at
//! most `rate_per_minute` calls in any minute and at most `rate / 60` in
//! any second, whichever way WeChat counts. Slots are 1% longer than the
//! quota needs, so that the jitter of the network cannot make WeChat see
//! one call too many in its window. A `FREQ_LIMIT` halves the pace for a
//! minute. Sends and queries share the pace: WeChat counts both.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long a `FREQ_LIMIT` slows the merchant down.
const SLOW_FOR: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct State {
    next: Instant,
    slow_until: Option<Instant>,
}

/// The pace of one merchant's calls.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    state: Mutex<State>,
}

impl Pacer {
    /// A pace of at most `rate_per_minute` calls a minute.
    pub fn per_minute(rate_per_minute: u32) -> Pacer {
        let rate = u64::from(rate_per_minute.max(1));
        // 60 s × 1.01 / rate, in nanoseconds.
        let interval = Duration::from_nanos(60_600_000_000 / rate);
        Pacer {
            interval,
            state: Mutex::new(State {
                next: Instant::now(),
                slow_until: None,
            }),
        }
    }

    /// The time between two calls at full pace.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How many calls fit in `window` at full pace.
    pub fn calls_in(&self, window: Duration) -> u32 {
        u32::try_from(window.as_nanos() / self.interval.as_nanos().max(1)).unwrap_or(u32::MAX)
    }

    /// Takes the next slot and waits for it; returns how long it waited.
    pub async fn wait(&self) -> Duration {
        let now = Instant::now();
        let slot = {
            let mut state = self.state.lock().expect("pacer lock");
            let slow = state.slow_until.is_some_and(|until| now < until);
            let interval = if slow {
                self.interval * 2
            } else {
                self.interval
            };
            let slot = state.next.max(now);
            state.next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
        slot.saturating_duration_since(now)
    }

    /// Halves the pace for a minute (WeChat answered `FREQ_LIMIT`), and
    /// leaves a one-second gap before the next call.
    pub fn slow_down(&self) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("pacer lock");
        state.slow_until = Some(now + SLOW_FOR);
        state.next = state.next.max(now + Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_rate_in_any_minute() {
        let pacer = Pacer::per_minute(600);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..1_300 {
            pacer.wait().await;
            times.push(Instant::now().duration_since(start));
        }
        // Any window of 60 s holds at most 600 calls.
        let minute = Duration::from_secs(60);
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u < *t + minute).count();
            assert!(
                in_window <= 600,
                "{in_window} calls in the minute from {t:?}"
            );
        }
        // And the pace is within 1% of the quota.
        let per_minute = 1_299 * 60_000 / u64::try_from(times[1_299].as_millis()).unwrap();
        assert!((593..=600).contains(&per_minute), "{per_minute}");
    }

    #[tokio::test(start_paused = true)]
    async fn freq_limit_halves_the_pace_for_a_minute() {
        let pacer = Pacer::per_minute(600);
        pacer.wait().await;
        pacer.slow_down();
        let start = Instant::now();
        for _ in 0..10 {
            pacer.wait().await;
        }
        // A 1 s gap, then 9 slots of 202 ms.
        assert!(Instant::now().duration_since(start) >= Duration::from_millis(1_000 + 9 * 200));
    }
}

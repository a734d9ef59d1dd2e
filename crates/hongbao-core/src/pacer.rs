//! The per-merchant pace of calls to WeChat, shared through the database
//! by every process that calls on the merchant's behalf.
//!
//! One call every `60 s / rate_per_minute`, never two in the same slot: at
//! most `rate_per_minute` calls in any minute and at most `rate / 60` in
//! any second, whichever way WeChat counts. Slots are 1% longer than the
//! quota needs, so that the jitter of the network cannot make WeChat see
//! one call too many in its window. A `FREQ_LIMIT` halves the pace for a
//! minute. Sends and queries share the pace: WeChat counts both.
//!
//! The quota is the merchant's, however many `hongbao serve`, `send` or
//! `campaign run` processes share its database, so the slots are handed
//! out by the database: a process reserves a few consecutive slots at a
//! time (as many as it has callers waiting, at most 100 ms worth) by
//! moving the merchant's `next_slot_us` forward in one transaction. Slots
//! are times on the database's clock, so processes whose own clocks
//! disagree still share one timeline. A slot is used within its own
//! interval or not at all: a process that reaches a slot late (a pause, a
//! slow commit) skips it rather than making up for it with a burst.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::store::db::{Db, DbError};

/// How long a `FREQ_LIMIT` slows the merchant down (µs).
const SLOW_FOR_US: i64 = 60_000_000;
/// The gap left after a `FREQ_LIMIT` before the next call (µs).
const GAP_AFTER_LIMIT_US: i64 = 1_000_000;
/// The most pace one reservation takes. Slots are only reserved for
/// callers already waiting, so they are used unless the process dies: then
/// the slots of its queue are lost (the dispatcher queues at most 2 s of
/// pace), and the merchant's next calls wait that long.
const BLOCK: Duration = Duration::from_millis(100);
/// How late a slot may still be used when slots are closer than this: at
/// the pace WeChat allows (30 a second) a slot is only good until the next.
const LATE_AT_MOST: Duration = Duration::from_millis(5);
/// How long a caller keeps trying to reach the database for a slot.
const RESERVE_FOR: Duration = Duration::from_secs(10);

/// Slots reserved from the shared timeline: `first`, `first + step`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The first slot (database time, µs).
    pub first_us: i64,
    /// The time between two slots (µs).
    pub step_us: i64,
    /// How many slots.
    pub count: u32,
    /// The merchant's next free slot after these.
    pub next_us: i64,
}

/// Reserves `count` consecutive slots: from the next free slot, or from
/// `now` if the pace has been idle, two intervals apart while slowed down.
pub fn reserve(
    next_slot_us: i64,
    slow_until_us: i64,
    now_us: i64,
    count: u32,
    interval_us: i64,
) -> Reservation {
    let step_us = if now_us < slow_until_us {
        interval_us.saturating_mul(2)
    } else {
        interval_us
    };
    let first_us = next_slot_us.max(now_us);
    Reservation {
        first_us,
        step_us,
        count,
        next_us: first_us.saturating_add(step_us.saturating_mul(i64::from(count))),
    }
}

/// The state after a `FREQ_LIMIT` answer at `now`: `(next_slot_us,
/// slow_until_us)`.
pub fn after_freq_limit(next_slot_us: i64, now_us: i64) -> (i64, i64) {
    (
        next_slot_us.max(now_us.saturating_add(GAP_AFTER_LIMIT_US)),
        now_us.saturating_add(SLOW_FOR_US),
    )
}

/// Slots of this process, on its own clock.
#[derive(Debug)]
struct Block {
    next: Instant,
    step: Duration,
    left: u32,
}

/// The pace of one merchant's calls.
#[derive(Debug)]
pub struct Pacer {
    db: Db,
    /// The merchant account: WeChat's quota is per mch_id.
    mch_id: String,
    /// Full pace: the time between two calls (µs).
    interval_us: i64,
    /// The most slots one reservation takes.
    block_max: u32,
    /// Callers in [`Pacer::wait`]: how many slots to reserve next.
    waiting: AtomicUsize,
    /// Slots reserved and not yet used. Held across a reservation, so
    /// that one caller at a time asks the database.
    block: tokio::sync::Mutex<Block>,
}

/// Decrements the waiting count when a caller leaves, however it leaves.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pacer {
    /// A pace of at most `rate_per_minute` calls a minute for the merchant
    /// account `mch_id`, shared with every process on `db`.
    pub fn per_minute(db: Db, mch_id: &str, rate_per_minute: u32) -> Pacer {
        let rate = i64::from(rate_per_minute.max(1));
        // 60 s × 1.01 / rate, in microseconds (at least 1).
        let interval_us = (60_600_000 / rate).max(1);
        let per_block = i64::try_from(BLOCK.as_micros()).unwrap_or(i64::MAX) / interval_us;
        Pacer {
            db,
            mch_id: mch_id.to_owned(),
            interval_us,
            block_max: u32::try_from(per_block.clamp(1, 1024)).unwrap_or(1),
            waiting: AtomicUsize::new(0),
            block: tokio::sync::Mutex::new(Block {
                next: Instant::now(),
                step: Duration::ZERO,
                left: 0,
            }),
        }
    }

    /// The time between two calls at full pace.
    pub fn interval(&self) -> Duration {
        Duration::from_micros(u64::try_from(self.interval_us).unwrap_or(1))
    }

    /// How many calls fit in `window` at full pace.
    pub fn calls_in(&self, window: Duration) -> u32 {
        u32::try_from(window.as_micros() / self.interval().as_micros().max(1)).unwrap_or(u32::MAX)
    }

    /// Takes the next slot and waits for it; returns how long it waited.
    /// Fails only when the database could not be reached for a while: then
    /// no call may be made.
    pub async fn wait(&self) -> Result<Duration, DbError> {
        let entered = Instant::now();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        let mut failures = 0u32;
        loop {
            let mut block = self.block.lock().await;
            let now = Instant::now();
            while block.left > 0 {
                let (slot, step) = (block.next, block.step);
                block.next = slot + step;
                block.left -= 1;
                // A slot is good until the next one begins (or for 5 ms at
                // paces so fast that taking a lock takes longer); a later
                // one is skipped, never used in a burst with the next.
                if now < slot + step.max(LATE_AT_MOST) {
                    drop(block);
                    tokio::time::sleep_until(slot).await;
                    return Ok(entered.elapsed());
                }
            }
            let want = u32::try_from(self.waiting.load(Ordering::SeqCst))
                .unwrap_or(u32::MAX)
                .clamp(1, self.block_max);
            match self.reserve_slots(want).await {
                Ok(reserved) => *block = reserved,
                Err(e) => {
                    drop(block);
                    failures += 1;
                    if entered.elapsed() >= RESERVE_FOR {
                        return Err(e);
                    }
                    tracing::warn!(mch_id = %self.mch_id, "cannot reserve a slot of the pace: {e}");
                    tokio::time::sleep(Duration::from_millis(100) * failures.min(10)).await;
                }
            }
        }
    }

    /// Reserves `count` slots in the database and maps them onto this
    /// process's clock.
    async fn reserve_slots(&self, count: u32) -> Result<Block, DbError> {
        let interval_us = self.interval_us;
        let (now_us, local, reservation) = self
            .update(move |next, slow_until, now| {
                let r = reserve(next, slow_until, now, count, interval_us);
                (r.next_us, slow_until, r)
            })
            .await?;
        let offset = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        let ahead = reservation.first_us - now_us;
        Ok(Block {
            next: local + offset(ahead),
            step: offset(reservation.step_us),
            left: reservation.count,
        })
    }

    /// Halves the pace of every process for a minute (WeChat answered
    /// `FREQ_LIMIT`), after a one-second gap. The slots this process had
    /// reserved are given up; those of others run out within 100 ms.
    pub async fn slow_down(&self) {
        let mut block = self.block.lock().await;
        block.left = 0;
        let result = self
            .update(|next, _, now| {
                let (next, slow_until) = after_freq_limit(next, now);
                (next, slow_until, ())
            })
            .await;
        if let Err(e) = result {
            // The pace stays as it was; the next FREQ_LIMIT tries again.
            tracing::warn!(mch_id = %self.mch_id, "cannot slow the pace down: {e}");
        }
    }

    /// Reads the merchant's pace under a write lock, applies `change` and
    /// stores it ([`crate::store::pace::update`]).
    async fn update<T, F>(&self, change: F) -> Result<(i64, Instant, T), DbError>
    where
        T: Send + 'static,
        F: Fn(i64, i64, i64) -> (i64, i64, T) + Send + Sync + Clone + 'static,
    {
        crate::store::pace::update(&self.db, &self.mch_id, change).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_pace_starts_now_and_a_busy_one_after_the_last_slot() {
        let idle = reserve(1_000, 0, 5_000, 3, 100);
        assert_eq!(
            (idle.first_us, idle.step_us, idle.next_us),
            (5_000, 100, 5_300)
        );
        let busy = reserve(9_000, 0, 5_000, 2, 100);
        assert_eq!((busy.first_us, busy.next_us), (9_000, 9_200));
    }

    #[test]
    fn a_slowed_pace_takes_two_intervals_a_slot_until_the_minute_is_over() {
        let (next, slow_until) = after_freq_limit(0, 10_000_000);
        assert_eq!(next, 11_000_000);
        assert_eq!(slow_until, 70_000_000);
        let slowed = reserve(next, slow_until, 10_500_000, 4, 100);
        assert_eq!((slowed.first_us, slowed.step_us), (11_000_000, 200));
        let later = reserve(next, slow_until, 70_000_000, 4, 100);
        assert_eq!(later.step_us, 100);
    }

    #[test]
    fn consecutive_reservations_never_share_a_slot() {
        let mut next = 0;
        let mut taken = Vec::new();
        for (i, count) in [3u32, 1, 7, 2].into_iter().enumerate() {
            let now = i64::try_from(i).unwrap() * 150;
            let r = reserve(next, 0, now, count, 100);
            taken.extend((0..i64::from(count)).map(|k| r.first_us + k * r.step_us));
            next = r.next_us;
        }
        assert!(taken.windows(2).all(|w| w[1] - w[0] >= 100), "{taken:?}");
    }
}

//! The one clock every time-dependent decision reads.
//!
//! Delays, retries, cron ticks, rate windows and the timestamps the API reports all come from
//! [`Clock::now_ms`]. Real time flows by default; tests (in-process, or through the
//! `-clock-control` endpoints of the binary) can jump it forward or freeze it, so a 12 s backoff
//! or a 2 h delay never has to be waited for.
//!
//! JWT `iat`/`exp` deliberately do *not* use this clock: receivers check them against their
//! own system time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Sentinel for "not frozen" in [`Inner::frozen_at`].
const RUNNING: i64 = i64::MIN;

#[derive(Clone)]
pub struct Clock(Arc<Inner>);

struct Inner {
    origin: Instant,
    origin_wall_ms: i64,
    /// Milliseconds added to real elapsed time by [`Clock::advance`].
    offset_ms: AtomicI64,
    /// The frozen reading while paused, [`RUNNING`] otherwise.
    frozen_at: AtomicI64,
    /// Woken on every jump so sleepers re-evaluate their deadline.
    changed: Notify,
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// A clock that follows the system time until someone advances or pauses it.
    pub fn system() -> Self {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Self(Arc::new(Inner {
            origin: Instant::now(),
            origin_wall_ms: wall,
            offset_ms: AtomicI64::new(0),
            frozen_at: AtomicI64::new(RUNNING),
            changed: Notify::new(),
        }))
    }

    /// Unix milliseconds as the broker sees them.
    pub fn now_ms(&self) -> i64 {
        let frozen = self.0.frozen_at.load(Ordering::Acquire);
        if frozen != RUNNING {
            return frozen;
        }
        self.running_now()
    }

    fn running_now(&self) -> i64 {
        self.0.origin_wall_ms
            + self.0.origin.elapsed().as_millis() as i64
            + self.0.offset_ms.load(Ordering::Acquire)
    }

    /// Moves time forward by `ms` (negative values are ignored: time never runs backwards).
    pub fn advance(&self, ms: i64) {
        if ms <= 0 {
            return;
        }
        self.0.offset_ms.fetch_add(ms, Ordering::AcqRel);
        let frozen = self.0.frozen_at.load(Ordering::Acquire);
        if frozen != RUNNING {
            self.0.frozen_at.store(frozen + ms, Ordering::Release);
        }
        self.0.changed.notify_waiters();
    }

    /// Stops time at its current reading until [`Clock::resume`].
    pub fn pause(&self) {
        let now = self.running_now();
        let _ =
            self.0
                .frozen_at
                .compare_exchange(RUNNING, now, Ordering::AcqRel, Ordering::Acquire);
        self.0.changed.notify_waiters();
    }

    /// Lets time flow again from the frozen reading (no jump).
    pub fn resume(&self) {
        let frozen = self.0.frozen_at.load(Ordering::Acquire);
        if frozen == RUNNING {
            return;
        }
        let lag = self.running_now() - frozen;
        self.0.offset_ms.fetch_sub(lag, Ordering::AcqRel);
        self.0.frozen_at.store(RUNNING, Ordering::Release);
        self.0.changed.notify_waiters();
    }

    pub fn is_paused(&self) -> bool {
        self.0.frozen_at.load(Ordering::Acquire) != RUNNING
    }

    /// Sleeps until the clock reads at least `deadline_ms`, waking early on every jump.
    pub async fn sleep_until(&self, deadline_ms: i64) {
        loop {
            let changed = self.0.changed.notified();
            tokio::pin!(changed);
            // Register before reading the time so a jump between the read and the await
            // is not missed.
            changed.as_mut().enable();
            let now = self.now_ms();
            if now >= deadline_ms {
                return;
            }
            if self.is_paused() {
                changed.await;
            } else {
                let wait = Duration::from_millis((deadline_ms - now) as u64);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = changed => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward() {
        let clock = Clock::system();
        let before = clock.now_ms();
        clock.advance(12_000);
        assert!(clock.now_ms() >= before + 12_000);
    }

    #[test]
    fn pause_freezes_and_resume_continues_without_jump() {
        let clock = Clock::system();
        clock.pause();
        let frozen = clock.now_ms();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.now_ms(), frozen);
        clock.advance(1_000);
        assert_eq!(clock.now_ms(), frozen + 1_000);
        clock.resume();
        let after = clock.now_ms();
        assert!(
            after >= frozen + 1_000 && after < frozen + 1_050,
            "{after} vs {frozen}"
        );
    }

    #[tokio::test]
    async fn sleep_until_wakes_on_advance() {
        let clock = Clock::system();
        let target = clock.now_ms() + 3_600_000;
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(target).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        clock.advance(3_600_000);
        tokio::time::timeout(Duration::from_secs(2), sleeper)
            .await
            .expect("sleeper woke")
            .expect("no panic");
    }
}

//! How far the written changes reach, and the tasks waiting for a step to be written.
//!
//! Each waiter is woken once, by the commit that reaches its step: a broadcast (a `watch`
//! channel) woke every waiting request and delivery at every commit, and under load about
//! half of them were waiting for the next commit, polled for nothing and went back to wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The writer was stopped or failed: the change may not be on disk.
#[derive(Clone, Debug)]
pub struct NotDurable(pub Arc<str>);

struct Waiter {
    key: u64,
    step: u64,
    waker: Waker,
}

#[derive(Default)]
struct Waiters {
    /// Set once a commit failed: nothing later is durable.
    failed: Option<Arc<str>>,
    next_key: u64,
    list: Vec<Waiter>,
}

#[derive(Default)]
pub struct Watermark {
    /// Every step up to this one is on disk.
    durable: AtomicU64,
    waiters: Mutex<Waiters>,
}

impl Watermark {
    fn waiters(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_durable(&self, step: u64) -> bool {
        self.durable.load(Ordering::Acquire) >= step
    }

    /// Everything up to `step` is on disk: wakes the tasks waiting for it, and only those.
    pub fn reached(&self, step: u64) {
        self.durable.fetch_max(step, Ordering::AcqRel);
        let done: Vec<Waiter> = self
            .waiters()
            .list
            .extract_if(.., |w| w.step <= step)
            .collect();
        // Woken outside the lock, so a woken task never waits for it here.
        for w in done {
            w.waker.wake();
        }
    }

    /// Nothing after now becomes durable: every waiter is woken to hear why.
    pub fn fail(&self, why: String) {
        let done = {
            let mut w = self.waiters();
            w.failed = Some(why.into());
            std::mem::take(&mut w.list)
        };
        for w in done {
            w.waker.wake();
        }
    }

    /// Resolves once step `step` is on disk, or with why it never will be.
    pub fn wait(&self, step: u64) -> Wait<'_> {
        Wait {
            mark: self,
            step,
            key: None,
        }
    }
}

pub struct Wait<'a> {
    mark: &'a Watermark,
    step: u64,
    /// Set while this future has a place in the waiter list (or had one until its commit
    /// took it out); cleared once it is answered.
    key: Option<u64>,
}

impl Future for Wait<'_> {
    type Output = Result<(), NotDurable>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // The `reached` call that moved the mark past this step takes (or took) this
        // waiter's entry out of the list itself, so nothing is left to clean up here.
        if this.mark.is_durable(this.step) {
            this.key = None;
            return Poll::Ready(Ok(()));
        }
        let mut w = this.mark.waiters();
        // Checked again under the lock: `reached` moves the mark before it takes the list,
        // so a waiter that missed the mark above is in the list when it looks.
        if this.mark.is_durable(this.step) {
            this.key = None;
            return Poll::Ready(Ok(()));
        }
        if let Some(why) = &w.failed {
            let why = why.clone();
            if let Some(key) = this.key.take() {
                w.list.retain(|x| x.key != key);
            }
            return Poll::Ready(Err(NotDurable(why)));
        }
        let slot = this
            .key
            .and_then(|key| w.list.iter_mut().find(|x| x.key == key));
        match slot {
            Some(x) => x.waker.clone_from(cx.waker()),
            None => {
                let key = w.next_key;
                w.next_key += 1;
                w.list.push(Waiter {
                    key,
                    step: this.step,
                    waker: cx.waker().clone(),
                });
                this.key = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.mark.waiters().list.retain(|x| x.key != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_when_its_step_is_reached_not_before() {
        let mark = Arc::new(Watermark::default());
        let (m1, m2) = (mark.clone(), mark.clone());
        let first = tokio::spawn(async move { m1.wait(1).await.is_ok() });
        let second = tokio::spawn(async move { m2.wait(2).await.is_ok() });
        tokio::task::yield_now().await;
        mark.reached(1);
        assert!(first.await.unwrap());
        assert!(!second.is_finished());
        mark.reached(2);
        assert!(second.await.unwrap());
        assert!(mark.waiters().list.is_empty());
    }

    #[tokio::test]
    async fn a_failure_answers_every_waiter_and_later_ones() {
        let mark = Arc::new(Watermark::default());
        let m = mark.clone();
        let waiting = tokio::spawn(async move { m.wait(5).await });
        tokio::task::yield_now().await;
        mark.fail("disk full".into());
        assert_eq!(&*waiting.await.unwrap().unwrap_err().0, "disk full");
        assert!(mark.wait(6).await.is_err());
        mark.reached(3);
        assert!(
            mark.wait(3).await.is_ok(),
            "what was written before stays written"
        );
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaves_the_list() {
        let mark = Watermark::default();
        let mut wait = Box::pin(mark.wait(1));
        let waker = Waker::noop();
        assert!(
            wait.as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending()
        );
        assert_eq!(mark.waiters().list.len(), 1);
        drop(wait);
        assert!(mark.waiters().list.is_empty());
    }
}

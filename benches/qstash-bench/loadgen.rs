//! The load generator: N workers, each owning one keep-alive connection, in a closed loop
//! (send, wait, send again), a counted closed loop (fill a store), or an open loop at a fixed
//! rate where request i is due at start + i/rate and its latency is measured from that
//! intended time (coordinated omission corrected: a late send counts its wait).
//!
//! Open-loop pacing: tokio timers tick in whole milliseconds, which would delay most sends by
//! ~0.5–1 ms. A pacer thread (std sleep, ~50 µs precision) releases one semaphore permit per
//! due request instead, and the workers take them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{Conn, RequestTemplate};
use crate::stamp::now_ns;
use crate::stats::Samples;

/// The pacer sleeps at least this long between releases (batches sends above ~20k/s).
const PACER_MIN_SLEEP: Duration = Duration::from_micros(50);

/// A request that takes longer than this counts as failed (and its connection is dropped).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
pub enum Load {
    /// `conns` requests in flight, measured after `warmup` for `duration`.
    Closed {
        conns: usize,
        warmup: Duration,
        duration: Duration,
    },
    /// `total` requests over `conns` connections, as fast as they are answered, for at most `limit`.
    Count {
        conns: usize,
        total: u64,
        limit: Duration,
    },
    /// `rate` requests per second over `conns` connections, measured after `warmup` for
    /// `duration`; sends still pending `grace` after the end are abandoned (`unsent`).
    Open {
        conns: usize,
        rate: f64,
        warmup: Duration,
        duration: Duration,
        grace: Duration,
    },
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// 2xx answers in the measured window (closed: completed in it; open: due in it).
    pub ok_in_window: u64,
    pub window: Duration,
    /// The measured window on the bench clock (ns).
    pub window_start: u64,
    pub window_end: u64,
    /// Latencies of the requests in the window (open loop: from the intended send time).
    pub latency: Samples,
    /// Open loop: how late sends left compared with their intended time.
    pub send_lag: Samples,
    pub ok_total: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
    /// Open/count loops: requests never sent before the hard stop.
    pub unsent: u64,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn per_s(&self) -> f64 {
        let s = self.window.as_secs_f64();
        if s == 0.0 {
            0.0
        } else {
            self.ok_in_window as f64 / s
        }
    }
}

#[derive(Default)]
struct WorkerResult {
    latency: Vec<u64>,
    lag: Vec<u64>,
    ok_in_window: u64,
    ok_total: u64,
    failed: u64,
    sent: u64,
    first_failure: Option<String>,
}

struct Plan {
    start: u64,
    warm_end: u64,
    end: u64,
    hard_stop: u64,
    open_interval_ns: Option<f64>,
    total: u64,
}

pub async fn run(template: Arc<RequestTemplate>, load: Load) -> Outcome {
    let start = now_ns();
    let ns = |d: Duration| d.as_nanos() as u64;
    let (conns, plan) = match load {
        Load::Closed {
            conns,
            warmup,
            duration,
        } => (
            conns,
            Plan {
                start,
                warm_end: start + ns(warmup),
                end: start + ns(warmup + duration),
                hard_stop: start + ns(warmup + duration) + ns(REQUEST_TIMEOUT),
                open_interval_ns: None,
                total: u64::MAX,
            },
        ),
        Load::Count {
            conns,
            total,
            limit,
        } => (
            conns,
            Plan {
                start,
                warm_end: start,
                end: start + ns(limit),
                hard_stop: start + ns(limit),
                open_interval_ns: None,
                total,
            },
        ),
        Load::Open {
            conns,
            rate,
            warmup,
            duration,
            grace,
        } => (
            conns,
            Plan {
                start,
                warm_end: start + ns(warmup),
                end: start + ns(warmup + duration),
                hard_stop: start + ns(warmup + duration + grace),
                open_interval_ns: Some(1e9 / rate),
                total: (rate * (warmup + duration).as_secs_f64()).round() as u64,
            },
        ),
    };
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicU64::new(0));
    let conns = conns.max(1);
    let permits = plan.open_interval_ns.map(|interval| {
        let sem = Arc::new(Semaphore::new(0));
        // One extra permit per worker lets each see that the run is over.
        pacer(sem.clone(), plan.start, interval, plan.total, conns);
        sem
    });
    let mut workers = JoinSet::new();
    for _ in 0..conns {
        workers.spawn(worker(
            template.clone(),
            plan.clone(),
            next.clone(),
            permits.clone(),
        ));
    }
    let mut merged = WorkerResult::default();
    while let Some(r) = workers.join_next().await {
        let Ok(r) = r else { continue };
        merged.latency.extend(r.latency);
        merged.lag.extend(r.lag);
        merged.ok_in_window += r.ok_in_window;
        merged.ok_total += r.ok_total;
        merged.failed += r.failed;
        merged.sent += r.sent;
        if merged.first_failure.is_none() {
            merged.first_failure = r.first_failure;
        }
    }
    let window = match load {
        Load::Count { .. } => Duration::from_nanos(now_ns() - start),
        Load::Closed { duration, .. } | Load::Open { duration, .. } => duration,
    };
    let unsent = match load {
        Load::Closed { .. } => 0,
        _ => plan.total.saturating_sub(merged.sent),
    };
    Outcome {
        ok_in_window: merged.ok_in_window,
        window,
        window_start: plan.warm_end,
        window_end: plan.end,
        latency: Samples::new(merged.latency),
        send_lag: Samples::new(merged.lag),
        ok_total: merged.ok_total,
        failed: merged.failed,
        first_failure: merged.first_failure,
        unsent,
        elapsed: Duration::from_nanos(now_ns() - start),
    }
}

/// Releases a permit for request i at start + i × interval, then `extra` more.
fn pacer(sem: Arc<Semaphore>, start: u64, interval: f64, total: u64, extra: usize) {
    std::thread::spawn(move || {
        let mut released = 0u64;
        while released < total {
            let now = now_ns();
            let due = if now < start {
                0
            } else {
                ((now - start) as f64 / interval) as u64 + 1
            };
            let due = due.min(total);
            if due > released {
                sem.add_permits((due - released) as usize);
                released = due;
            }
            let next_at = start + (released as f64 * interval) as u64;
            let wait = Duration::from_nanos(next_at.saturating_sub(now_ns()));
            std::thread::sleep(wait.max(PACER_MIN_SLEEP));
        }
        sem.add_permits(extra);
    });
}

async fn worker(
    template: Arc<RequestTemplate>,
    plan: Arc<Plan>,
    next: Arc<AtomicU64>,
    permits: Option<Arc<Semaphore>>,
) -> WorkerResult {
    let mut r = WorkerResult::default();
    let mut conn: Option<Conn> = None;
    loop {
        let now = now_ns();
        let (seq, intended) = match plan.open_interval_ns {
            None => {
                if now >= plan.end {
                    break;
                }
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= plan.total {
                    break;
                }
                (seq, now)
            }
            Some(interval) => {
                if now >= plan.hard_stop {
                    break;
                }
                if let Some(sem) = &permits {
                    let left = Duration::from_nanos(plan.hard_stop.saturating_sub(now));
                    match tokio::time::timeout(left, sem.acquire()).await {
                        Ok(Ok(p)) => p.forget(),
                        _ => break,
                    }
                }
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= plan.total {
                    break;
                }
                (seq, plan.start + (seq as f64 * interval) as u64)
            }
        };
        if conn.is_none() {
            match Conn::open(template.addr).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    fail(&mut r, e);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let req = template.build(seq, intended);
        let sent = now_ns();
        r.sent += 1;
        let result = tokio::time::timeout(REQUEST_TIMEOUT, c.send(req)).await;
        let done = now_ns();
        match result {
            Ok(Ok((status, _))) if status.is_success() => {
                r.ok_total += 1;
                let in_window = if plan.open_interval_ns.is_some() {
                    intended >= plan.warm_end && intended < plan.end
                } else {
                    done >= plan.warm_end && done <= plan.end
                };
                if in_window {
                    r.ok_in_window += 1;
                    r.latency.push(done - intended);
                    if plan.open_interval_ns.is_some() {
                        r.lag.push(sent.saturating_sub(intended));
                    }
                }
            }
            Ok(Ok((status, body))) => {
                let text =
                    body.map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned());
                fail(
                    &mut r,
                    format!("HTTP {status}: {}", text.unwrap_or_default()),
                );
            }
            Ok(Err(e)) => {
                conn = None;
                fail(&mut r, e);
            }
            Err(_) => {
                conn = None;
                fail(&mut r, format!("no answer within {REQUEST_TIMEOUT:?}"));
            }
        }
    }
    r
}

fn fail(r: &mut WorkerResult, e: String) {
    r.failed += 1;
    if r.first_failure.is_none() {
        r.first_failure = Some(e);
    }
}

//! The crash test: under a steady publishing load, `kill -9` the server at random moments,
//! several times, restarting it on the same directory each time. After the last restart
//! every message that was answered 2xx is delivered at least once, and none that was
//! answered an error is.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use qstash::users::USERS;

use super::TempDir;
use crate::common::binary::Started;
use crate::common::binary::heavy;

/// Publishing connections at once.
const CLIENTS: usize = 32;
const CRASHES: usize = 4;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Accepted,
    /// An answer that was not 2xx.
    Refused,
    /// No answer: the connection died with the process. The publish may or may not have
    /// been committed; the client cannot know, so neither can the test.
    Cut,
}

/// Counts deliveries per path.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<HashMap<String, u32>>>);

async fn record(State(sink): State<Sink>, req: Request) -> &'static str {
    *sink
        .0
        .lock()
        .unwrap()
        .entry(req.uri().path().to_string())
        .or_default() += 1;
    "ok"
}

async fn start_sink() -> (Sink, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sink = Sink::default();
    let app = axum::Router::new()
        .fallback(record)
        .with_state(sink.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (sink, url)
}

/// A small xorshift: the moments of the crashes, reproducible from the printed seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn persist_crash_test_loses_no_accepted_message() {
    let _heavy = heavy().await;
    let dir = TempDir::new("crash");
    let (sink, sink_url) = start_sink().await;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("crash test seed {seed}");
    let outcomes: Arc<Mutex<HashMap<u64, Outcome>>> = Arc::default();
    let counter = Arc::new(AtomicU64::new(0));
    let mut load_time = Duration::ZERO;
    for crash in 0..CRASHES {
        let mut server = Started::new(&["-data-dir", dir.path()], &[]);
        let base = server.url.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let (stop, counter, outcomes) = (stop.clone(), counter.clone(), outcomes.clone());
            let (base, sink_url) = (base.clone(), sink_url.clone());
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let answer = http
                        .post(format!("{base}/v2/publish/{sink_url}/m{n}"))
                        .bearer_auth(USERS[0].token)
                        .body("x".repeat(100))
                        .send()
                        .await;
                    let outcome = match answer {
                        Ok(r) if r.status().is_success() => Outcome::Accepted,
                        Ok(_) => Outcome::Refused,
                        Err(_) => Outcome::Cut,
                    };
                    outcomes.lock().unwrap().insert(n, outcome);
                    if outcome == Outcome::Cut {
                        break;
                    }
                }
            }));
        }
        let run_for = Duration::from_millis(300 + next(&mut seed) % 1200);
        let started = Instant::now();
        tokio::time::sleep(run_for).await;
        server.dev.signal("KILL");
        server.dev.wait_exit(Duration::from_secs(15));
        load_time += started.elapsed();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        println!("crash {crash}: killed after {run_for:?}");
    }

    let outcomes = outcomes.lock().unwrap().clone();
    let count = |o: Outcome| outcomes.values().filter(|x| **x == o).count();
    let (accepted, refused, cut) = (
        count(Outcome::Accepted),
        count(Outcome::Refused),
        count(Outcome::Cut),
    );
    let rate = accepted as f64 / load_time.as_secs_f64();
    let _server = Started::new(&["-data-dir", dir.path()], &[]);
    let delivered = |n: &u64| sink.0.lock().unwrap().contains_key(&format!("/m{n}"));
    let deadline = Instant::now() + Duration::from_secs(120);
    let missing = loop {
        let missing: Vec<u64> = outcomes
            .iter()
            .filter(|(n, o)| **o == Outcome::Accepted && !delivered(n))
            .map(|(n, _)| *n)
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let got = sink.0.lock().unwrap().clone();
    let duplicates = got.values().filter(|c| **c > 1).count();
    let cut_delivered = outcomes
        .iter()
        .filter(|(n, o)| **o == Outcome::Cut && delivered(n))
        .count();
    let refused_delivered: Vec<u64> = outcomes
        .iter()
        .filter(|(n, o)| **o == Outcome::Refused && delivered(n))
        .map(|(n, _)| *n)
        .collect();
    println!(
        "crash test: {CRASHES} kill -9 under load; accepted {accepted} ({rate:.0}/s), delivered {} of them, lost {}; refused {refused} (delivered {}); cut by the crash {cut} (delivered {cut_delivered}); delivered twice {duplicates}",
        accepted - missing.len(),
        missing.len(),
        refused_delivered.len(),
    );
    assert!(
        accepted > 1000,
        "too little load to mean anything: {accepted}"
    );
    assert!(
        missing.is_empty(),
        "accepted but never delivered: {missing:?}"
    );
    assert!(
        refused_delivered.is_empty(),
        "refused but delivered: {refused_delivered:?}"
    );
}

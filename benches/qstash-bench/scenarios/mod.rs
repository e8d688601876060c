//! The scenarios, each producing one JSON object (printed as one line by main) and a few
//! lines of the human summary; and the helpers they share.

pub mod baseline;
pub mod durable;
pub mod e2e;
pub mod memory;
pub mod publish;
pub mod scale;
pub mod workflow;

use serde_json::{Map, Value, json};

use crate::child::Child;
use crate::loadgen::Outcome;
use crate::stats::{median, ratio, round2};

/// The figures of one round: numbers (medians are taken over rounds) and booleans (and-ed).
pub type Round = Map<String, Value>;

/// Medians of every numeric field over `rounds`, and-ed booleans, plus the rounds themselves.
pub fn summarize(rounds: &[Round]) -> Value {
    let mut out = Map::new();
    if let Some(first) = rounds.first() {
        for (key, v) in first {
            if v.is_number() {
                let vals: Vec<f64> = rounds.iter().filter_map(|r| r.get(key)?.as_f64()).collect();
                out.insert(key.clone(), json!(median(&vals)));
            } else if v.is_boolean() {
                let all = rounds
                    .iter()
                    .all(|r| r.get(key).and_then(Value::as_bool) == Some(true));
                out.insert(key.clone(), json!(all));
            }
        }
    }
    out.insert(
        "per_round".into(),
        Value::Array(rounds.iter().cloned().map(Value::Object).collect()),
    );
    Value::Object(out)
}

pub fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// Request rate and latency of a closed-loop run.
pub fn closed_figures(o: &Outcome) -> Round {
    let mut r = Round::new();
    r.insert("req_per_s".into(), json!(round2(o.per_s())));
    r.insert("p50_us".into(), json!(o.latency.us(0.50)));
    r.insert("p99_us".into(), json!(o.latency.us(0.99)));
    r.insert("failed".into(), json!(o.failed));
    r
}

/// Reports a run's first failure on stderr (the JSON only has the count).
pub fn note_failures(what: &str, o: &Outcome) {
    if let Some(f) = &o.first_failure {
        eprintln!("  {what}: {} failed request(s), first: {f}", o.failed);
    }
}

pub fn ensure_alive(child: &Child, what: &str) -> Result<(), String> {
    if child.is_alive() {
        Ok(())
    } else {
        Err(format!("the server exited during {what}"))
    }
}

/// `{ "req_per_s": a/b, "p50_us": a/b, "p99_us": a/b }` of two summarized closed loops.
pub fn closed_ratios(a: &Value, b: (f64, f64, f64)) -> Value {
    json!({
        "req_per_s": ratio(num(a, "req_per_s"), b.0),
        "p50_us": ratio(num(a, "p50_us"), b.1),
        "p99_us": ratio(num(a, "p99_us"), b.2),
    })
}

/// CPU figures of a run: cores busy on average (server, bench) and server CPU µs per request.
pub fn cpu_figures(r: &mut Round, cpu: (f64, f64, f64), requests: u64) {
    let (server, bench, wall) = cpu;
    let per = |x: f64| if wall > 0.0 { round2(x / wall) } else { 0.0 };
    r.insert("server_cpu_cores".into(), json!(per(server)));
    r.insert("bench_cpu_cores".into(), json!(per(bench)));
    let per_req = if requests == 0 {
        0.0
    } else {
        round2(server * 1e6 / requests as f64)
    };
    r.insert("server_cpu_us_per_msg".into(), json!(per_req));
}

pub fn progress(text: &str) {
    eprintln!("· {text}");
}

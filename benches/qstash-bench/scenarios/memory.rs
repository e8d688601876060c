//! Memory: startup time (spawn → "is running") and idle RSS over several starts; then RSS
//! after 100k and 1M queued messages (100-byte body, 5 forwarded headers, Upstash-Delay: 1h,
//! published by a closed loop at c=conns) and the bytes each queued message costs.

use std::time::Duration;

use serde_json::{Value, json};

use super::{ensure_alive, note_failures, progress};
use crate::ctx::Ctx;
use crate::loadgen::{self, Load};
use crate::stats::{median, round2};

/// Upper bound for publishing one batch of messages.
const FILL_LIMIT: Duration = Duration::from_secs(240);
/// Lets the allocator and the engine settle before RSS is read.
const SETTLE: Duration = Duration::from_millis(500);

const HEADERS: [(&str, &str); 6] = [
    ("Upstash-Delay", "1h"),
    ("Upstash-Forward-X-Bench-A", "alpha-value-1"),
    ("Upstash-Forward-X-Bench-B", "bravo-value-2"),
    ("Upstash-Forward-X-Bench-C", "charlie-value-3"),
    ("Upstash-Forward-X-Bench-D", "delta-value-4"),
    ("Upstash-Forward-X-Bench-E", "echo-value-5"),
];

pub async fn run(ctx: &mut Ctx) -> Result<Value, String> {
    let (mut startup_ms, mut idle_kib) = (Vec::new(), Vec::new());
    for i in 1..=ctx.opts.starts {
        progress(&format!("memory: start {i} of {}", ctx.opts.starts));
        let server = ctx.start_server(&[])?;
        startup_ms.push(round2(server.startup.as_secs_f64() * 1000.0));
        tokio::time::sleep(Duration::from_millis(200)).await;
        idle_kib.push(server.rss_kib()? as f64);
    }

    let server = ctx.start_server(&[])?;
    tokio::time::sleep(SETTLE).await;
    let idle = server.rss_kib()?;
    let template = ctx.publish(&server, "memory", &HEADERS, None);
    let (mut published, mut previous) = (0u64, (0u64, idle));
    let mut points = Vec::new();
    for &target in &ctx.opts.memory_messages {
        progress(&format!(
            "memory: queueing up to {target} messages (c={})",
            ctx.opts.conns
        ));
        let load = Load::Count {
            conns: ctx.opts.conns,
            total: target.saturating_sub(published),
            limit: FILL_LIMIT,
        };
        let o = loadgen::run(template.clone(), load).await;
        ensure_alive(&server, "the memory fill")?;
        note_failures("memory fill", &o);
        published += o.ok_total;
        tokio::time::sleep(SETTLE).await;
        let rss = server.rss_kib()?;
        let per_msg = |from: (u64, u64)| {
            let n = published.saturating_sub(from.0);
            if n == 0 {
                0.0
            } else {
                round2(rss.saturating_sub(from.1) as f64 * 1024.0 / n as f64)
            }
        };
        points.push(json!({
            "target": target,
            "queued": published,
            "rss_kib": rss,
            "bytes_per_msg": per_msg((0, idle)),
            "marginal_bytes_per_msg": per_msg(previous),
            "publish_per_s": round2(o.ok_total as f64 / o.elapsed.as_secs_f64()),
            "failed": o.failed,
            "unsent": o.unsent,
        }));
        previous = (published, rss);
    }
    let mut line = format!(
        "memory    startup {} ms (median of {}), idle RSS {:.0} KiB",
        median(&startup_ms),
        startup_ms.len(),
        median(&idle_kib)
    );
    for p in &points {
        line.push_str(&format!(
            "; {} queued: RSS {} KiB, {} bytes/msg (publishing at {:.0}/s)",
            p["queued"],
            p["rss_kib"],
            p["bytes_per_msg"],
            p["publish_per_s"].as_f64().unwrap_or(0.0)
        ));
    }
    ctx.summary.push(line);
    Ok(json!({
        "scenario": "memory",
        "message": "100-byte body, 5 forwarded headers, Upstash-Delay: 1h",
        "startup_ms": median(&startup_ms),
        "startup_ms_per_start": startup_ms,
        "idle_rss_kib": median(&idle_kib),
        "idle_rss_kib_per_start": idle_kib,
        "fill": { "idle_rss_kib": idle, "points": points },
    }))
}

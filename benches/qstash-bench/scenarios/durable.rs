//! Durable: what `-data-dir` costs. Publish (c=conns, `Upstash-Delay: 1h`) and e2e saturation
//! on an in-memory server and on a server with a data directory, back to back in each round
//! so both see the same machine; then a data directory filled with the largest
//! `--memory-messages` count of queued messages: its disk use per message and the time a
//! server takes to start on it (spawn → ready to serve, everything read back).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::{closed_figures, ensure_alive, note_failures, num, progress, summarize};
use crate::child::Child;
use crate::ctx::Ctx;
use crate::loadgen::{self, Load};
use crate::stats::{median, ratio, round2};

/// Upper bound for filling the directory.
const FILL_LIMIT: Duration = Duration::from_secs(600);

/// A fresh data directory, removed when dropped.
struct DataDir(PathBuf);

impl DataDir {
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "qstash-bench-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        Self(path)
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap_or("")
    }

    fn bytes(&self) -> u64 {
        dir_bytes(&self.0)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn start(ctx: &Ctx, dir: Option<&DataDir>) -> Result<Child, String> {
    match dir {
        Some(d) => ctx.start_server(&["-data-dir", d.arg()]),
        None => ctx.start_server(&[]),
    }
}

async fn publish_round(ctx: &mut Ctx, dir: Option<&DataDir>) -> Result<super::Round, String> {
    let server = start(ctx, dir)?;
    let template = ctx.publish(&server, "durable", &[("Upstash-Delay", "1h")], None);
    let load = Load::Closed {
        conns: ctx.opts.conns,
        warmup: ctx.opts.warmup,
        duration: ctx.opts.duration,
    };
    let o = loadgen::run(template, load).await;
    ensure_alive(&server, "durable publish")?;
    note_failures("durable publish", &o);
    Ok(closed_figures(&o))
}

async fn e2e_round(ctx: &mut Ctx, dir: Option<&DataDir>) -> Result<super::Round, String> {
    let server = start(ctx, dir)?;
    let run = ctx.run_id();
    ctx.receiver.begin(run);
    let template = ctx.publish(&server, "durable-e2e", &[], Some(run));
    let load = Load::Closed {
        conns: ctx.opts.conns,
        warmup: ctx.opts.warmup,
        duration: ctx.opts.duration,
    };
    let o = loadgen::run(template, load).await;
    ensure_alive(&server, "durable e2e")?;
    note_failures("durable e2e", &o);
    let delivered = ctx
        .receiver
        .arrivals()
        .iter()
        .filter(|a| a.at >= o.window_start && a.at < o.window_end)
        .count();
    let (drain, drained) = ctx
        .receiver
        .wait_for(o.ok_total, ctx.opts.drain_limit)
        .await;
    let mut r = super::Round::new();
    r.insert("published_per_s".into(), json!(round2(o.per_s())));
    r.insert(
        "delivered_per_s".into(),
        json!(round2(delivered as f64 / o.window.as_secs_f64())),
    );
    r.insert("drain_s".into(), json!(round2(drain.as_secs_f64())));
    r.insert("drained".into(), json!(drained));
    Ok(r)
}

/// The median over rounds of each round's `data_dir / in_memory` figure. Both sides of a
/// round run back to back, so their ratio cancels what the machine was doing then; the two
/// sides' medians may come from different rounds, and on a shared box the in-memory figure
/// alone swings ±12% between runs of the same binary.
fn paired_ratio(data_dir: &[super::Round], in_memory: &[super::Round], key: &str) -> f64 {
    let per_round: Vec<f64> = data_dir
        .iter()
        .zip(in_memory)
        .map(|(d, m)| {
            let figure = |r: &super::Round| r.get(key).and_then(Value::as_f64).unwrap_or(0.0);
            ratio(figure(d), figure(m))
        })
        .collect();
    ratio(median(&per_round), 1.0)
}

pub async fn run(ctx: &mut Ctx) -> Result<Value, String> {
    let (mut mem_pub, mut dur_pub, mut mem_e2e, mut dur_e2e) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let n = ctx.opts.conns;
    for round in 1..=ctx.opts.rounds {
        progress(&format!("durable: round {round}, publish c={n}, in memory"));
        mem_pub.push(publish_round(ctx, None).await?);
        progress(&format!("durable: round {round}, publish c={n}, -data-dir"));
        let dir = DataDir::new("publish");
        dur_pub.push(publish_round(ctx, Some(&dir)).await?);
        progress(&format!("durable: round {round}, e2e c={n}, in memory"));
        mem_e2e.push(e2e_round(ctx, None).await?);
        progress(&format!("durable: round {round}, e2e c={n}, -data-dir"));
        let dir = DataDir::new("e2e");
        dur_e2e.push(e2e_round(ctx, Some(&dir)).await?);
    }
    let (mp, dp, me, de) = (
        summarize(&mem_pub),
        summarize(&dur_pub),
        summarize(&mem_e2e),
        summarize(&dur_e2e),
    );
    let pub_ratio = ratio(num(&dp, "req_per_s"), num(&mp, "req_per_s"));
    let e2e_ratio = ratio(num(&de, "delivered_per_s"), num(&me, "delivered_per_s"));
    let pub_paired = paired_ratio(&dur_pub, &mem_pub, "req_per_s");
    let e2e_paired = paired_ratio(&dur_e2e, &mem_e2e, "delivered_per_s");
    ctx.summary.push(format!(
        "durable   publish c={n}: {:.0} req/s (p99 {} µs) vs {:.0} in memory (p99 {} µs): {pub_paired:.2}× (ratio of medians {pub_ratio:.2}×) | e2e c={n}: delivered {:.0}/s vs {:.0}/s in memory: {e2e_paired:.2}× (ratio of medians {e2e_ratio:.2}×)",
        num(&dp, "req_per_s"),
        num(&dp, "p99_us"),
        num(&mp, "req_per_s"),
        num(&mp, "p99_us"),
        num(&de, "delivered_per_s"),
        num(&me, "delivered_per_s"),
    ));

    let stored = *ctx.opts.memory_messages.iter().max().unwrap_or(&100_000);
    let dir = DataDir::new("startup");
    let server = start(ctx, Some(&dir))?;
    progress(&format!(
        "durable: storing {stored} queued messages (c={n}, Upstash-Delay: 1h)"
    ));
    let template = ctx.publish(&server, "durable-fill", &[("Upstash-Delay", "1h")], None);
    let o = loadgen::run(
        template,
        Load::Count {
            conns: n,
            total: stored,
            limit: FILL_LIMIT,
        },
    )
    .await;
    ensure_alive(&server, "the durable fill")?;
    note_failures("durable fill", &o);
    let fill_per_s = o.ok_total as f64 / o.elapsed.as_secs_f64();
    drop(server); // killed: a crash, as far as the directory knows
    let bytes = dir.bytes();
    progress("durable: starting on the filled directory");
    let again = start(ctx, Some(&dir))?;
    let startup_s = round2(again.startup.as_secs_f64());
    let rss = again.rss_kib()?;
    drop(again);
    let per_msg = if o.ok_total == 0 {
        0.0
    } else {
        round2(bytes as f64 / o.ok_total as f64)
    };
    ctx.summary.push(format!(
        "durable   {} stored messages (published at {fill_per_s:.0}/s): {:.0} MB on disk, {per_msg} bytes/msg; a start on them is ready in {startup_s} s (RSS {rss} KiB)",
        o.ok_total,
        bytes as f64 / 1e6,
    ));
    Ok(json!({
        "scenario": "durable",
        "publish": { "request": "POST /v2/publish/<receiver>, 100-byte JSON body, Upstash-Delay: 1h",
                     "in_memory": mp, "data_dir": dp, "ratio_req_per_s": pub_paired,
                     "ratio_of_medians": pub_ratio },
        "e2e": { "in_memory": me, "data_dir": de, "ratio_delivered_per_s": e2e_paired,
                 "ratio_of_medians": e2e_ratio },
        "startup": { "stored_messages": o.ok_total, "fill_per_s": round2(fill_per_s),
                     "disk_bytes": bytes, "disk_bytes_per_msg": per_msg,
                     "startup_s": startup_s, "rss_kib_after_start": rss },
    }))
}

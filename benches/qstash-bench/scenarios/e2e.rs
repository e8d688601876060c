//! End to end: publish → signed delivery to the receiver. At saturation (closed loop,
//! c=conns): delivered msg/s while publishing, the backlog left and the time to drain it.
//! At fixed offered rates (open loop): publish→receipt latency, measured by the receiver
//! from the intended send time stamped in each body.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Round, cpu_figures, ensure_alive, note_failures, num, progress, summarize};
use crate::child::{Child, CpuMeter};
use crate::ctx::Ctx;
use crate::loadgen::{self, Load, Outcome};
use crate::stats::{Samples, ratio, round2};

pub async fn run(ctx: &mut Ctx) -> Result<Value, String> {
    let rates = ctx.opts.rates.clone();
    let mut saturated = Vec::new();
    let mut open: Vec<Vec<Round>> = vec![Vec::new(); rates.len()];
    for round in 1..=ctx.opts.rounds {
        let server = ctx.start_server(&[])?;
        progress(&format!(
            "e2e: round {round}, saturation c={}",
            ctx.opts.conns
        ));
        saturated.push(saturation(ctx, &server).await?);
        for (i, &rate) in rates.iter().enumerate() {
            progress(&format!("e2e: round {round}, open loop {rate} msg/s"));
            open[i].push(open_loop(ctx, &server, rate, "e2e").await?);
        }
    }
    let sat = summarize(&saturated);
    let open: Vec<Value> = open.iter().map(|r| summarize(r)).collect();
    let base = ctx.baseline;
    let vs_text = |x: f64, of: fn(&crate::ctx::BaselineFigures) -> f64| {
        base.map(|b| format!(" ({:.2}× baseline)", ratio(x, of(&b))))
            .unwrap_or_default()
    };
    ctx.summary.push(format!(
        "e2e       saturation c={}: published {:.0}/s, delivered {:.0}/s{}, backlog growth {:.0}/s, backlog at end {:.0}, drained in {} s (all: {}), publish→receipt p50 {} p99 {} µs",
        ctx.opts.conns,
        num(&sat, "published_per_s"),
        num(&sat, "delivered_per_s"),
        vs_text(num(&sat, "delivered_per_s"), |b| b.cn.0),
        num(&sat, "backlog_growth_per_s"),
        num(&sat, "backlog_at_end"),
        num(&sat, "drain_s"),
        sat["drained"],
        num(&sat, "e2e_p50_us"),
        num(&sat, "e2e_p99_us"),
    ));
    for (rate, v) in rates.iter().zip(&open) {
        ctx.summary.push(format!(
            "e2e       open {rate:.0}/s (achieved {:.0}/s): publish p50 {} p99 {} µs | publish→receipt p50 {}{} p99 {} p999 {} µs | undelivered {:.0}",
            num(v, "published_per_s"),
            num(v, "publish_p50_us"),
            num(v, "publish_p99_us"),
            num(v, "e2e_p50_us"),
            vs_text(num(v, "e2e_p50_us"), |b| b.c1.1),
            num(v, "e2e_p99_us"),
            num(v, "e2e_p999_us"),
            num(v, "undelivered"),
        ));
    }
    let vs = ctx.baseline.map(|b| {
        let mut m = serde_json::Map::new();
        m.insert(
            "published_per_s".into(),
            json!(ratio(num(&sat, "published_per_s"), b.cn.0)),
        );
        m.insert(
            "delivered_per_s".into(),
            json!(ratio(num(&sat, "delivered_per_s"), b.cn.0)),
        );
        for (rate, v) in rates.iter().zip(&open) {
            m.insert(
                format!("open_{rate:.0}"),
                json!({
                    "e2e_p50_us": ratio(num(v, "e2e_p50_us"), b.c1.1),
                    "e2e_p99_us": ratio(num(v, "e2e_p99_us"), b.c1.2),
                    "publish_p50_us": ratio(num(v, "publish_p50_us"), b.c1.1),
                    "publish_p99_us": ratio(num(v, "publish_p99_us"), b.c1.2),
                }),
            );
        }
        Value::Object(m)
    });
    Ok(json!({
        "scenario": "e2e",
        "rounds": ctx.opts.rounds,
        "duration_s": ctx.opts.duration.as_secs_f64(),
        "saturation": sat,
        "open": open,
        "vs_baseline": vs,
    }))
}

/// Closed loop at c=conns without delay: publish and delivery rates in the same window.
async fn saturation(ctx: &mut Ctx, server: &Child) -> Result<Round, String> {
    let run = ctx.run_id();
    ctx.receiver.begin(run);
    let template = ctx.publish(server, "e2e", &[], Some(run));
    let load = Load::Closed {
        conns: ctx.opts.conns,
        warmup: ctx.opts.warmup,
        duration: ctx.opts.duration,
    };
    let cpu = CpuMeter::start(server);
    let o = loadgen::run(template, load).await;
    let cpu = cpu.stop();
    let delivered_at_end = ctx.receiver.count();
    ensure_alive(server, "e2e saturation")?;
    note_failures("e2e saturation", &o);
    let (drain, drained) = ctx
        .receiver
        .wait_for(o.ok_total, ctx.opts.drain_limit)
        .await;
    let arrivals = ctx.receiver.arrivals();
    let delivered = arrivals
        .iter()
        .filter(|a| a.at >= o.window_start && a.at < o.window_end)
        .count();
    let delivered_per_s = delivered as f64 / o.window.as_secs_f64();
    let e2e = Samples::new(
        arrivals
            .iter()
            .filter(|a| sent_in_window(a, &o))
            .map(|a| a.latency)
            .collect(),
    );
    let mut r = Round::new();
    r.insert("published_per_s".into(), json!(round2(o.per_s())));
    r.insert("delivered_per_s".into(), json!(round2(delivered_per_s)));
    r.insert(
        "backlog_growth_per_s".into(),
        json!(round2(o.per_s() - delivered_per_s)),
    );
    r.insert("published_total".into(), json!(o.ok_total));
    r.insert(
        "backlog_at_end".into(),
        json!(o.ok_total.saturating_sub(delivered_at_end)),
    );
    r.insert("drain_s".into(), json!(round2(drain.as_secs_f64())));
    r.insert("drained".into(), json!(drained));
    r.insert(
        "undelivered".into(),
        json!(o.ok_total.saturating_sub(ctx.receiver.count())),
    );
    r.insert("publish_p50_us".into(), json!(o.latency.us(0.50)));
    r.insert("publish_p99_us".into(), json!(o.latency.us(0.99)));
    r.insert("e2e_p50_us".into(), json!(e2e.us(0.50)));
    r.insert("e2e_p99_us".into(), json!(e2e.us(0.99)));
    r.insert("failed".into(), json!(o.failed));
    r.insert("rss_kib_after".into(), json!(server.rss_kib()?));
    cpu_figures(&mut r, cpu, o.ok_total);
    Ok(r)
}

fn sent_in_window(a: &crate::receiver::Arrival, o: &Outcome) -> bool {
    let sent = a.at.saturating_sub(a.latency);
    sent >= o.window_start && sent < o.window_end
}

/// Open loop at `rate` msg/s without delay; latencies from the intended send time.
pub async fn open_loop(
    ctx: &mut Ctx,
    server: &Child,
    rate: f64,
    tail: &str,
) -> Result<Round, String> {
    let run = ctx.run_id();
    ctx.receiver.begin(run);
    let template = ctx.publish(server, tail, &[], Some(run));
    let opts = &ctx.opts;
    let load = Load::Open {
        conns: opts.conns,
        rate,
        warmup: opts.warmup,
        duration: opts.duration,
        grace: opts.duration.min(Duration::from_secs(5)),
    };
    let cpu = CpuMeter::start(server);
    let o = loadgen::run(template, load).await;
    let cpu = cpu.stop();
    ensure_alive(server, "e2e open loop")?;
    note_failures("e2e open loop", &o);
    let (drain, drained) = ctx.receiver.wait_for(o.ok_total, opts.drain_limit).await;
    let arrivals = ctx.receiver.arrivals();
    let e2e = Samples::new(
        arrivals
            .iter()
            .filter(|a| sent_in_window(a, &o))
            .map(|a| a.latency)
            .collect(),
    );
    let mut r = Round::new();
    r.insert("offered_per_s".into(), json!(rate));
    r.insert("published_per_s".into(), json!(round2(o.per_s())));
    r.insert("publish_p50_us".into(), json!(o.latency.us(0.50)));
    r.insert("publish_p99_us".into(), json!(o.latency.us(0.99)));
    r.insert("publish_p999_us".into(), json!(o.latency.us(0.999)));
    r.insert("e2e_p50_us".into(), json!(e2e.us(0.50)));
    r.insert("e2e_p99_us".into(), json!(e2e.us(0.99)));
    r.insert("e2e_p999_us".into(), json!(e2e.us(0.999)));
    r.insert("e2e_max_us".into(), json!(e2e.max_us()));
    r.insert("send_lag_p50_us".into(), json!(o.send_lag.us(0.50)));
    r.insert("send_lag_p99_us".into(), json!(o.send_lag.us(0.99)));
    r.insert("drain_s".into(), json!(round2(drain.as_secs_f64())));
    r.insert("drained".into(), json!(drained));
    r.insert(
        "undelivered".into(),
        json!(o.ok_total.saturating_sub(ctx.receiver.count())),
    );
    r.insert("unsent".into(), json!(o.unsent));
    r.insert("failed".into(), json!(o.failed));
    cpu_figures(&mut r, cpu, o.ok_total);
    Ok(r)
}

//! Scale: open-loop e2e latency on an empty store, then with N schedules idle in it, then
//! with N flow-control keys idle as well (same server, `-quota pro` for the schedule count).
//! The ratios to the empty store should be ~1; the middle step tells which one costs.

use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::e2e::open_loop;
use super::{Round, ensure_alive, note_failures, num, progress, summarize};
use crate::child::Child;
use crate::client::{BodyTemplate, RequestTemplate};
use crate::ctx::{BODY_LEN, Ctx};
use crate::loadgen::{self, Load, Outcome};
use crate::stamp::Stamp;
use crate::stats::{ratio, round2};

const POPULATE_LIMIT: Duration = Duration::from_secs(120);

pub async fn run(ctx: &mut Ctx) -> Result<Value, String> {
    let mut rounds = Vec::new();
    let rate = ctx.opts.scale_rate;
    for round in 1..=ctx.opts.rounds {
        let server = ctx.start_server(&["-quota", "pro"])?;
        progress(&format!(
            "scale: round {round}, empty store, open loop {rate} msg/s"
        ));
        let empty = open_loop(ctx, &server, rate, "scale").await?;
        progress(&format!(
            "scale: round {round}, adding {} schedules",
            ctx.opts.scale_items
        ));
        let schedules = populate(ctx, &server, schedules(ctx, &server)).await?;
        progress(&format!(
            "scale: round {round}, with schedules, open loop {rate} msg/s"
        ));
        let with_schedules = open_loop(ctx, &server, rate, "scale").await?;
        progress(&format!(
            "scale: round {round}, adding {} flow-control keys",
            ctx.opts.scale_items
        ));
        let keys = populate(ctx, &server, flow_keys(ctx, &server)).await?;
        progress(&format!(
            "scale: round {round}, with schedules and keys, open loop {rate} msg/s"
        ));
        let loaded = open_loop(ctx, &server, rate, "scale").await?;
        let mut r = Round::new();
        let fig = |round: &Round, key: &str| round.get(key).and_then(Value::as_f64).unwrap_or(0.0);
        for key in [
            "e2e_p50_us",
            "e2e_p99_us",
            "e2e_p999_us",
            "publish_p50_us",
            "publish_p99_us",
        ] {
            let base = fig(&empty, key);
            r.insert(format!("empty_{key}"), json!(base));
            for (stage, figures) in [("schedules", &with_schedules), ("loaded", &loaded)] {
                r.insert(format!("{stage}_{key}"), json!(fig(figures, key)));
                r.insert(
                    format!("ratio_{stage}_{key}"),
                    json!(ratio(fig(figures, key), base)),
                );
            }
        }
        for (what, o) in [("schedules", &schedules), ("flow_keys", &keys)] {
            r.insert(format!("{what}_created"), json!(o.ok_total));
            r.insert(
                format!("{what}_per_s"),
                json!(round2(o.ok_total as f64 / o.elapsed.as_secs_f64())),
            );
            r.insert(format!("{what}_failed"), json!(o.failed + o.unsent));
        }
        r.insert("loaded_undelivered".into(), loaded["undelivered"].clone());
        r.insert("rss_kib_loaded".into(), json!(server.rss_kib()?));
        rounds.push(r);
    }
    let s = summarize(&rounds);
    ctx.summary.push(format!(
        "scale     {rate:.0} msg/s e2e, empty → +{n} schedules → +{n} flow-control keys: p50 {} → {} → {} µs (ratio {}), p99 {} → {} → {} µs (ratio {}); created {:.0} schedules/s, {:.0} keys/s",
        num(&s, "empty_e2e_p50_us"), num(&s, "schedules_e2e_p50_us"), num(&s, "loaded_e2e_p50_us"), num(&s, "ratio_loaded_e2e_p50_us"),
        num(&s, "empty_e2e_p99_us"), num(&s, "schedules_e2e_p99_us"), num(&s, "loaded_e2e_p99_us"), num(&s, "ratio_loaded_e2e_p99_us"),
        num(&s, "schedules_per_s"), num(&s, "flow_keys_per_s"), n = ctx.opts.scale_items,
    ));
    Ok(json!({
        "scenario": "scale",
        "offered_per_s": rate,
        "schedules": ctx.opts.scale_items,
        "flow_control_keys": ctx.opts.scale_items,
        "rounds": ctx.opts.rounds,
        "duration_s": ctx.opts.duration.as_secs_f64(),
        "result": s,
    }))
}

/// Sends `total` requests built from `template` (c=conns closed loop).
async fn populate(ctx: &Ctx, server: &Child, template: RequestTemplate) -> Result<Outcome, String> {
    let load = Load::Count {
        conns: ctx.opts.conns,
        total: ctx.opts.scale_items,
        limit: POPULATE_LIMIT,
    };
    let o = loadgen::run(Arc::new(template), load).await;
    ensure_alive(server, "scale populate")?;
    note_failures("scale populate", &o);
    Ok(o)
}

/// `POST /v2/schedules/<receiver>/sched/<i>` with a yearly cron (never fires during the bench).
fn schedules(ctx: &Ctx, server: &Child) -> RequestTemplate {
    let recv = ctx.receiver.addr;
    let body = BodyTemplate::Fixed(Stamp::new(BODY_LEN, 0).plain());
    let path = format!("/v2/schedules/http://{recv}/sched/0");
    RequestTemplate::post(server.addr, &path, &[("Upstash-Cron", "0 0 1 1 *")], body).with_vary(
        Arc::new(move |seq, req| {
            if let Ok(uri) = format!("/v2/schedules/http://{recv}/sched/{seq}").parse() {
                *req.uri_mut() = uri;
            }
        }),
    )
}

/// Delayed publishes, each with its own flow-control key `k<i>` (parallelism=10): idle keys.
fn flow_keys(ctx: &Ctx, server: &Child) -> RequestTemplate {
    let body = BodyTemplate::Fixed(Stamp::new(BODY_LEN, 0).plain());
    let headers = [
        ("Upstash-Delay", "1h"),
        ("Upstash-Flow-Control-Value", "parallelism=10"),
    ];
    let key = HeaderName::from_static("upstash-flow-control-key");
    RequestTemplate::post(server.addr, &ctx.publish_path("flow"), &headers, body).with_vary(
        Arc::new(move |seq, req| {
            if let Ok(v) = HeaderValue::from_str(&format!("k{seq}")) {
                req.headers_mut().insert(key.clone(), v);
            }
        }),
    )
}

//! Workflow runs: chains of `context.run` steps driven by a local endpoint that speaks the
//! protocol (`wf_endpoint`), against plain chains of the same shape (each delivery publishes
//! the next message) as the reference for "a step costs at most 2× a plain delivery".
//! Runs of 10 steps at c=1 and c=conns, runs of 100 steps at c=conns (per-step cost must stay
//! flat as the history grows), then the memory of 10,000 idle runs (half sleeping, half
//! waiting for an event).

use std::time::Duration;

use serde_json::{Value, json};

use super::{Round, cpu_figures, ensure_alive, num, progress, summarize};
use crate::child::{Child, CpuMeter};
use crate::ctx::Ctx;
use crate::stats::{Samples, ratio, round2};
use crate::wf_endpoint::{Endpoint, wait_until};

const IDLE_RUNS: u64 = 10_000;
/// How long in-flight chains may take to finish after a measurement.
const DRAIN: Duration = Duration::from_secs(20);

/// (label, steps per run (0 = plain chain of 10), concurrent runs: 0 = `conns`)
const CASES: [(&str, u32, usize); 5] = [
    ("plain_c1", 0, 1),
    ("wf10_c1", 10, 1),
    ("plain", 0, 0),
    ("wf10", 10, 0),
    ("wf100", 100, 0),
];

async fn measure(
    ctx: &Ctx,
    server: &Child,
    ep: &Endpoint,
    steps: u32,
    conns: usize,
) -> Result<Round, String> {
    ep.take_stats();
    ep.start_chains(conns, steps).await;
    tokio::time::sleep(ctx.opts.warmup).await;
    ep.take_stats();
    let cpu = CpuMeter::start(server);
    tokio::time::sleep(ctx.opts.duration).await;
    let st = ep.take_stats();
    let cpu = cpu.stop();
    ep.stop();
    // Let the chains in flight end so the next case starts from an idle server.
    let mut last = u64::MAX;
    wait_until(DRAIN, || {
        let n = ep.take_stats().deliveries;
        let quiet = n == 0 && last == 0;
        last = n;
        quiet
    })
    .await;
    ensure_alive(server, "the workflow scenario")?;
    if let Some(e) = &st.first_error {
        eprintln!("  workflow: {} failed request(s), first: {e}", st.errors);
    }
    let secs = ctx.opts.duration.as_secs_f64();
    let samples = if steps == 0 {
        st.plain_latency
    } else {
        st.step_latency
    };
    let measured = samples.len();
    let lat = Samples::new(samples);
    let mut r = Round::new();
    r.insert(
        "deliveries_per_s".into(),
        json!(round2(st.deliveries as f64 / secs)),
    );
    r.insert("steps_per_s".into(), json!(round2(measured as f64 / secs)));
    r.insert(
        "runs_per_s".into(),
        json!(round2(st.runs_done as f64 / secs)),
    );
    r.insert("step_p50_us".into(), json!(lat.us(0.50)));
    r.insert("step_p99_us".into(), json!(lat.us(0.99)));
    r.insert("errors".into(), json!(st.errors));
    cpu_figures(&mut r, cpu, st.deliveries);
    Ok(r)
}

pub async fn run(ctx: &mut Ctx) -> Result<Value, String> {
    let mut cases: Vec<Vec<Round>> = vec![Vec::new(); CASES.len()];
    for round in 1..=ctx.opts.rounds {
        let server = ctx.start_server(&[])?;
        let ep = Endpoint::start(server.addr).await?;
        for (i, (label, steps, conns)) in CASES.iter().enumerate() {
            let conns = if *conns == 0 { ctx.opts.conns } else { *conns };
            progress(&format!("workflow: round {round}, {label} (c={conns})"));
            cases[i].push(measure(ctx, &server, &ep, *steps, conns).await?);
        }
    }
    let sum: Vec<Value> = cases.iter().map(|c| summarize(c)).collect();
    let get = |label: &str| &sum[CASES.iter().position(|c| c.0 == label).unwrap_or(0)];
    // Server CPU per delivered step vs per delivered plain message: the cost of a step.
    let step_cost = ratio(
        num(get("wf10"), "server_cpu_us_per_msg"),
        num(get("plain"), "server_cpu_us_per_msg"),
    );
    let latency_cost = ratio(
        num(get("wf10_c1"), "step_p50_us"),
        num(get("plain_c1"), "step_p50_us"),
    );
    let throughput_cost = ratio(
        num(get("plain"), "deliveries_per_s"),
        num(get("wf10"), "deliveries_per_s"),
    );
    let flat = ratio(
        num(get("wf100"), "server_cpu_us_per_msg"),
        num(get("wf10"), "server_cpu_us_per_msg"),
    );

    progress(&format!("workflow: {IDLE_RUNS} idle runs"));
    let server = ctx.start_server(&[])?;
    let ep = Endpoint::start(server.addr).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.rss_kib()?;
    ep.park(IDLE_RUNS).await;
    let all = wait_until(Duration::from_secs(120), || ep.parked() >= IDLE_RUNS).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_kib()?;
    let idle_errors = ep.take_stats().errors;
    let per_run = round2(after.saturating_sub(before) as f64 * 1024.0 / IDLE_RUNS as f64);

    ctx.summary.push(format!(
        "workflow  c=1: plain chain p50 {} µs, 10-step run p50 {} µs per step ({:.2}×) | c={}: plain {:.0} deliveries/s, \
         10-step runs {:.0} runs/s = {:.0} steps/s ({:.2}× plain's cost in server CPU, {:.2}× in throughput), step p50 {} p99 {} µs | \
         100-step runs {:.0} steps/s, CPU per step {:.2}× the 10-step runs' | {IDLE_RUNS} idle runs: +{} KiB RSS, {per_run} bytes/run (all parked: {all})",
        num(get("plain_c1"), "step_p50_us"),
        num(get("wf10_c1"), "step_p50_us"),
        latency_cost,
        ctx.opts.conns,
        num(get("plain"), "deliveries_per_s"),
        num(get("wf10"), "runs_per_s"),
        num(get("wf10"), "steps_per_s"),
        step_cost,
        throughput_cost,
        num(get("wf10"), "step_p50_us"),
        num(get("wf10"), "step_p99_us"),
        num(get("wf100"), "steps_per_s"),
        flat,
        after.saturating_sub(before),
    ));
    let mut out = json!({
        "scenario": "workflow",
        "vs_plain": {
            "step_cpu": step_cost,
            "step_latency_c1": latency_cost,
            "throughput": throughput_cost,
            "cpu_per_step_100_vs_10": flat,
        },
        "idle_runs": {
            "runs": IDLE_RUNS, "all_parked": all, "rss_before_kib": before,
            "rss_after_kib": after, "bytes_per_run": per_run, "errors": idle_errors,
        },
    });
    for ((label, _, _), v) in CASES.iter().zip(sum) {
        out[label] = v;
    }
    Ok(out)
}

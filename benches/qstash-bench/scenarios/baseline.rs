//! Baseline: the same publish request against a minimal axum handler (its own process), at
//! c=1 and c=conns: the machine's ceiling for this client on this box.

use serde_json::{Value, json};

use super::{closed_figures, cpu_figures, ensure_alive, note_failures, num, progress, summarize};
use crate::child::{Child, CpuMeter};
use crate::ctx::{BaselineFigures, Ctx};
use crate::loadgen::{self, Load};

pub async fn run(ctx: &mut Ctx) -> Result<Value, String> {
    let (c1, cn) = closed_rounds(ctx, "baseline", |ctx| ctx.start_baseline()).await?;
    let (s1, sn) = (summarize(&c1), summarize(&cn));
    let fig = |v: &Value| (num(v, "req_per_s"), num(v, "p50_us"), num(v, "p99_us"));
    ctx.baseline = Some(BaselineFigures {
        c1: fig(&s1),
        cn: fig(&sn),
    });
    let n = ctx.opts.conns;
    ctx.summary.push(format!(
        "baseline  c=1: {:.0} req/s p50 {} µs p99 {} µs | c={n}: {:.0} req/s p50 {} µs p99 {} µs",
        num(&s1, "req_per_s"),
        num(&s1, "p50_us"),
        num(&s1, "p99_us"),
        num(&sn, "req_per_s"),
        num(&sn, "p50_us"),
        num(&sn, "p99_us"),
    ));
    Ok(json!({
        "scenario": "baseline",
        "what": "minimal axum POST handler in its own process, same request and load generator",
        "rounds": ctx.opts.rounds,
        "duration_s": ctx.opts.duration.as_secs_f64(),
        "c1": s1,
        format!("c{n}"): sn,
    }))
}

/// `rounds` × (fresh process from `spawn`, closed loop at c=1 then c=conns) of the publish
/// request with `Upstash-Delay: 1h`; the per-round figures at c=1 and at c=conns.
pub async fn closed_rounds(
    ctx: &mut Ctx,
    what: &str,
    spawn: impl Fn(&Ctx) -> Result<Child, String>,
) -> Result<(Vec<super::Round>, Vec<super::Round>), String> {
    let (mut c1, mut cn) = (Vec::new(), Vec::new());
    for round in 1..=ctx.opts.rounds {
        let child = spawn(ctx)?;
        let template = ctx.publish(&child, "publish", &[("Upstash-Delay", "1h")], None);
        for conns in [1, ctx.opts.conns] {
            progress(&format!("{what}: round {round}, c={conns}"));
            let load = Load::Closed {
                conns,
                warmup: ctx.opts.warmup,
                duration: ctx.opts.duration,
            };
            let cpu = CpuMeter::start(&child);
            let o = loadgen::run(template.clone(), load).await;
            let cpu = cpu.stop();
            ensure_alive(&child, what)?;
            note_failures(what, &o);
            let mut fig = closed_figures(&o);
            cpu_figures(&mut fig, cpu, o.ok_total);
            fig.insert("rss_kib_after".into(), json!(child.rss_kib()?));
            if conns == 1 {
                c1.push(fig)
            } else {
                cn.push(fig)
            }
        }
    }
    Ok((c1, cn))
}

//! Publish: `POST /v2/publish/<receiver>` with a 100-byte JSON body and `Upstash-Delay: 1h`
//! (stored, nothing delivered) at c=1 and c=conns, on a fresh server per round.

use serde_json::{Value, json};

use super::baseline::closed_rounds;
use super::{closed_ratios, num, summarize};
use crate::ctx::Ctx;
use crate::stats::ratio;

pub async fn run(ctx: &mut Ctx) -> Result<Value, String> {
    let (c1, cn) = closed_rounds(ctx, "publish", |ctx| ctx.start_server(&[])).await?;
    let (s1, sn) = (summarize(&c1), summarize(&cn));
    let n = ctx.opts.conns;
    let mut line = format!(
        "publish   c=1: {:.0} req/s p50 {} µs p99 {} µs | c={n}: {:.0} req/s p50 {} µs p99 {} µs",
        num(&s1, "req_per_s"),
        num(&s1, "p50_us"),
        num(&s1, "p99_us"),
        num(&sn, "req_per_s"),
        num(&sn, "p50_us"),
        num(&sn, "p99_us"),
    );
    let vs = ctx.baseline.map(|b| {
        line.push_str(&format!(
            " | vs baseline: {:.2}× / {:.2}× req/s",
            ratio(num(&s1, "req_per_s"), b.c1.0),
            ratio(num(&sn, "req_per_s"), b.cn.0)
        ));
        json!({ "c1": closed_ratios(&s1, b.c1), format!("c{n}"): closed_ratios(&sn, b.cn) })
    });
    ctx.summary.push(line);
    Ok(json!({
        "scenario": "publish",
        "request": "POST /v2/publish/<receiver>, 100-byte JSON body, Upstash-Delay: 1h",
        "rounds": ctx.opts.rounds,
        "duration_s": ctx.opts.duration.as_secs_f64(),
        "c1": s1,
        format!("c{n}"): sn,
        "vs_baseline": vs,
    }))
}

//! qstash-bench: starts the release server, a local receiver and a load generator, all on
//! 127.0.0.1, and measures publish throughput/latency, end-to-end delivery, memory per queued
//! message, latency with a large idle store, workflow runs against plain deliveries, and a
//! minimal-server baseline.
//! One JSON line per scenario on stdout, then a human summary. See benches/README.md.

mod baseline_server;
mod child;
mod client;
mod ctx;
mod loadgen;
mod receiver;
mod scenarios;
mod stamp;
mod stats;
mod wf_endpoint;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use ctx::{Ctx, Options};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    All,
    Publish,
    E2e,
    Memory,
    Scale,
    Baseline,
    Workflow,
    /// Publish and e2e with and without -data-dir, and a start on 1M stored messages.
    Durable,
}

/// Benchmarks the QStash development server (release build) on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(name = "qstash-bench")]
struct Args {
    /// Which scenario to run.
    #[arg(long, value_enum, default_value = "all")]
    scenario: Scenario,
    /// Rounds per measurement; medians are reported [default: 3, --quick: 1].
    #[arg(long)]
    rounds: Option<usize>,
    /// Measured time of each load run, after a warmup of a fifth of it (at most 1s),
    /// e.g. 5s, 500ms [default: 5s, --quick: 2s].
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Smoke run: 1 round, 2s runs, 100k queued messages instead of 1M, 3 starts.
    #[arg(long)]
    quick: bool,
    /// Connections of the saturating closed loops and of the open loops.
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// Offered rates (msg/s) of the e2e open loops.
    #[arg(long, value_delimiter = ',', default_values_t = vec![10_000.0, 20_000.0])]
    rates: Vec<f64>,
    /// Offered rate (msg/s) of the scale scenario.
    #[arg(long, default_value_t = 5_000.0)]
    scale_rate: f64,
    /// Schedules and flow-control keys (each) added in the scale scenario.
    #[arg(long, default_value_t = 10_000)]
    scale_items: u64,
    /// Queued-message counts at which the memory scenario reads RSS [default: 100000,1000000;
    /// --quick: 100000].
    #[arg(long, value_delimiter = ',')]
    memory_messages: Option<Vec<u64>>,
    /// Server starts timed by the memory scenario [default: 5, --quick: 3].
    #[arg(long)]
    starts: Option<usize>,
    /// The server binary [default: `qstash` next to this executable].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Publish/e2e without running the baseline first (no ratios).
    #[arg(long)]
    no_baseline: bool,
    /// The whole run is abandoned (children killed, exit 3) after this long.
    #[arg(long, value_parser = parse_duration, default_value = "15m")]
    max_time: Duration,
    /// Internal: serve the baseline handler (the bench re-executes itself with this).
    #[arg(long, hide = true)]
    serve_baseline: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?} (use ms, s or m)")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("duration must be positive: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn options(a: &Args) -> Options {
    let duration = a.duration.unwrap_or(if a.quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(5)
    });
    Options {
        rounds: a.rounds.unwrap_or(if a.quick { 1 } else { 3 }).max(1),
        duration,
        warmup: (duration / 5).min(Duration::from_secs(1)),
        conns: a.conns.max(1),
        rates: a.rates.clone(),
        scale_rate: a.scale_rate,
        scale_items: a.scale_items,
        memory_messages: a.memory_messages.clone().unwrap_or_else(|| {
            if a.quick {
                vec![100_000]
            } else {
                vec![100_000, 1_000_000]
            }
        }),
        starts: a.starts.unwrap_or(if a.quick { 3 } else { 5 }).max(1),
        drain_limit: if a.quick {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(30)
        },
        server_bin: a.server_bin.clone().unwrap_or_else(ctx::default_server_bin),
        quick: a.quick,
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.serve_baseline {
        return baseline_server::serve();
    }
    stamp::epoch();
    let max_time = args.max_time;
    std::thread::spawn(move || {
        std::thread::sleep(max_time);
        eprintln!("qstash-bench: gave up after {max_time:?} (--max-time)");
        child::kill_all();
        std::process::exit(3);
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qstash-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        tokio::spawn(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("qstash-bench: interrupted");
                child::kill_all();
                std::process::exit(130);
            }
        });
        run(args).await
    });
    child::kill_all();
    code
}

async fn run(args: Args) -> ExitCode {
    let opts = options(&args);
    if !opts.server_bin.exists() {
        eprintln!(
            "qstash-bench: no server binary at {} (build it: cargo build --release --bins)",
            opts.server_bin.display()
        );
        return ExitCode::FAILURE;
    }
    if let Some(w) = ctx::staleness_warning(&opts.server_bin) {
        eprintln!("{w}");
    }
    let receiver = match receiver::Receiver::start().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("qstash-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "qstash-bench: server {} (RUST_LOG=warn: this measures the engine, not per-message info logging), \
         {} round(s) of {:?} (+{:?} warmup), receiver on {}",
        opts.server_bin.display(),
        opts.rounds,
        opts.duration,
        opts.warmup,
        receiver.addr
    );
    let mut ctx = Ctx::new(opts, receiver);
    let s = args.scenario;
    let wants = |x: Scenario| s == Scenario::All || s == x;
    let mut order = Vec::new();
    if wants(Scenario::Baseline)
        || (!args.no_baseline && (s == Scenario::Publish || s == Scenario::E2e))
    {
        order.push(Scenario::Baseline);
    }
    order.extend(
        [
            Scenario::Publish,
            Scenario::E2e,
            Scenario::Memory,
            Scenario::Scale,
            Scenario::Workflow,
            Scenario::Durable,
        ]
        .into_iter()
        .filter(|&x| wants(x)),
    );
    let started = std::time::Instant::now();
    let mut failed = false;
    for scenario in order {
        let t = std::time::Instant::now();
        let result = match scenario {
            Scenario::Baseline => scenarios::baseline::run(&mut ctx).await,
            Scenario::Publish => scenarios::publish::run(&mut ctx).await,
            Scenario::E2e => scenarios::e2e::run(&mut ctx).await,
            Scenario::Memory => scenarios::memory::run(&mut ctx).await,
            Scenario::Scale => scenarios::scale::run(&mut ctx).await,
            Scenario::Workflow => scenarios::workflow::run(&mut ctx).await,
            Scenario::Durable => scenarios::durable::run(&mut ctx).await,
            Scenario::All => unreachable!(),
        };
        let name = format!("{scenario:?}").to_lowercase();
        let mut line = result.unwrap_or_else(|e| {
            failed = true;
            ctx.summary.push(format!("{name}: FAILED: {e}"));
            serde_json::json!({ "scenario": name, "error": e })
        });
        line["elapsed_s"] = serde_json::json!(stats::round2(t.elapsed().as_secs_f64()));
        println!("{line}");
        let _ = std::io::stdout().flush();
    }
    println!();
    println!(
        "Summary ({} round(s), medians; {:.0} s in total; server with RUST_LOG=warn: engine without per-message logging){}",
        ctx.opts.rounds,
        started.elapsed().as_secs_f64(),
        if ctx.opts.quick { " [--quick]" } else { "" }
    );
    for l in &ctx.summary {
        println!("  {l}");
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
    }
}

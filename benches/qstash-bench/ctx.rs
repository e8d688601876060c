//! What every scenario shares: the options, the receiver, how to start the servers, the
//! baseline figures (for ratios), the run ids and the lines of the final summary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::baseline_server;
use crate::child::Child;
use crate::client::{BodyTemplate, RequestTemplate};
use crate::receiver::Receiver;
use crate::stamp::Stamp;

pub const BODY_LEN: usize = 100;
// Generous: a server started on a data directory of a million messages reads them all first.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct Options {
    pub rounds: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Connections of the c=64 closed loops and of the open loops.
    pub conns: usize,
    pub rates: Vec<f64>,
    pub scale_rate: f64,
    pub scale_items: u64,
    pub memory_messages: Vec<u64>,
    pub starts: usize,
    /// How long to wait for a backlog to drain after publishing stops.
    pub drain_limit: Duration,
    pub server_bin: PathBuf,
    pub quick: bool,
}

/// Medians of the baseline at c=1 and c=conns: (req/s, p50 µs, p99 µs).
#[derive(Clone, Copy, Debug, Default)]
pub struct BaselineFigures {
    pub c1: (f64, f64, f64),
    pub cn: (f64, f64, f64),
}

pub struct Ctx {
    pub opts: Options,
    pub receiver: Receiver,
    pub baseline: Option<BaselineFigures>,
    pub summary: Vec<String>,
    next_run: u32,
}

impl Ctx {
    pub fn new(opts: Options, receiver: Receiver) -> Ctx {
        Ctx {
            opts,
            receiver,
            baseline: None,
            summary: Vec::new(),
            next_run: 1,
        }
    }

    /// A fresh id for the stamped bodies of one measurement.
    pub fn run_id(&mut self) -> u32 {
        self.next_run += 1;
        self.next_run
    }

    pub fn start_server(&self, extra: &[&str]) -> Result<Child, String> {
        let mut args = vec!["dev", "-port", "0"];
        args.extend_from_slice(extra);
        Child::spawn(
            "qstash",
            &self.opts.server_bin,
            &args,
            "is running",
            READY_TIMEOUT,
        )
    }

    pub fn start_baseline(&self) -> Result<Child, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
        Child::spawn(
            "baseline",
            &exe,
            &["--serve-baseline"],
            baseline_server::READY_LINE,
            READY_TIMEOUT,
        )
    }

    /// The path that publishes to the receiver at `/<tail>`.
    pub fn publish_path(&self, tail: &str) -> String {
        format!("/v2/publish/http://{}/{tail}", self.receiver.addr)
    }

    /// A publish of a 100-byte JSON body to the receiver, with `extra` headers.
    pub fn publish(
        &self,
        server: &Child,
        tail: &str,
        extra: &[(&str, &str)],
        stamped: Option<u32>,
    ) -> Arc<RequestTemplate> {
        let body = match stamped {
            Some(run) => BodyTemplate::Stamped(Stamp::new(BODY_LEN, run)),
            None => BodyTemplate::Fixed(Stamp::new(BODY_LEN, 0).plain()),
        };
        Arc::new(RequestTemplate::post(
            server.addr,
            &self.publish_path(tail),
            extra,
            body,
        ))
    }
}

/// `<dir of this executable>/qstash`.
pub fn default_server_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("qstash")))
        .unwrap_or_else(|| PathBuf::from("qstash"))
}

/// A warning when the server binary is older than a source file of this checkout (a
/// `cargo run --bin qstash-bench` does not rebuild the server: `cargo build --release --bins`).
pub fn staleness_warning(server_bin: &Path) -> Option<String> {
    let built = std::fs::metadata(server_bin)
        .and_then(|m| m.modified())
        .ok()?;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let newest = newest_mtime(&src)?;
    (newest > built).then(|| {
        format!(
            "warning: {} is older than the sources in {}; run `cargo build --release --bins` first",
            server_bin.display(),
            src.display()
        )
    })
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_mtime(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(t);
    }
    newest
}

//! Child processes (the qstash server, the baseline server): spawned with piped output,
//! ready once their stdout shows the readiness line and the URL line, killed on drop, and
//! killed by `kill_all` when the bench gives up (watchdog, Ctrl-C).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Server stderr lines echoed to the bench's stderr per child; the rest are only counted.
const ECHOED_STDERR_LINES: u64 = 10;

static LIVE: Mutex<Vec<Weak<Mutex<std::process::Child>>>> = Mutex::new(Vec::new());

pub struct Child {
    process: Arc<Mutex<std::process::Child>>,
    pub pid: u32,
    pub addr: SocketAddr,
    /// From spawn to the readiness line on stdout.
    pub startup: Duration,
    stderr_lines: Arc<AtomicU64>,
    label: String,
}

impl Child {
    /// Spawns `program args...` and waits (at most `timeout`) for a stdout line containing
    /// `ready_marker` followed by a line `QSTASH_URL=http://127.0.0.1:<port>`.
    pub fn spawn(
        label: &str,
        program: &Path,
        args: &[&str],
        ready_marker: &str,
        timeout: Duration,
    ) -> Result<Child, String> {
        let started = Instant::now();
        let mut process = Command::new(program)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let pid = process.id();
        let stdout = process.stdout.take().ok_or("no stdout pipe")?;
        let stderr = process.stderr.take().ok_or("no stderr pipe")?;
        let process = Arc::new(Mutex::new(process));
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|w| w.strong_count() > 0);
            live.push(Arc::downgrade(&process));
        }
        let stderr_lines = Arc::new(AtomicU64::new(0));
        echo_stderr(label.to_string(), stderr, stderr_lines.clone());
        // From here on, dropping `guard` kills the process on every error path.
        let mut guard = Child {
            process,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            startup: Duration::ZERO,
            stderr_lines,
            label: label.to_string(),
        };
        let lines = read_stdout(stdout);
        let deadline = started + timeout;
        let mut ready = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("{label}: not ready within {timeout:?}"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("{label}: exited before it was ready"));
                }
            };
            if !ready && line.contains(ready_marker) {
                guard.startup = started.elapsed();
                ready = true;
            } else if ready && let Some(url) = line.trim().strip_prefix("QSTASH_URL=http://") {
                guard.addr = url
                    .trim_end_matches('/')
                    .parse()
                    .map_err(|e| format!("{label}: bad URL line {line:?}: {e}"))?;
                return Ok(guard);
            }
        }
    }

    /// The resident set size (VmRSS) in KiB.
    pub fn rss_kib(&self) -> Result<u64, String> {
        rss_kib(self.pid)
    }

    /// Lines the child wrote to stderr so far (warnings and errors: it runs with RUST_LOG=warn).
    pub fn stderr_lines(&self) -> u64 {
        self.stderr_lines.load(Ordering::Relaxed)
    }

    pub fn is_alive(&self) -> bool {
        match self.process.lock() {
            Ok(mut p) => matches!(p.try_wait(), Ok(None)),
            Err(_) => false,
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(mut p) = self.process.lock() {
            let _ = p.kill();
            let _ = p.wait();
        }
        let n = self.stderr_lines();
        if n > ECHOED_STDERR_LINES {
            eprintln!("[{}] {} stderr lines in total", self.label, n);
        }
    }
}

/// Kills every child still running (used before the bench exits abnormally).
pub fn kill_all() {
    if let Ok(live) = LIVE.lock() {
        for p in live.iter().filter_map(Weak::upgrade) {
            if let Ok(mut p) = p.lock() {
                let _ = p.kill();
                let _ = p.wait();
            }
        }
    }
}

pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// CPU time (user + system, all threads) of process `pid`, or of this process for `None`,
/// from /proc/<pid>/stat (in USER_HZ = 100 ticks per second).
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the `(comm)`: state is the first, utime the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// CPU used by the server and by the bench itself (load generator + receiver) over a span.
pub struct CpuMeter {
    pid: u32,
    server: f64,
    bench: f64,
    started: Instant,
}

impl CpuMeter {
    pub fn start(server: &Child) -> CpuMeter {
        CpuMeter {
            pid: server.pid,
            server: cpu_seconds(Some(server.pid)),
            bench: cpu_seconds(None),
            started: Instant::now(),
        }
    }

    /// (server CPU seconds, bench CPU seconds, wall seconds) since `start`.
    pub fn stop(&self) -> (f64, f64, f64) {
        (
            cpu_seconds(Some(self.pid)) - self.server,
            cpu_seconds(None) - self.bench,
            self.started.elapsed().as_secs_f64(),
        )
    }
}

/// Forwards stdout lines over a channel; keeps draining the pipe after the receiver is gone
/// so the child never blocks on a full pipe.
fn read_stdout(stdout: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    rx
}

fn echo_stderr(label: String, stderr: impl Read + Send + 'static, count: Arc<AtomicU64>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if count.fetch_add(1, Ordering::Relaxed) < ECHOED_STDERR_LINES {
                eprintln!("[{label}] {line}");
            }
        }
    });
}

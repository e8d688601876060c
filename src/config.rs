//! Runtime configuration and the quota profiles (`-quota payg|pro`).

use std::fmt;
use std::str::FromStr;

use crate::clock::Clock;

const KB: usize = 1024;
const MB: usize = 1024 * KB;
const DAY_MS: u64 = 86_400_000;

/// Simulated plan limits. They change what is accepted, never how fast anything runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaKind {
    Payg,
    Pro,
}

impl FromStr for QuotaKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "payg" => Ok(Self::Payg),
            "pro" => Ok(Self::Pro),
            other => Err(format!("invalid quota \"{other}\": expected payg or pro")),
        }
    }
}

impl fmt::Display for QuotaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Payg => "payg",
            Self::Pro => "pro",
        })
    }
}

#[derive(Clone, Debug)]
pub struct Quota {
    pub kind: QuotaKind,
    pub max_message_size: usize,
    pub max_retries: u32,
    /// `None` = unlimited.
    pub max_delay_ms: Option<u64>,
    pub max_timeout_ms: u64,
    pub max_queues: usize,
    pub max_queue_parallelism: u32,
    pub max_schedules: usize,
    pub max_url_groups: usize,
    pub max_endpoints_per_group: usize,
    pub global_parallelism: u32,
    pub dlq_retention_ms: i64,
}

impl Quota {
    pub fn new(kind: QuotaKind) -> Self {
        match kind {
            QuotaKind::Payg => Self {
                kind,
                max_message_size: MB,
                max_retries: 5,
                max_delay_ms: Some(365 * DAY_MS),
                max_timeout_ms: 2 * 3_600_000,
                max_queues: 100,
                max_queue_parallelism: 100,
                max_schedules: 1000,
                max_url_groups: 100,
                max_endpoints_per_group: 100,
                global_parallelism: 100,
                dlq_retention_ms: 7 * DAY_MS as i64,
            },
            QuotaKind::Pro => Self {
                kind,
                max_message_size: 10 * MB,
                max_retries: 20,
                max_delay_ms: None,
                max_timeout_ms: 2 * 3_600_000,
                max_queues: 1000,
                max_queue_parallelism: 1000,
                max_schedules: usize::MAX,
                max_url_groups: usize::MAX,
                max_endpoints_per_group: usize::MAX,
                global_parallelism: 200,
                dlq_retention_ms: 30 * DAY_MS as i64,
            },
        }
    }

    pub fn max_message_size_text(&self) -> String {
        format!("{} MB", self.max_message_size / MB)
    }
}

#[derive(Clone)]
pub struct Config {
    pub quota: Quota,
    pub clock: Clock,
    /// Serves `/__qstash/clock` so out-of-process tests can move time.
    pub clock_control: bool,
    /// Deliveries in flight to one `host:port` at most (one route takes at most half); the
    /// rest wait their turn so a slow host only slows itself. 256, so one route alone gets
    /// 128: with 64 a single fast route delivered ~10% less at saturation than before the
    /// per-route share existed (32k against 36k msg/s on the benchmark).
    pub host_concurrency: usize,
    /// Deliveries in flight at most, all destinations together: each holds a socket, so
    /// `main` sizes it from the file-descriptor limit, leaving room for the API's clients.
    pub outbound_capacity: usize,
    /// API connections open at most (see `http::connections`).
    pub max_connections: usize,
    /// Memory each user's event log, and separately each user's DLQ, may hold; the oldest
    /// entries are dropped beyond it.
    pub retention_bytes: usize,
    /// Accept any TLS certificate from destinations (`-insecure-tls`).
    pub insecure_tls: bool,
    /// Deliveries to `localhost`, `127.0.0.1` or `::1` go to this host instead
    /// (`-rewrite-localhost host.docker.internal`): inside a container, localhost is the
    /// container itself.
    pub rewrite_localhost: Option<String>,
    /// How long a finished message stays readable through `GET /v2/messages/{id}`
    /// (SDK test suites publish to fast endpoints and read the message right after).
    pub finished_message_grace_ms: i64,
    /// Where state is kept across restarts (`-data-dir`); `None`: in memory only.
    pub data_dir: Option<std::path::PathBuf>,
}

impl Config {
    pub fn new(quota: QuotaKind) -> Self {
        Self {
            quota: Quota::new(quota),
            clock: Clock::system(),
            clock_control: false,
            host_concurrency: 256,
            outbound_capacity: 4096,
            max_connections: 4096,
            retention_bytes: 128 * MB,
            insecure_tls: false,
            rewrite_localhost: None,
            finished_message_grace_ms: 10_000,
            data_dir: None,
        }
    }
}

/// File descriptors kept for everything but sockets (the listener, logs, data files).
const RESERVED_FDS: u64 = 64;

impl Config {
    /// Sizes the socket budgets from the process's file-descriptor limit: half for API
    /// connections, a quarter for deliveries in flight (each may also leave an idle pooled
    /// connection behind, so deliveries can hold up to the other quarter).
    pub fn size_for_fd_limit(&mut self, fd_limit: u64) {
        let usable = fd_limit.saturating_sub(RESERVED_FDS).max(64) as usize;
        self.max_connections = usable / 2;
        self.outbound_capacity = (usable / 4).min(1 << 16);
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new(QuotaKind::Payg)
    }
}

//! Renders a snapshot of every figure with the Prometheus client crate's text encoder (it
//! owns the format: escaping, `_total` suffixes, histogram buckets).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::latency::{Outcome, Reading};
use super::requests::{RequestCount, Requests};
use crate::cli::VERSION;
use crate::domain::workflow::run::RunState;
use crate::engine::Broker;
use crate::engine::Gauges;
use crate::engine::stats::Counters;
use crate::users::UserId;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

struct UserFigures {
    name: &'static str,
    counters: Counters,
    /// Runs started, then ended as success, failed, cancelled.
    runs: [u64; 4],
    latency: [Reading; 2],
    gauges: Gauges,
}

/// Everything one scrape shows, read first so encoding holds no lock.
#[derive(Default)]
struct Snapshot {
    users: Vec<UserFigures>,
    requests: Vec<RequestCount>,
    uptime_seconds: u64,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshot")
    }
}

/// The text `/metrics` answers.
pub fn render(broker: &Broker, requests: &Requests, uptime_seconds: u64) -> String {
    let stats = broker.stats();
    let latency = broker.delivery_latency();
    let users = UserId::all()
        .map(|u| UserFigures {
            name: u.info().name,
            counters: stats.counters(u),
            runs: [
                RunState::Started,
                RunState::Success,
                RunState::Failed,
                RunState::Canceled,
            ]
            .map(|s| stats.workflow_runs(u, s)),
            latency: Outcome::ALL.map(|o| latency.read(u, o)),
            gauges: broker.gauges(u),
        })
        .collect();
    let snapshot = Snapshot {
        users,
        requests: requests.counts(),
        uptime_seconds,
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

fn counter<'a, const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels<'a, N>, u64)>,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        family
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}

fn gauge<'a, const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels<'a, N>, i64)>,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        family.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

const OUTCOMES: [&str; 7] = [
    "accepted",
    "attempted",
    "delivered",
    "retried",
    "failed",
    "cancelled",
    "dead_lettered",
];
const RUN_STATES: [&str; 4] = ["started", "success", "failed", "cancelled"];

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let users = &self.users;
        {
            let mut info = e.encode_descriptor(
                "qstash_build",
                "This server's version (the value is always 1).",
                None,
                MetricType::Info,
            )?;
            info.encode_info(&[("version", VERSION)])?;
        }
        gauge(
            &mut e,
            "qstash_uptime_seconds",
            "Seconds since the server started, on the server's clock.",
            [([], self.uptime_seconds as i64)] as [(Labels<0>, i64); 1],
        )?;
        counter(
            &mut e,
            "qstash_messages",
            "Messages by user and lifecycle outcome since the start: accepted (created), attempted (attempts started), delivered, retried (attempts that failed and were scheduled again), failed (for good), cancelled, dead_lettered (entries put into the DLQ).",
            users.iter().flat_map(|u| {
                let c = &u.counters;
                let values = [
                    c.accepted,
                    c.attempts,
                    c.delivered,
                    c.retried,
                    c.failed,
                    c.cancelled,
                    c.dead_lettered,
                ];
                OUTCOMES
                    .iter()
                    .zip(values)
                    .map(|(o, v)| ([("user", u.name), ("outcome", *o)], v))
            }),
        )?;
        {
            let mut family = e.encode_descriptor(
                "qstash_delivery_duration_seconds",
                "How long delivery attempts took, by user and outcome (success: a 2xx answer; error: any other answer or none).",
                None,
                MetricType::Histogram,
            )?;
            for u in users {
                for (o, r) in Outcome::ALL.iter().zip(&u.latency) {
                    family
                        .encode_family(&[("user", u.name), ("outcome", o.as_str())])?
                        .encode_histogram::<NoLabelSet>(r.sum_seconds, r.count, &r.buckets, None)?;
                }
            }
        }
        gauge(
            &mut e,
            "qstash_messages_unfinished",
            "Messages accepted and not finished yet (waiting, parked at a gate or in flight).",
            users
                .iter()
                .map(|u| ([("user", u.name)], u.gauges.unfinished as i64)),
        )?;
        gauge(
            &mut e,
            "qstash_deliveries_in_flight",
            "Delivery attempts in flight.",
            users
                .iter()
                .map(|u| ([("user", u.name)], u.gauges.in_flight as i64)),
        )?;
        gauge(
            &mut e,
            "qstash_dlq_messages",
            "Entries in the dead-letter queue.",
            users
                .iter()
                .map(|u| ([("user", u.name)], u.gauges.dlq as i64)),
        )?;
        gauge(
            &mut e,
            "qstash_queue_messages",
            "Messages of each queue: waiting to start, and started (in flight or finishing callbacks).",
            users.iter().flat_map(|u| {
                u.gauges
                    .queues
                    .iter()
                    .flat_map(move |(q, waiting, active)| {
                        [
                            (
                                [("user", u.name), ("queue", &**q), ("state", "waiting")],
                                *waiting as i64,
                            ),
                            (
                                [("user", u.name), ("queue", &**q), ("state", "active")],
                                *active as i64,
                            ),
                        ]
                    })
            }),
        )?;
        gauge(
            &mut e,
            "qstash_flow_control_waitlist",
            "Messages waiting on each flow-control key's parallelism, rate or pause.",
            users.iter().flat_map(|u| {
                u.gauges.flow_keys.iter().map(move |(k, waiting, _)| {
                    ([("user", u.name), ("key", &**k)], *waiting as i64)
                })
            }),
        )?;
        gauge(
            &mut e,
            "qstash_flow_control_in_flight",
            "Deliveries in flight under each flow-control key.",
            users.iter().flat_map(|u| {
                u.gauges
                    .flow_keys
                    .iter()
                    .map(move |(k, _, n)| ([("user", u.name), ("key", &**k)], *n as i64))
            }),
        )?;
        gauge(
            &mut e,
            "qstash_schedules",
            "Schedules by state (active or paused).",
            users.iter().flat_map(|u| {
                [
                    (
                        [("user", u.name), ("state", "active")],
                        u.gauges.schedules_active as i64,
                    ),
                    (
                        [("user", u.name), ("state", "paused")],
                        u.gauges.schedules_paused as i64,
                    ),
                ]
            }),
        )?;
        gauge(
            &mut e,
            "qstash_workflow_runs_active",
            "Workflow runs started and not ended.",
            users
                .iter()
                .map(|u| ([("user", u.name)], u.gauges.workflow_runs_active as i64)),
        )?;
        counter(
            &mut e,
            "qstash_workflow_runs",
            "Workflow runs since the start: started, then ended as success, failed or cancelled.",
            users.iter().flat_map(|u| {
                RUN_STATES
                    .iter()
                    .zip(u.runs)
                    .map(|(s, v)| ([("user", u.name), ("state", *s)], v))
            }),
        )?;
        let status: Vec<String> = self.requests.iter().map(|r| r.2.to_string()).collect();
        counter(
            &mut e,
            "qstash_http_requests",
            "HTTP requests answered, by method, route template and status.",
            self.requests
                .iter()
                .zip(&status)
                .map(|((method, route, _, n), status)| {
                    (
                        [
                            ("method", *method),
                            ("route", route.as_ref()),
                            ("status", status.as_str()),
                        ],
                        *n,
                    )
                }),
        )?;
        Ok(())
    }
}

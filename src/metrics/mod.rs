//! `GET /metrics`: the server's figures in the Prometheus text format.
//!
//! Nothing here sits on the delivery path except two atomic recorders: attempt latencies
//! ([`DeliveryLatency`], written by the delivery tasks) and HTTP requests ([`Requests`],
//! written per answered request). Everything else is read when scraped: the message
//! counters the engine already keeps for the console (`engine::stats`), and the gauges
//! (queues, flow-control waitlists, schedules, workflow runs), read under one short lock
//! per user.

mod latency;
mod render;
mod requests;

pub use latency::{BUCKETS, DeliveryLatency, Outcome};
pub use render::{CONTENT_TYPE, render};
pub use requests::{PUBLISH_ROUTE, Requests, UNMATCHED};

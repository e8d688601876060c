//! Pure domain logic: message model, header parsing, retry math, filters. No I/O, no locks,
//! no clocks: time is always an argument.

pub mod attempt;
pub mod callback;
pub mod cron;
pub mod dedup;
pub mod destination;
pub mod dlq;
pub mod duration;
pub mod filter;
pub mod flow_control;
pub mod header_list;
pub mod log;
pub mod loopback;
pub mod message;
pub mod options;
pub mod queue;
pub mod retry;
pub mod retry_expr;
pub mod schedule;
pub mod url_group;
pub mod workflow;

//! The integration tests: one test binary (so a change rebuilds once), one module per area.
//! Each test starts the real server on an ephemeral port and talks HTTP to it; `cli` drives
//! the built `qstash` binary itself.

mod common;

mod batch;
mod callbacks;
mod cli;
mod console;
mod dedup;
mod dlq;
mod flow_control;
mod hostile;
mod keys_and_users;
mod logs;
mod messages;
mod ops;
mod persist;
mod publish;
mod queues;
mod retries;
mod robustness;
mod schedules;
mod stalls;
mod tls;
mod url_groups;
mod webhook;
mod workflow;

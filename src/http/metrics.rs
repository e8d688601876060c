//! `GET /metrics` (no token): the Prometheus text format (see [`crate::metrics`]). Like the
//! rest of the server it listens on loopback only unless `-host` says otherwise.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::metrics;

pub async fn metrics(State(app): State<AppState>) -> Response {
    let uptime = app.ops.uptime_seconds(&app.broker);
    let text = metrics::render(&app.broker, &app.ops.requests, uptime);
    ([(CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

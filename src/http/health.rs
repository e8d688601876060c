//! `GET /health` (no token): `{"status":"ok","version":"…","uptimeSeconds":N}` with 200.
//! The server answers only once it is set up and listening, so any answer means ready; the
//! version tells which server answers (this one, an official binary, a stale build).
//! `qstash health` (the Docker HEALTHCHECK) asks it.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::cli::VERSION;

pub async fn health(State(app): State<AppState>) -> Response {
    Json(json!({
        "status": "ok",
        "version": VERSION,
        "uptimeSeconds": app.ops.uptime_seconds(&app.broker),
    }))
    .into_response()
}

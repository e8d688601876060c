//! `/__qstash/clock`: lets out-of-process tests move the broker's clock (enabled by
//! `-clock-control`). `POST /__qstash/clock/advance?by=12s`, `POST …/pause`, `POST …/resume`,
//! `GET /__qstash/clock` → `{"now": <ms>, "paused": bool}`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::extract::QueryPairs;
use crate::domain::duration::parse_duration_ms;

/// Keeps the clock's millisecond arithmetic far from overflowing.
const MAX_JUMP_MS: u64 = 100 * 365 * 86_400_000;

fn now(app: &AppState) -> Response {
    let clock = app.broker.clock();
    Json(json!({ "now": clock.now_ms(), "paused": clock.is_paused() })).into_response()
}

pub async fn get(State(app): State<AppState>, _: User) -> Response {
    now(&app)
}

pub async fn advance(
    State(app): State<AppState>,
    _: User,
    query: QueryPairs,
) -> ApiResult<Response> {
    let by = query
        .get("by")
        .ok_or_else(|| ApiError::bad_request("missing query parameter by (e.g. ?by=12s)"))?;
    let ms = parse_duration_ms(by).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid by \"{by}\": expected a duration such as 1500ms, 12s or 2h"
        ))
    })?;
    if ms > MAX_JUMP_MS {
        return Err(ApiError::bad_request(format!(
            "invalid by \"{by}\": at most 100 years at a time"
        )));
    }
    app.broker.clock().advance(ms as i64);
    Ok(now(&app))
}

pub async fn pause(State(app): State<AppState>, _: User) -> Response {
    app.broker.clock().pause();
    now(&app)
}

/// `/__qstash/clock…` on a server started without `-clock-control`.
pub async fn disabled() -> ApiError {
    ApiError::not_found(
        "the clock controls are off: start the server with -clock-control (or QSTASH_DEV_CLOCK_CONTROL=1) to use /__qstash/clock",
    )
}

pub async fn resume(State(app): State<AppState>, _: User) -> Response {
    app.broker.clock().resume();
    now(&app)
}

//! Controls beyond the QStash API under `/__qstash/` (always on, authenticated with the user's
//! token like the rest): the user's overview, "run a schedule now", "deliver a waiting message
//! now", and a schedule's upcoming run times. The console uses them; so can tests.
//!
//! - `GET /__qstash/overview` → counters, recent figures, sizes (see [`overview_json`])
//! - `POST /__qstash/schedules/{id}/run` → `{"messageIds": [...]}`
//! - `POST /__qstash/messages/{id}/deliver` → `{}`
//! - `GET /__qstash/schedules/{id}/upcoming?count=5` → `{"scheduleId", "timeZone", "times"}`
//! - `POST /__qstash/reset` → `{}`: wipes the user's state (`?all=true`: every user's)
//! - `GET|POST /__qstash/idle?timeout=10s` → 200 `{"idle": true, …}` once nothing of the user
//!   is due now, in flight or waiting at a gate (and, with `-data-dir`, all of it is on
//!   disk); 408 with what is still moving after the timeout (default 10 s, at most 5 min)

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::extract::{PathParam, QueryPairs};
use super::{AppState, done};
use crate::clock::Clock;
use crate::domain::duration::parse_duration_ms;
use crate::engine::Busy;
use crate::engine::{Overview, RECENT_WINDOWS};
use crate::users::UserId;

/// How long wait-until-idle waits without a `timeout`, and at most.
const IDLE_TIMEOUT_MS: u64 = 10_000;
const MAX_IDLE_TIMEOUT_MS: u64 = 300_000;

/// Upcoming run times listed at most.
const MAX_UPCOMING: usize = 50;

/// The overview as JSON; `now` is the server clock's reading.
pub fn overview_json(user: UserId, o: &Overview, clock: &Clock) -> Value {
    let c = &o.counters;
    let recent: Vec<Value> = o
        .recent
        .iter()
        .zip(RECENT_WINDOWS)
        .map(|(r, minutes)| json!({ "minutes": minutes, "delivered": r.delivered, "failed": r.failed }))
        .collect();
    json!({
        "user": user.info().name,
        "counters": {
            "accepted": c.accepted,
            "attempts": c.attempts,
            "delivered": c.delivered,
            "retried": c.retried,
            "failed": c.failed,
            "cancelled": c.cancelled,
            "deadLettered": c.dead_lettered,
        },
        "recent": recent,
        "messages": {
            "unfinished": o.sizes.messages,
            "inFlight": o.in_flight,
            "waiting": o.waiting(),
        },
        // What `GET /v2/dlq` lists; failed workflow runs are in the workflow DLQ.
        "dlq": o.sizes.dlq - o.sizes.workflow_dlq,
        "workflowDlq": o.sizes.workflow_dlq,
        "workflowRuns": {
            "active": o.workflow_runs.active,
            "succeeded": o.workflow_runs.succeeded,
            "failed": o.workflow_runs.failed,
            "canceled": o.workflow_runs.canceled,
        },
        "logSeq": o.sizes.log_seq,
        "schedules": {
            "total": o.sizes.schedules,
            "active": o.sizes.schedules - o.sizes.paused_schedules,
            "paused": o.sizes.paused_schedules,
        },
        "queues": o.sizes.queues,
        "urlGroups": o.sizes.url_groups,
        "flowControlKeys": o.flow_keys,
        "clock": { "now": clock.now_ms(), "paused": clock.is_paused() },
    })
}

pub async fn overview(State(app): State<AppState>, User(user): User) -> Response {
    let o = app.broker.overview(user);
    Json(overview_json(user, &o, app.broker.clock())).into_response()
}

pub async fn run_schedule(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    let ids = app.broker.run_schedule_now(user, &id)?;
    Ok(Json(json!({ "messageIds": ids })).into_response())
}

pub async fn deliver_message(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    app.broker.deliver_now(user, &id)?;
    Ok(done())
}

pub async fn upcoming(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
    query: QueryPairs,
) -> ApiResult<Response> {
    let count = match query.get("count").filter(|c| !c.is_empty()) {
        None => 5,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_UPCOMING).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid count \"{c}\": expected 1 to {MAX_UPCOMING}"
                ))
            })?,
    };
    let up = app.broker.schedule_upcoming(user, &id, count)?;
    Ok(Json(json!({
        "scheduleId": id,
        "timeZone": up.time_zone.name(),
        "times": up.times,
    }))
    .into_response())
}

pub async fn reset(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
) -> ApiResult<Response> {
    let all = match query.get("all").map(str::trim) {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid all \"{other}\": expected true or false"
            )));
        }
    };
    app.broker.reset((!all).then_some(user));
    Ok(done())
}

fn busy_json(idle: bool, b: &Busy) -> Value {
    json!({ "idle": idle, "due": b.due, "inFlight": b.in_flight, "gated": b.gated })
}

pub async fn idle(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
) -> ApiResult<Response> {
    let timeout_ms = match query.get("timeout").filter(|t| !t.is_empty()) {
        None => IDLE_TIMEOUT_MS,
        Some(t) => parse_duration_ms(t)
            .filter(|ms| *ms <= MAX_IDLE_TIMEOUT_MS)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid timeout \"{t}\": expected a duration up to 5m, such as 500ms or 10s"
                ))
            })?,
    };
    let busy = app
        .broker
        .wait_idle(user, std::time::Duration::from_millis(timeout_ms))
        .await;
    if busy.is_idle() {
        // With -data-dir, idle also means on disk: a test that waits for idle and then
        // kills the server finds everything it saw.
        let response = Json(busy_json(true, &busy)).into_response();
        return Ok(super::durable::answer(&app.broker, response).await);
    }
    let mut body = busy_json(false, &busy);
    body["error"] = json!(format!(
        "still busy after {timeout_ms} ms: {} due, {} in flight, {} waiting at a gate",
        busy.due, busy.in_flight, busy.gated
    ));
    Ok((axum::http::StatusCode::REQUEST_TIMEOUT, Json(body)).into_response())
}

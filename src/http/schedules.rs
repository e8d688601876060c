//! Schedules. `POST /v2/schedules/{destination}` creates; `{id}/pause|resume` (POST, or PATCH
//! as both SDKs send) toggle; `GET`/`DELETE /v2/schedules/{id}`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::extract::PathParam;
use super::publish::{Incoming, caller_ip, config_pairs, parse_for};
use super::views::ScheduleJson;
use super::{AppState, done};
use crate::domain::destination::{self, config_query_params};
use crate::engine::ScheduleRequest;

pub async fn create(
    State(app): State<AppState>,
    User(user): User,
    req: Incoming,
) -> ApiResult<Response> {
    let Incoming {
        peer,
        uri,
        headers,
        body,
    } = req;
    let raw = uri
        .path()
        .strip_prefix("/v2/schedules")
        .unwrap_or("")
        .trim_start_matches('/');
    if let Some((id, action)) = raw.rsplit_once('/') {
        // `{id}/pause` and `{id}/resume`; a URL destination always contains "://".
        if !id.contains('/') && !id.contains(':') && (action == "pause" || action == "resume") {
            app.broker
                .set_schedule_paused(user, id, action == "pause")?;
            return Ok(done());
        }
    }
    let destination = destination::parse(raw, uri.query())?;
    let query_params = config_query_params(uri.query());
    let pairs = config_pairs(&headers, &query_params);
    let parsed = parse_for(&app, user, &destination, pairs)?;
    let request = ScheduleRequest {
        destination,
        parsed,
        body,
        caller_ip: caller_ip(peer),
    };
    let (id, deduplicated) = app.broker.create_schedule(user, request)?;
    let mut out = json!({ "scheduleId": &*id });
    if deduplicated {
        out["deduplicated"] = json!(true);
    }
    Ok(Json(out).into_response())
}

pub async fn list(State(app): State<AppState>, User(user): User) -> Response {
    let schedules = app.broker.schedules(user);
    Json(schedules.iter().map(ScheduleJson).collect::<Vec<_>>()).into_response()
}

pub async fn get(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    let s = app.broker.schedule(user, &id)?;
    Ok(Json(ScheduleJson(&s)).into_response())
}

pub async fn delete(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
) -> Response {
    app.broker.delete_schedule(user, &id);
    done()
}

/// `PATCH /v2/schedules/{id}/pause|resume`, as the SDKs send it.
pub async fn toggle(
    State(app): State<AppState>,
    User(user): User,
    PathParam(rest): PathParam,
) -> ApiResult<Response> {
    let (id, paused) = match rest.rsplit_once('/') {
        Some((id, "pause")) => (id, true),
        Some((id, "resume")) => (id, false),
        _ => {
            return Err(ApiError::not_found(format!(
                "no such route: PATCH /v2/schedules/{rest}"
            )));
        }
    };
    app.broker.set_schedule_paused(user, id, paused)?;
    Ok(done())
}

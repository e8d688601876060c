//! Flow-control keys and the user's global parallelism.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::extract::{PathParam, QueryPairs};
use super::{AppState, done};
use crate::domain::flow_control::FlowChange;
use crate::engine::FlowView;

fn flow_json(f: &FlowView) -> Value {
    json!({
        "flowControlKey": &*f.key,
        "waitListSize": f.wait_list_size,
        "waitlistSize": f.wait_list_size,
        "parallelismMax": f.parallelism_max,
        "parallelismCount": f.parallelism_count,
        "rateMax": f.rate_max,
        "rateCount": f.rate_count,
        "ratePeriod": f.rate_period,
        "ratePeriodStart": f.rate_period_start,
        "isPinnedParallelism": f.pinned_parallelism,
        "isPinnedRate": f.pinned_rate,
        "isPaused": f.paused,
    })
}

pub async fn list(State(app): State<AppState>, User(user): User, query: QueryPairs) -> Response {
    let keys = app
        .broker
        .flow_controls(user, query.get("search").filter(|s| !s.is_empty()));
    Json(keys.iter().map(flow_json).collect::<Vec<_>>()).into_response()
}

pub async fn get(
    State(app): State<AppState>,
    User(user): User,
    PathParam(key): PathParam,
) -> ApiResult<Response> {
    Ok(Json(flow_json(&app.broker.flow_control(user, &key)?)).into_response())
}

fn change(app: &AppState, user: crate::users::UserId, key: &str, change: FlowChange) -> Response {
    app.broker.change_flow_control(user, key, change);
    done()
}

pub async fn pause(
    State(app): State<AppState>,
    User(user): User,
    PathParam(key): PathParam,
) -> Response {
    change(&app, user, &key, FlowChange::Pause)
}

pub async fn resume(
    State(app): State<AppState>,
    User(user): User,
    PathParam(key): PathParam,
) -> Response {
    change(&app, user, &key, FlowChange::Resume)
}

pub async fn reset_rate(
    State(app): State<AppState>,
    User(user): User,
    PathParam(key): PathParam,
) -> Response {
    change(&app, user, &key, FlowChange::ResetRate)
}

fn positive(query: &QueryPairs, name: &str) -> ApiResult<Option<u32>> {
    match query.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid {name} \"{v}\": must be a positive integer"
                ))
            }),
    }
}

/// `?parallelism=3&rate=20&period=120` (period in seconds).
pub async fn pin(
    State(app): State<AppState>,
    User(user): User,
    PathParam(key): PathParam,
    query: QueryPairs,
) -> ApiResult<Response> {
    let parallelism = positive(&query, "parallelism")?;
    let rate = positive(&query, "rate")?;
    let period = positive(&query, "period")?;
    if parallelism.is_none() && rate.is_none() && period.is_none() {
        return Err(ApiError::bad_request(
            "pin needs at least one of parallelism, rate or period",
        ));
    }
    if period.is_some_and(|p| p > 7 * 86_400) {
        return Err(ApiError::bad_request(
            "period must be at most one week (604800 seconds)",
        ));
    }
    Ok(change(
        &app,
        user,
        &key,
        FlowChange::Pin {
            parallelism,
            rate,
            period,
        },
    ))
}

fn flag(query: &QueryPairs, name: &str) -> ApiResult<bool> {
    match query.get(name).map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid {name} \"{other}\": expected true or false"
        ))),
    }
}

/// `?parallelism=true&rate=false`.
pub async fn unpin(
    State(app): State<AppState>,
    User(user): User,
    PathParam(key): PathParam,
    query: QueryPairs,
) -> ApiResult<Response> {
    let parallelism = flag(&query, "parallelism")?;
    let rate = flag(&query, "rate")?;
    Ok(change(
        &app,
        user,
        &key,
        FlowChange::Unpin { parallelism, rate },
    ))
}

pub async fn global_parallelism(State(app): State<AppState>, User(user): User) -> Response {
    let (max, count) = app.broker.global_parallelism(user);
    Json(json!({ "parallelismMax": max, "parallelismCount": count })).into_response()
}

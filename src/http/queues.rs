//! Queues: upsert, list, get, delete, pause/resume, and `POST /v2/enqueue/{queue}/{destination}`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::extract::{PathParam, json_body};
use super::publish::{Incoming, publish_request, published_response};
use super::{AppState, done};
use crate::domain::destination::validate_name;
use crate::engine::QueueView;

fn queue_json(q: &QueueView) -> serde_json::Value {
    json!({
        "name": &*q.info.name,
        "parallelism": q.info.parallelism,
        "createdAt": q.info.created_at,
        "updatedAt": q.info.updated_at,
        "lag": q.lag,
        "paused": q.info.paused,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpsertIn {
    queue_name: Option<String>,
    parallelism: Option<i64>,
    #[serde(default)]
    paused: Option<bool>,
}

pub async fn upsert(
    State(app): State<AppState>,
    User(user): User,
    body: Bytes,
) -> ApiResult<Response> {
    let input: UpsertIn = json_body(&body)?;
    let name = input
        .queue_name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("queueName is required"))?;
    app.broker.upsert_queue(
        user,
        &name,
        input.parallelism,
        input.paused.unwrap_or(false),
    )?;
    Ok(done())
}

pub async fn list(State(app): State<AppState>, User(user): User) -> Response {
    Json(
        app.broker
            .queues(user)
            .iter()
            .map(queue_json)
            .collect::<Vec<_>>(),
    )
    .into_response()
}

pub async fn get(
    State(app): State<AppState>,
    User(user): User,
    PathParam(name): PathParam,
) -> ApiResult<Response> {
    Ok(Json(queue_json(&app.broker.queue(user, &name)?)).into_response())
}

pub async fn delete(
    State(app): State<AppState>,
    User(user): User,
    PathParam(name): PathParam,
) -> Response {
    app.broker.delete_queue(user, &name).await;
    done()
}

pub async fn pause(
    State(app): State<AppState>,
    User(user): User,
    PathParam(name): PathParam,
) -> ApiResult<Response> {
    app.broker.set_queue_paused(user, &name, true)?;
    Ok(done())
}

pub async fn resume(
    State(app): State<AppState>,
    User(user): User,
    PathParam(name): PathParam,
) -> ApiResult<Response> {
    app.broker.set_queue_paused(user, &name, false)?;
    Ok(done())
}

pub async fn enqueue(
    State(app): State<AppState>,
    User(user): User,
    req: Incoming,
) -> ApiResult<Response> {
    let rest = req.uri.path().strip_prefix("/v2/enqueue/").unwrap_or("");
    let (queue, destination) = rest.split_once('/').unwrap_or((rest, ""));
    validate_name(queue, "queue name")?;
    let request = publish_request(&app, user, destination, &req, Some(queue.to_string()))?;
    Ok(published_response(app.broker.publish(user, request)?))
}

//! The dead-letter queue: list, get, delete, retry, one by one or in bulk.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use super::auth::User;
use super::error::ApiResult;
use super::extract::{PathParam, QueryPairs, selection};
use super::publish::config_pairs;
use super::views::DlqJson;
use super::{AppState, done};
use crate::domain::filter::Scope;

/// Plain entries only; `?source=workflow` (what the workflow SDK sends) lists the workflow
/// DLQ instead.
pub async fn list(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
) -> ApiResult<Response> {
    if query.get("source") == Some("workflow") {
        return super::workflow_logs::dlq_list(State(app), User(user), query).await;
    }
    let page = app.broker.dlq_list(user, &query.filter(Scope::Dlq)?)?;
    let messages: Vec<DlqJson<'_>> = page.items.iter().map(DlqJson).collect();
    let mut body = json!({ "messages": messages });
    if let Some(c) = page.next {
        body["cursor"] = json!(c.to_string());
    }
    Ok(Json(body).into_response())
}

pub async fn get(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    let entry = app.broker.dlq_get(user, &id)?;
    if entry.workflow.is_some() {
        // With its run's fields, as the workflow DLQ shows it.
        return super::workflow_logs::dlq_get(State(app), User(user), PathParam(id)).await;
    }
    Ok(Json(DlqJson(&entry)).into_response())
}

pub async fn delete(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    app.broker.dlq_delete(user, &id)?;
    Ok(done())
}

pub async fn delete_many(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
    body: Bytes,
) -> ApiResult<Response> {
    if query.get("source") == Some("workflow") {
        return super::workflow_logs::dlq_delete_many(State(app), User(user), query).await;
    }
    let filter = selection(Scope::Dlq, &query, &body)?;
    let (deleted, cursor) = app.broker.dlq_delete_many(user, &filter)?;
    let mut body = json!({ "deleted": deleted });
    if let Some(c) = cursor {
        body["cursor"] = json!(c.to_string());
    }
    Ok(Json(body).into_response())
}

pub async fn retry(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let pairs = config_pairs(&headers, &[]);
    let message_id = app.broker.dlq_retry(user, &id, &pairs)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "messageId": message_id })),
    )
        .into_response())
}

pub async fn retry_many(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let filter = selection(Scope::Dlq, &query, &body)?;
    let pairs = config_pairs(&headers, &[]);
    let (ids, cursor) = app.broker.dlq_retry_many(user, &filter, &pairs)?;
    let responses: Vec<_> = ids.iter().map(|id| json!({ "messageId": id })).collect();
    let mut body = json!({ "responses": responses });
    if let Some(c) = cursor {
        body["cursor"] = json!(c.to_string());
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

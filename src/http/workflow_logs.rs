//! The run logs (W8/W9), the workflow DLQ (W10–W13) and the recovery of failed runs:
//! resume / restart (W14–W17, the bulk routes are what the SDK calls) and the failure
//! function's retry (W18).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::User;
use super::error::ApiResult;
use super::extract::{PathParam, QueryPairs};
use super::publish::config_pairs;
use super::views::DlqJson;
use super::{AppState, done};
use crate::domain::workflow::dlq::WorkflowDlqFilter;
use crate::domain::workflow::log_filter::LogFilter;
use crate::domain::workflow::trace::Answer;
use crate::engine::{Recovered, Recovery, WorkflowDlqEntry, is_override};

/// `GET /v2/workflows/events` and `/v2/workflows/logs`.
pub async fn logs(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
) -> ApiResult<Response> {
    let filter = LogFilter::from_pairs(query.iter())?;
    let (runs, cursor) = app.broker.workflow_logs(user, &filter);
    let mut body = json!({ "runs": runs });
    if let Some(c) = cursor {
        body["cursor"] = c.into();
    }
    Ok(Json(body).into_response())
}

fn headers_json(a: &Answer) -> Value {
    serde_json::to_value(a.header_map()).unwrap_or_else(|_| json!({}))
}

/// A workflow DLQ entry: the DLQ entry's fields, its run and the failure function's state.
fn entry_json(w: &WorkflowDlqEntry) -> Value {
    let e = &w.entry;
    let mut v = serde_json::to_value(DlqJson(e)).unwrap_or_else(|_| json!({}));
    if let Some(run) = &e.workflow {
        v["workflowRunId"] = run.run_id.clone().into();
        v["workflowCreatedAt"] = run.created_at.into();
        v["workflowUrl"] = run.url.clone().into();
    }
    if let Some(f) = &w.failure {
        v["failureCallback"] = (*f.url).into();
        let mut info = json!({ "state": f.state.as_str() });
        if let Some(r) = &f.response {
            info["responseStatus"] = r.status.into();
            info["responseBody"] = r.body.clone().into();
            info["responseHeaders"] = headers_json(r);
        }
        v["failureCallbackInfo"] = info;
    }
    v
}

fn page_json(key: &str, items: Vec<Value>, cursor: Option<u64>) -> Response {
    let mut body = json!({ key: items });
    if let Some(c) = cursor {
        body["cursor"] = c.to_string().into();
    }
    Json(body).into_response()
}

/// `GET /v2/dlq?source=workflow` and `GET /v2/workflows/dlq`.
pub async fn dlq_list(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
) -> ApiResult<Response> {
    let filter = WorkflowDlqFilter::from_pairs(query.iter())?;
    let (items, cursor) = app.broker.workflow_dlq_list(user, &filter)?;
    Ok(page_json(
        "messages",
        items.iter().map(entry_json).collect(),
        cursor,
    ))
}

pub async fn dlq_get(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    let entry = app.broker.workflow_dlq_get(user, &id)?;
    Ok(Json(entry_json(&entry)).into_response())
}

pub async fn dlq_delete(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    app.broker.workflow_dlq_delete(user, &id)?;
    Ok(done())
}

pub async fn dlq_delete_many(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
) -> ApiResult<Response> {
    let filter = WorkflowDlqFilter::from_pairs(query.iter())?;
    let (deleted, cursor) = app.broker.workflow_dlq_delete_many(user, &filter)?;
    let mut body = json!({ "deleted": deleted });
    if let Some(c) = cursor {
        body["cursor"] = c.to_string().into();
    }
    Ok(Json(body).into_response())
}

fn run_json(r: &Recovered) -> Value {
    json!({ "workflowRunId": &*r.run_id, "workflowCreatedAt": r.created_at })
}

fn overrides(headers: &HeaderMap) -> Vec<(String, String)> {
    config_pairs(headers, &[])
        .into_iter()
        .filter(|(n, _)| is_override(n))
        .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

async fn recover_many(
    app: AppState,
    user: crate::users::UserId,
    query: QueryPairs,
    headers: HeaderMap,
    how: Recovery,
) -> ApiResult<Response> {
    let filter = WorkflowDlqFilter::from_pairs(query.iter())?;
    let (runs, cursor) = app
        .broker
        .workflow_recover(user, &filter, how, &overrides(&headers))?;
    Ok(page_json(
        "workflowRuns",
        runs.iter().map(run_json).collect(),
        cursor,
    ))
}

async fn recover_one(
    app: AppState,
    user: crate::users::UserId,
    id: String,
    headers: HeaderMap,
    how: Recovery,
) -> ApiResult<Response> {
    let filter = WorkflowDlqFilter::from_pairs([("dlqIds", id.as_str())])?;
    let (runs, _) = app
        .broker
        .workflow_recover(user, &filter, how, &overrides(&headers))?;
    let first = runs.first().map(run_json).unwrap_or_default();
    Ok(Json(first).into_response())
}

pub async fn resume_many(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
    headers: HeaderMap,
) -> ApiResult<Response> {
    recover_many(app, user, query, headers, Recovery::Resume).await
}

pub async fn restart_many(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
    headers: HeaderMap,
) -> ApiResult<Response> {
    recover_many(app, user, query, headers, Recovery::Restart).await
}

pub async fn resume(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
    headers: HeaderMap,
) -> ApiResult<Response> {
    recover_one(app, user, id, headers, Recovery::Resume).await
}

pub async fn restart(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
    headers: HeaderMap,
) -> ApiResult<Response> {
    recover_one(app, user, id, headers, Recovery::Restart).await
}

/// `POST /v2/workflows/dlq/callback/{dlqId}`.
pub async fn retry_failure(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    let run = app.broker.workflow_retry_failure(user, &id)?;
    Ok(Json(run_json(&run)).into_response())
}

/// `DELETE /v2/workflows/dlq/callback/{dlqId}`: cancels a failure function in progress.
pub async fn cancel_failure(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    app.broker.workflow_cancel_failure(user, &id)?;
    Ok(done())
}

//! Workflow runs: lazy fetch of a run's steps (W1), the end of a run (W2), bulk cancel (W3),
//! and runs started without an SDK client (`/v2/trigger`, W20/W21).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::extract::{PathParam, QueryPairs};
use super::publish::{Incoming, caller_ip, config_pairs};
use super::{AppState, done};
use crate::domain::destination::{self, Destination, config_query_params};
use crate::domain::options::{self, Pair};
use crate::domain::workflow::filter::RunFilter;
use crate::engine::Started;
use crate::users::UserId;

pub async fn steps(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    let listing = app.broker.workflow_steps(user, &id)?;
    Ok(([(http::header::CONTENT_TYPE, "application/json")], listing).into_response())
}

pub async fn end(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
    query: QueryPairs,
    body: Bytes,
) -> ApiResult<Response> {
    let cancel = match query.get("cancel") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid cancel \"{other}\": expected true or false"
            )));
        }
    };
    app.broker.workflow_end(user, &id, cancel, body)?;
    Ok(done())
}

pub async fn cancel_many(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
) -> ApiResult<Response> {
    let filter = RunFilter::from_pairs(query.iter())?;
    let cancelled = app.broker.workflow_cancel(user, &filter);
    Ok(Json(json!({ "cancelled": cancelled })).into_response())
}

fn started_json(s: &Started) -> Value {
    let mut v = json!({ "workflowRunId": &*s.run_id, "workflowCreatedAt": s.created_at });
    if s.deduplicated {
        v["deduplicated"] = Value::Bool(true);
    }
    v
}

/// Starts one run at `raw_destination` with the request's configuration headers.
fn trigger_one(
    app: &AppState,
    user: UserId,
    raw_destination: &str,
    query: Option<&str>,
    headers: Vec<Pair<'_>>,
    body: Bytes,
    peer: std::net::SocketAddr,
) -> ApiResult<Started> {
    let Destination::Url(url) = destination::parse(raw_destination, query)? else {
        return Err(ApiError::bad_request(
            "a workflow is triggered at a URL: /v2/trigger/<http(s) URL>",
        ));
    };
    let given = headers
        .iter()
        .find(|(n, _)| *n == "upstash-workflow-runid")
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let run_id = given.map_or_else(
        || format!("wfr_{}", crate::ids::random_base62(21)),
        str::to_string,
    );
    // The run's own workflow headers come first; the rest is the caller's configuration.
    let mut pairs: Vec<Pair<'_>> = vec![
        ("upstash-workflow-runid", run_id.as_bytes()),
        ("upstash-workflow-init", b"true"),
        ("upstash-workflow-url", url.as_bytes()),
        ("upstash-workflow-calltype", b"step"),
        ("upstash-feature-set", b"WF_DetectTrigger"),
    ];
    pairs.extend(
        headers
            .into_iter()
            .filter(|(n, _)| !n.starts_with("upstash-workflow-") && *n != "upstash-feature-set"),
    );
    let parsed = options::parse(
        &pairs,
        &app.broker.config().quota,
        app.broker.clock().now_ms(),
    )?;
    Ok(app
        .broker
        .workflow_trigger(user, url, parsed, body, caller_ip(peer))?)
}

pub async fn trigger(
    State(app): State<AppState>,
    User(user): User,
    req: Incoming,
) -> ApiResult<Response> {
    let raw = req
        .uri
        .path()
        .strip_prefix("/v2/trigger")
        .unwrap_or("")
        .trim_start_matches('/');
    let query = req.uri.query();
    let query_params = config_query_params(query);
    let pairs = config_pairs(&req.headers, &query_params);
    let started = trigger_one(&app, user, raw, query, pairs, req.body.clone(), req.peer)?;
    Ok(Json(started_json(&started)).into_response())
}

/// `POST /v2/batch/trigger`: `[{"destination", "body"?, "headers"?}]`, each like
/// `/v2/trigger`; a bad item gets its own `{"error"}`.
pub async fn trigger_batch(
    State(app): State<AppState>,
    User(user): User,
    req: Incoming,
) -> ApiResult<Response> {
    let items: Vec<Value> = serde_json::from_slice(&req.body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid JSON body: expected an array of triggers ({e})"
        ))
    })?;
    let mut results = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let result = trigger_item(&app, user, item, req.peer)
            .map(|s| started_json(&s))
            .unwrap_or_else(|e| json!({ "error": format!("item {i}: {}", e.message) }));
        results.push(result);
    }
    Ok((StatusCode::CREATED, Json(results)).into_response())
}

fn trigger_item(
    app: &AppState,
    user: UserId,
    item: &Value,
    peer: std::net::SocketAddr,
) -> ApiResult<Started> {
    let destination = item["destination"]
        .as_str()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| ApiError::bad_request("destination is required"))?;
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(map) = item["headers"].as_object() {
        for (k, v) in map {
            let values = match v {
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
                    .collect(),
                Value::String(s) => vec![s.clone()],
                other => vec![other.to_string()],
            };
            headers.extend(values.into_iter().map(|v| (k.to_ascii_lowercase(), v)));
        }
    }
    let body = match &item["body"] {
        Value::Null => Bytes::new(),
        Value::String(s) => Bytes::copy_from_slice(s.as_bytes()),
        other => Bytes::from(other.to_string()),
    };
    let pairs = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    trigger_one(app, user, destination, None, pairs, body, peer)
}

//! `POST /v2/batch`: many publishes (or enqueues) in one request.
//!
//! The body must be a JSON array of objects with a `destination`, else nothing is accepted.
//! Each item is then handled like its own publish: one bad item gets an `{"error"}` entry in
//! its place while the others go through.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::AppState;
use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::publish::{
    BatchIncoming, caller_ip, check_size, parse_for, published_json, refuse_cron,
};
use crate::domain::destination::{self, validate_name};
use crate::engine::PublishRequest;
use crate::users::UserId;

struct Item {
    destination: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    queue: Option<String>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Checks the shape of the whole batch before anything is published.
fn parse_items(body: &[u8]) -> ApiResult<Vec<Item>> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let Value::Array(items) = json else {
        return Err(ApiError::bad_request(
            "the batch body must be a JSON array of messages",
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(obj) = item else {
            return Err(ApiError::bad_request(format!(
                "batch item {i} must be an object"
            )));
        };
        let destination = match obj.get("destination") {
            Some(Value::String(d)) if !d.is_empty() => d.clone(),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "batch item {i}: destination is required"
                )));
            }
        };
        let mut headers = Vec::new();
        match obj.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (k, v) in h {
                    match v {
                        Value::Array(values) => {
                            headers.extend(values.iter().map(|x| (k.to_ascii_lowercase(), text(x))))
                        }
                        Value::Null => {}
                        other => headers.push((k.to_ascii_lowercase(), text(other))),
                    }
                }
            }
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "batch item {i}: headers must be an object"
                )));
            }
        }
        let body = match obj.get("body") {
            None | Some(Value::Null) => Bytes::new(),
            Some(Value::String(s)) => Bytes::copy_from_slice(s.as_bytes()),
            Some(other) => Bytes::from(other.to_string()),
        };
        let queue = match obj.get("queue") {
            None | Some(Value::Null) => None,
            Some(Value::String(q)) if !q.is_empty() => Some(q.clone()),
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "batch item {i}: queue must be a queue name"
                )));
            }
        };
        out.push(Item {
            destination,
            headers,
            body,
            queue,
        });
    }
    Ok(out)
}

fn publish_item(app: &AppState, user: UserId, item: Item, peer: SocketAddr) -> ApiResult<Value> {
    check_size(app, &item.body)?;
    let destination = destination::parse(&item.destination, None)?;
    if let Some(q) = &item.queue {
        validate_name(q, "queue name")?;
    }
    let pairs = item
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let parsed = parse_for(app, user, &destination, pairs)?;
    refuse_cron(&parsed)?;
    let request = PublishRequest {
        destination,
        parsed,
        body: item.body,
        caller_ip: caller_ip(peer),
        queue: item.queue,
    };
    let result = app.broker.publish(user, request)?;
    Ok(published_json(&result.published, result.deduplicated))
}

pub async fn batch(
    State(app): State<AppState>,
    User(user): User,
    BatchIncoming(req): BatchIncoming,
) -> ApiResult<Response> {
    let peer = req.peer;
    let items = parse_items(&req.body)?;
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        // The workflow SDKs submit their steps as batches and read the status: 400 means
        // "the run is over", 412 a quota error. A workflow item's error is the batch's.
        let workflow = item
            .headers
            .iter()
            .any(|(k, _)| k == "upstash-workflow-runid");
        match publish_item(&app, user, item, peer) {
            Ok(v) => results.push(v),
            Err(e) if workflow => return Err(e),
            Err(e) => results.push(json!({ "error": e.message })),
        }
    }
    Ok(Json(results).into_response())
}

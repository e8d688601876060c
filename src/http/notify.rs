//! Waits and notifications: `POST /v2/wait/{eventId}` (W4), `POST /v2/notify/{eventId}` and
//! `/v2/notify/{runId}/{eventId}` (W5/W6), `GET /v2/waiters/{eventId}` (W7), and the
//! webhook URLs of `context.createWebhook` (W22, any method, no token).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use super::AppState;
use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::extract::PathParam;
use crate::domain::header_list::HeaderList;
use crate::domain::workflow::wait::{Waiter, config_headers, webhook_event};
use crate::engine::Notified;
use crate::users::{USERS, UserId};

/// A waiter as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WaiterJson<'a> {
    url: &'a str,
    /// Unix seconds.
    deadline: i64,
    headers: &'a HeaderList,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_body: Option<String>,
    timeout_headers: &'a HeaderList,
}

fn waiter_json(w: &Waiter) -> WaiterJson<'_> {
    WaiterJson {
        url: &w.url,
        deadline: w.deadline_ms / 1000,
        headers: &w.headers,
        timeout_url: w.timeout_url.as_deref(),
        timeout_body: w
            .timeout_body
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned()),
        timeout_headers: &w.timeout_headers,
    }
}

fn notified_json(n: &[Notified]) -> Response {
    let list: Vec<_> = n
        .iter()
        .map(|x| {
            json!({
                "waiter": waiter_json(&x.waiter),
                "messageId": x.message_id.map(|m| m.to_string()).unwrap_or_default(),
            })
        })
        .collect();
    Json(list).into_response()
}

pub async fn wait(
    State(app): State<AppState>,
    User(user): User,
    PathParam(event_id): PathParam,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let config = config_headers(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
    let delivered = app.broker.workflow_wait(user, &event_id, config, &body)?;
    let mut answer = json!({});
    if let Some(id) = delivered {
        answer["messageId"] = json!(id.to_string());
    }
    Ok(Json(answer).into_response())
}

pub async fn notify(
    State(app): State<AppState>,
    User(user): User,
    PathParam(event_id): PathParam,
    body: Bytes,
) -> ApiResult<Response> {
    let notified = app.broker.workflow_notify(user, &event_id, body, None)?;
    Ok(notified_json(&notified))
}

pub async fn notify_run(
    State(app): State<AppState>,
    User(user): User,
    Path((run_id, event_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let notified = app
        .broker
        .workflow_notify(user, &event_id, body, Some(&run_id))?;
    Ok(notified_json(&notified))
}

pub async fn waiters(
    State(app): State<AppState>,
    User(user): User,
    PathParam(event_id): PathParam,
) -> ApiResult<Response> {
    let waiters = app.broker.workflow_waiters(user, &event_id);
    let list: Vec<_> = waiters.iter().map(waiter_json).collect();
    Ok(Json(list).into_response())
}

/// A call to a webhook URL: the request itself is the event data. The user is named in the
/// path (the SDK builds the URL from the token's `UserID`), so no token is needed.
pub async fn webhook(
    State(app): State<AppState>,
    Path((user_name, run_id, event_id)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let user = USERS
        .iter()
        .position(|u| u.name == user_name)
        .map(|i| UserId(i as u8))
        .ok_or_else(|| ApiError::not_found(format!("user {user_name} not found")))?;
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let list = HeaderList::from_pairs(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let data = webhook_event(method.as_str(), &list, &body, host, target);
    app.broker
        .workflow_notify(user, &event_id, data.into(), Some(&run_id))?;
    Ok(Json(json!({})).into_response())
}

//! `GET /v2/events` (what the SDKs call, key `events`) and `GET /v2/logs` (the OpenAPI name,
//! key `logs`).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use super::auth::User;
use super::error::ApiResult;
use super::extract::QueryPairs;
use super::views::LogJson;
use crate::domain::filter::Scope;

#[derive(Serialize)]
struct LogPage<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<&'a [LogJson<'a>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logs: Option<&'a [LogJson<'a>]>,
}

fn page(
    app: &AppState,
    user: crate::users::UserId,
    query: &QueryPairs,
    key: &str,
) -> ApiResult<Response> {
    let (page, run_created) = app.broker.logs(user, &query.filter(Scope::Logs)?)?;
    let entries: Vec<LogJson<'_>> = page
        .items
        .iter()
        .zip(run_created)
        .map(|(e, at)| LogJson(e, at))
        .collect();
    let body = LogPage {
        cursor: page.next.map(|c| c.to_string()),
        events: (key == "events").then_some(&entries[..]),
        logs: (key == "logs").then_some(&entries[..]),
    };
    Ok(Json(body).into_response())
}

pub async fn events(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
) -> ApiResult<Response> {
    page(&app, user, &query, "events")
}

pub async fn logs(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
) -> ApiResult<Response> {
    page(&app, user, &query, "logs")
}

//! `GET/DELETE /v2/messages/{id}` and bulk `DELETE /v2/messages`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use super::AppState;
use super::auth::User;
use super::error::ApiResult;
use super::extract::{PathParam, QueryPairs, selection};
use super::views::MessageJson;
use crate::domain::filter::Scope;

pub async fn get(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    let view = app.broker.message(user, &id)?;
    Ok(Json(MessageJson(&view.spec)).into_response())
}

pub async fn cancel(
    State(app): State<AppState>,
    User(user): User,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    app.broker.cancel(user, &id)?;
    Ok(Json(json!({ "cancelled": 1 })).into_response())
}

pub async fn cancel_many(
    State(app): State<AppState>,
    User(user): User,
    query: QueryPairs,
    body: Bytes,
) -> ApiResult<Response> {
    let filter = selection(Scope::Cancel, &query, &body)?;
    let cancelled = app.broker.cancel_many(user, &filter).await?;
    Ok(Json(json!({ "cancelled": cancelled })).into_response())
}

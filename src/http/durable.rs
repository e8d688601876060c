//! Answers of state-changing calls wait for their change to be on disk (`-data-dir`).

use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::engine::Broker;

/// `response` once everything changed so far is durable; if the data directory cannot be
/// written, a 500 instead, so no client believes a change is kept when it may not be.
pub async fn answer(broker: &Broker, response: Response) -> Response {
    match broker.durable().await {
        Ok(()) => response,
        Err(e) => {
            tracing::error!(reason = %e.0, "a change could not be made durable");
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("the change could not be saved: {}", e.0),
            )
            .into_response()
        }
    }
}

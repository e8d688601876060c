//! The API's error type: every non-2xx answer is `{"error": "..."}` with the right status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::options::InvalidInput;
use crate::engine::BrokerError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        let status = match e {
            BrokerError::Invalid(_) => StatusCode::BAD_REQUEST,
            BrokerError::NotFound { .. } => StatusCode::NOT_FOUND,
            BrokerError::Quota { .. } | BrokerError::OverQuota(_) => {
                StatusCode::PRECONDITION_FAILED
            }
        };
        Self::new(status, e.to_string())
    }
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        BrokerError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Rewrites the error answers produced outside our handlers (axum's extractor rejections,
/// such as a body over the size limit: 413 in text/plain) into the API's `{"error"}`
/// shape, keeping the status and headers (a 405 keeps its `Allow`).
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let allow = parts
        .headers
        .get(http::header::ALLOW)
        .and_then(|v| v.to_str().ok());
    let message = if let (StatusCode::METHOD_NOT_ALLOWED, Some(allow)) = (status, allow) {
        format!("method not allowed on this route; it takes {allow}")
    } else if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("request body too large: {text}")
    } else if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase()
    } else {
        text
    };
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let json = Json(json!({ "error": message })).into_response();
    let (json_parts, json_body) = json.into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, json_body)
}

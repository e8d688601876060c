//! Who is calling: `Authorization: Bearer <token>` or `?qstash_token=<token>`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::users::{UserId, authenticate};

/// The authenticated user of a request.
pub struct User(pub UserId);

fn query_token(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "qstash_token")
        .map(|(_, v)| v.into_owned())
}

fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| {
            ApiError::unauthorized(
                "invalid Authorization header: expected \"Bearer <QSTASH_TOKEN>\"",
            )
        })?
        .trim();
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Err(ApiError::unauthorized(
            "invalid Authorization header: expected \"Bearer <QSTASH_TOKEN>\"",
        )),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // The header wins over the query parameter when both are present.
        let user = match bearer(parts)? {
            Some(t) => authenticate(t),
            None => {
                let token = parts.uri.query().and_then(query_token).ok_or_else(|| {
                    ApiError::unauthorized("missing authorization: send \"Authorization: Bearer <QSTASH_TOKEN>\" or ?qstash_token=")
                })?;
                authenticate(&token)
            }
        };
        user.map(User).ok_or_else(|| {
            ApiError::unauthorized(
                "unauthorized: the token does not belong to any user of this server",
            )
        })
    }
}

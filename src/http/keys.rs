//! Signing keys: `GET /v2/keys` (also the JS SDK's dev-server probe) and rotation.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::auth::User;
use crate::store::SigningKeys;

fn keys_json(k: &SigningKeys) -> Response {
    Json(json!({ "current": &*k.current, "next": &*k.next })).into_response()
}

pub async fn get(State(app): State<AppState>, User(user): User) -> Response {
    keys_json(&app.broker.signing_keys(user))
}

pub async fn rotate(State(app): State<AppState>, User(user): User) -> Response {
    keys_json(&app.broker.rotate_signing_keys(user))
}

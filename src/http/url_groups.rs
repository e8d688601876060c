//! URL groups ("topics"): endpoints CRUD and default headers.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::auth::User;
use super::error::ApiResult;
use super::extract::{PathParam, json_body};
use super::{AppState, done};
use crate::domain::url_group::UrlGroup;

#[derive(Deserialize)]
struct EndpointIn {
    url: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct EndpointsIn {
    endpoints: Vec<EndpointIn>,
}

#[derive(Serialize)]
struct EndpointOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    url: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupOut<'a> {
    name: &'a str,
    created_at: i64,
    updated_at: i64,
    endpoints: Vec<EndpointOut<'a>>,
}

fn group_out(g: &UrlGroup) -> GroupOut<'_> {
    GroupOut {
        name: &g.name,
        created_at: g.created_at,
        updated_at: g.updated_at,
        endpoints: g
            .endpoints
            .iter()
            .map(|e| EndpointOut {
                name: e.name.as_deref(),
                url: &e.url,
            })
            .collect(),
    }
}

pub async fn add_endpoints(
    State(app): State<AppState>,
    User(user): User,
    PathParam(name): PathParam,
    body: Bytes,
) -> ApiResult<Response> {
    let input: EndpointsIn = json_body(&body)?;
    let mut endpoints = Vec::with_capacity(input.endpoints.len());
    for (i, e) in input.endpoints.into_iter().enumerate() {
        let url = e.url.filter(|u| !u.is_empty()).ok_or_else(|| {
            super::ApiError::bad_request(format!("endpoints[{i}].url is required"))
        })?;
        endpoints.push((e.name, url));
    }
    app.broker.add_endpoints(user, &name, endpoints)?;
    Ok(done())
}

pub async fn remove_endpoints(
    State(app): State<AppState>,
    User(user): User,
    PathParam(name): PathParam,
    body: Bytes,
) -> ApiResult<Response> {
    let input: EndpointsIn = json_body(&body)?;
    let selectors = input
        .endpoints
        .into_iter()
        .map(|e| (e.url, e.name))
        .collect();
    app.broker.remove_endpoints(user, &name, selectors)?;
    Ok(done())
}

pub async fn list(State(app): State<AppState>, User(user): User) -> Response {
    let groups = app.broker.url_groups(user);
    Json(groups.iter().map(group_out).collect::<Vec<_>>()).into_response()
}

pub async fn get(
    State(app): State<AppState>,
    User(user): User,
    PathParam(name): PathParam,
) -> ApiResult<Response> {
    let group = app.broker.url_group(user, &name)?;
    Ok(Json(group_out(&group)).into_response())
}

pub async fn delete(
    State(app): State<AppState>,
    User(user): User,
    PathParam(name): PathParam,
) -> Response {
    app.broker.delete_url_group(user, &name);
    done()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct PatchIn {
    #[serde(default)]
    headers: std::collections::BTreeMap<String, OneOrMany>,
}

/// `PATCH /v2/topics/{name}` `{"headers": {"Upstash-Retries": "3", "Upstash-Header-Forward": ["true"]}}`.
pub async fn patch(
    State(app): State<AppState>,
    User(user): User,
    PathParam(name): PathParam,
    body: Bytes,
) -> ApiResult<Response> {
    let input: PatchIn = json_body(&body)?;
    let mut headers = Vec::new();
    for (k, v) in input.headers {
        match v {
            OneOrMany::One(s) => headers.push((k, s)),
            OneOrMany::Many(all) => headers.extend(all.into_iter().map(|s| (k.clone(), s))),
        }
    }
    app.broker.set_url_group_headers(user, &name, headers)?;
    Ok(done())
}

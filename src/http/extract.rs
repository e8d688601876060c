//! Extractors: path parameters, query strings and JSON bodies, all rejecting in the API's
//! `{"error"}` shape.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use bytes::Bytes;

use super::error::ApiError;
use crate::domain::filter::{Filter, Scope};

/// All query parameters, decoded, in order, repeated names kept.
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn filter(&self, scope: Scope) -> Result<Filter, ApiError> {
        Ok(Filter::from_pairs(scope, self.iter())?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let pairs = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self(pairs))
    }
}

/// The selection of a bulk operation: query parameters, plus the keys of a JSON object body
/// (Python sends `{"messageIds": [...]}` / `{"dlqIds": [...]}` on DELETE).
pub fn selection(scope: Scope, query: &QueryPairs, body: &Bytes) -> Result<Filter, ApiError> {
    let mut filter = query.filter(scope)?;
    if body.iter().any(|b| !b.is_ascii_whitespace()) {
        let json: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        let from_body = Filter::from_json(scope, &json)?;
        merge(&mut filter, from_body);
    }
    Ok(filter)
}

fn merge(into: &mut Filter, from: Filter) {
    let Filter {
        message_ids,
        urls,
        topic_names,
        schedule_ids,
        queue_names,
        labels,
        flow_control_keys,
        caller_ips,
        hosts,
        paths,
        dlq_ids,
        workflow_run_ids,
        workflow_urls,
        response_statuses,
        state,
        from_date,
        to_date,
        count,
        cursor,
    } = from;
    into.message_ids.extend(message_ids);
    into.urls.extend(urls);
    into.topic_names.extend(topic_names);
    into.schedule_ids.extend(schedule_ids);
    into.queue_names.extend(queue_names);
    into.labels.extend(labels);
    into.flow_control_keys.extend(flow_control_keys);
    into.caller_ips.extend(caller_ips);
    into.hosts.extend(hosts);
    into.paths.extend(paths);
    into.dlq_ids.extend(dlq_ids);
    into.workflow_run_ids.extend(workflow_run_ids);
    into.workflow_urls.extend(workflow_urls);
    into.response_statuses.extend(response_statuses);
    into.state = into.state.or(state);
    into.from_date = into.from_date.or(from_date);
    into.to_date = into.to_date.or(to_date);
    into.count = into.count.or(count);
    into.cursor = into.cursor.take().or(cursor);
}

/// Parses a JSON request body; the error says what is wrong and where.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// A single path parameter (`{id}`, `{name}`, `{key}`, `{*rest}`); a segment that does not
/// decode to text names nothing that exists.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError::not_found(format!(
                "no such resource: {}",
                e.body_text()
            ))),
        }
    }
}

//! `POST /v2/publish/{destination}`.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::AppState;
use super::auth::User;
use super::error::{ApiError, ApiResult};
use crate::domain::destination::{self, Destination, config_query_params};
use crate::domain::options::{self, Pair, Parsed};
use crate::engine::{PublishRequest, PublishResult};
use crate::store::Published;
use crate::users::UserId;

/// A publish-like request taken apart without copying its headers: the peer address, the
/// raw target, the headers, and the body copied out of hyper's read buffer (so a stored
/// message does not pin that buffer).
pub struct Incoming {
    pub peer: SocketAddr,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

fn too_large(app: &AppState) -> ApiError {
    let quota = &app.broker.config().quota;
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "message body too large: the {} quota allows at most {} per message",
            quota.kind,
            quota.max_message_size_text()
        ),
    )
}

/// How much of a body over the size limit is still read (and dropped) so its sender gets the
/// 413: past it the connection is closed on the sender.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// A batch carries many messages: its body may be this many times a message's limit (each
/// item is still held to the limit).
pub const BATCH_SIZE_FACTOR: usize = 64;

impl Incoming {
    async fn read(req: Request, app: &AppState, limit: usize) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        // A body over the limit is still read, and dropped, up to DRAIN_LIMIT: the client is
        // still sending it, and closing on it would give it a broken pipe, not the 413.
        if declared.is_some_and(|n| n > limit.max(DRAIN_LIMIT)) {
            return Err(too_large(app));
        }
        let mut body = body;
        let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::bad_request(format!("could not read the request body: {e}"))
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen += data.len();
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > limit.max(DRAIN_LIMIT) {
                return Err(too_large(app));
            }
        }
        if seen > limit {
            return Err(too_large(app));
        }
        let body = buf.freeze();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        Ok(Self {
            peer,
            uri: parts.uri,
            headers: parts.headers,
            body,
        })
    }
}

impl FromRequest<AppState> for Incoming {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, ApiError> {
        let limit = app.broker.config().quota.max_message_size;
        Self::read(req, app, limit).await
    }
}

/// The body of `POST /v2/batch`, allowed [`BATCH_SIZE_FACTOR`] times a message's size.
pub struct BatchIncoming(pub Incoming);

impl FromRequest<AppState> for BatchIncoming {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, ApiError> {
        let limit = app.broker.config().quota.max_message_size * BATCH_SIZE_FACTOR;
        Incoming::read(req, app, limit).await.map(Self)
    }
}

/// 413 for a message body over the quota's size.
pub fn check_size(app: &AppState, body: &[u8]) -> ApiResult<()> {
    if body.len() > app.broker.config().quota.max_message_size {
        return Err(too_large(app));
    }
    Ok(())
}

/// The request's headers followed by its `upstash-*` query parameters, as parser input.
pub fn config_pairs<'a>(
    headers: &'a HeaderMap,
    query_params: &'a [(String, String)],
) -> Vec<Pair<'a>> {
    let mut pairs: Vec<Pair<'a>> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    append_lower(&mut pairs, query_params);
    pairs
}

/// Appends lower-precedence settings (query twins, URL-group defaults): a name already given
/// by a higher source is skipped entirely, so a real `Upstash-Forward-X` replaces the query's
/// or the group's instead of adding a second value.
fn append_lower<'a>(pairs: &mut Vec<Pair<'a>>, lower: &'a [(String, String)]) {
    let given = pairs.len();
    for (name, value) in lower {
        if !pairs[..given]
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            pairs.push((name.as_str(), value.as_bytes()));
        }
    }
}

pub fn caller_ip(peer: SocketAddr) -> IpAddr {
    peer.ip().to_canonical()
}

/// Builds a publish from the raw destination text that follows the route prefix.
pub fn publish_request(
    app: &AppState,
    user: UserId,
    raw_destination: &str,
    req: &Incoming,
    queue: Option<String>,
) -> ApiResult<PublishRequest> {
    let query = req.uri.query();
    let destination = destination::parse(raw_destination, query)?;
    let query_params = config_query_params(query);
    let pairs = config_pairs(&req.headers, &query_params);
    let parsed = parse_for(app, user, &destination, pairs)?;
    refuse_cron(&parsed)?;
    Ok(PublishRequest {
        destination,
        parsed,
        body: req.body.clone(),
        caller_ip: caller_ip(req.peer),
        queue,
    })
}

/// Parses the configuration of a publish to `destination`; a URL group's default headers
/// come after the request's own, so the request wins.
pub fn parse_for(
    app: &AppState,
    user: UserId,
    destination: &Destination,
    pairs: Vec<Pair<'_>>,
) -> ApiResult<Parsed> {
    let defaults = match destination {
        Destination::Group(name) => app.broker.url_group_defaults(user, name),
        _ => Vec::new(),
    };
    // A later message of a workflow run inherits the run's configuration.
    let inherited = app.broker.workflow_defaults(user, &pairs);
    let mut pairs = pairs;
    append_lower(&mut pairs, &defaults);
    append_lower(&mut pairs, inherited.as_ref().map_or(&[], |i| i.pairs()));
    let now = app.broker.clock().now_ms();
    Ok(options::parse(&pairs, &app.broker.config().quota, now)?)
}

/// `Upstash-Cron` belongs on `/v2/schedules`; silently publishing once would surprise.
pub fn refuse_cron(parsed: &Parsed) -> ApiResult<()> {
    if parsed.cron.is_some() {
        return Err(ApiError::bad_request(
            "Upstash-Cron is only accepted by POST /v2/schedules/<destination>: create a schedule there",
        ));
    }
    Ok(())
}

pub fn published_json(published: &Published, deduplicated: bool) -> Value {
    let mark = |mut v: Value| {
        if deduplicated {
            v["deduplicated"] = Value::Bool(true);
        }
        v
    };
    match published {
        Published::Message(id) => mark(json!({ "messageId": id })),
        Published::Fanout(items) => Value::Array(
            items
                .iter()
                .map(|(id, url)| mark(json!({ "messageId": id, "url": &**url })))
                .collect(),
        ),
        Published::Schedule(id) => mark(json!({ "scheduleId": &**id })),
    }
}

pub fn published_response(result: PublishResult) -> Response {
    if let (Published::Message(id), false) = (&result.published, result.deduplicated) {
        // The hot path: skip building a JSON tree for one field.
        let id = id.text();
        let mut body = String::with_capacity(48);
        body.push_str("{\"messageId\":\"");
        body.push_str(id.as_str());
        body.push_str("\"}");
        return ([(http::header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let status = if result.deduplicated {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(published_json(&result.published, result.deduplicated)),
    )
        .into_response()
}

pub async fn publish(
    State(app): State<AppState>,
    User(user): User,
    req: Incoming,
) -> ApiResult<Response> {
    publish_incoming(&app, user, req)
}

/// `POST /v2/publish/…` straight from the request, for [`super::Api`]'s fast path.
pub async fn publish_direct(app: AppState, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let user = match User::from_request_parts(&mut parts, &app).await {
        Ok(User(user)) => user,
        Err(e) => return e.into_response(),
    };
    let incoming = match Incoming::from_request(Request::from_parts(parts, body), &app).await {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    publish_incoming(&app, user, incoming).unwrap_or_else(IntoResponse::into_response)
}

fn publish_incoming(app: &AppState, user: UserId, req: Incoming) -> ApiResult<Response> {
    let raw = req
        .uri
        .path()
        .strip_prefix("/v2/publish")
        .unwrap_or("")
        .trim_start_matches('/');
    let request = publish_request(app, user, raw, &req, None)?;
    Ok(published_response(app.broker.publish(user, request)?))
}

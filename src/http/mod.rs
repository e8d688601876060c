//! The `/v2` REST API: routing, extractors, errors, JSON views. Handlers stay thin: they
//! extract, call the [`Broker`], and shape the answer.

mod auth;
mod batch;
mod dev;
mod dlq;
mod error;
mod extract;
mod flow_control;
mod keys;
mod logs;
mod messages;
mod publish;
mod queues;
mod schedules;
mod url_groups;
mod views;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::routing::{delete, get, post};

pub use error::ApiError;

use crate::engine::Broker;

#[derive(Clone)]
pub struct AppState {
    pub broker: Broker,
}

/// The answer of actions whose SDK calls ignore the body: `{}` (never empty, so a client that
/// parses JSON anyway does not fail).
pub(crate) fn done() -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::Json(serde_json::json!({})).into_response()
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such route: {}", uri.path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

/// The whole API as one service. Publishes, the hot path, go straight to their handler: the
/// router would otherwise percent-decode and store the `{*destination}` path parameter the
/// handler never reads (it parses the raw target itself), about 7% of a publish's CPU.
#[derive(Clone)]
pub struct Api {
    router: Router,
    state: AppState,
}

impl Api {
    pub fn new(broker: Broker) -> Self {
        Self {
            state: AppState {
                broker: broker.clone(),
            },
            router: router(broker),
        }
    }
}

impl tower::Service<axum::extract::Request> for Api {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::extract::Request) -> Self::Future {
        if req.method() == axum::http::Method::POST && req.uri().path().starts_with("/v2/publish/")
        {
            let state = self.state.clone();
            return Box::pin(async move { Ok(publish::publish_direct(state, req).await) });
        }
        let router = self.router.clone();
        Box::pin(tower::ServiceExt::oneshot(router, req))
    }
}

pub fn router(broker: Broker) -> Router {
    let config = broker.config().clone();
    // Room for the largest allowed message; publish-like routes check the size themselves
    // (`publish::Incoming`) to answer 413 in the API's error shape.
    let body_limit = DefaultBodyLimit::max(config.quota.max_message_size);
    let mut app = Router::new()
        .route("/v2/publish", post(publish::publish))
        .route("/v2/publish/", post(publish::publish))
        .route("/v2/publish/{*destination}", post(publish::publish))
        .route("/v2/enqueue/{queue}/{*destination}", post(queues::enqueue))
        .route("/v2/batch", post(batch::batch))
        .route("/v2/queues", get(queues::list).post(queues::upsert))
        .route("/v2/queues/{name}", get(queues::get).delete(queues::delete))
        .route("/v2/queues/{name}/pause", post(queues::pause))
        .route("/v2/queues/{name}/resume", post(queues::resume))
        .route("/v2/schedules", get(schedules::list))
        // One catch-all: a destination URL may itself end in "/pause", so the handlers tell
        // `{id}`, `{id}/pause|resume` and `{destination}` apart.
        .route(
            "/v2/schedules/{*rest}",
            get(schedules::get)
                .delete(schedules::delete)
                .post(schedules::create)
                .patch(schedules::toggle),
        )
        .route("/v2/flowControl", get(flow_control::list))
        .route("/v2/flowControl/{key}", get(flow_control::get))
        .route("/v2/flowControl/{key}/pause", post(flow_control::pause))
        .route("/v2/flowControl/{key}/resume", post(flow_control::resume))
        .route("/v2/flowControl/{key}/pin", post(flow_control::pin))
        .route("/v2/flowControl/{key}/unpin", post(flow_control::unpin))
        .route(
            "/v2/flowControl/{key}/resetRate",
            post(flow_control::reset_rate),
        )
        .route(
            "/v2/flowControl/{key}/reset",
            post(flow_control::reset_rate),
        )
        .route(
            "/v2/globalParallelism",
            get(flow_control::global_parallelism),
        )
        .route("/v2/topics", get(url_groups::list))
        .route(
            "/v2/topics/{name}",
            get(url_groups::get)
                .delete(url_groups::delete)
                .patch(url_groups::patch),
        )
        .route(
            "/v2/topics/{name}/endpoints",
            post(url_groups::add_endpoints).delete(url_groups::remove_endpoints),
        )
        .route("/v2/messages", delete(messages::cancel_many))
        .route(
            "/v2/messages/{id}",
            get(messages::get).delete(messages::cancel),
        )
        .route("/v2/events", get(logs::events))
        .route("/v2/logs", get(logs::logs))
        .route("/v2/dlq", get(dlq::list).delete(dlq::delete_many))
        .route("/v2/dlq/retry", post(dlq::retry_many))
        .route("/v2/dlq/retry/{id}", post(dlq::retry))
        .route("/v2/dlq/{id}", get(dlq::get).delete(dlq::delete))
        .route("/v2/keys", get(keys::get))
        .route("/v2/keys/rotate", post(keys::rotate));
    if config.clock_control {
        app = app
            .route("/__qstash/clock", get(dev::get))
            .route("/__qstash/clock/advance", post(dev::advance))
            .route("/__qstash/clock/pause", post(dev::pause))
            .route("/__qstash/clock/resume", post(dev::resume));
    }
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(body_limit)
        .with_state(AppState { broker })
}

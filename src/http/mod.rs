//! The `/v2` REST API: routing, extractors, errors, JSON views. Handlers stay thin: they
//! extract, call the [`Broker`], and shape the answer.

mod auth;
mod batch;
pub mod connections;
mod console;
mod controls;
mod dev;
mod dlq;
mod durable;
mod error;
mod extract;
mod flow_control;
mod health;
mod idle_body;
mod keys;
mod logs;
mod messages;
mod metrics;
mod notify;
mod publish;
mod queues;
mod requests;
mod schedules;
mod url_groups;
mod views;
mod workflow_logs;
mod workflows;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::routing::{any, delete, get, post};

pub use error::ApiError;

use crate::engine::Broker;
use requests::{Ops, Seen};

#[derive(Clone)]
pub struct AppState {
    pub broker: Broker,
    pub ops: Arc<Ops>,
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
        let state = AppState {
            ops: Ops::new(&broker),
            broker,
        };
        Self {
            router: router(state.clone()),
            state,
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
        let seen = Seen::new(&req);
        let ops = self.state.ops.clone();
        // With `-data-dir`, every answer waits until what it changed, and what it read, is on
        // disk: nothing the API shows can be taken back by a crash (a reader could otherwise
        // see a step whose own caller has not been answered yet).
        let broker = self.state.broker.clone();
        if req.method() == axum::http::Method::POST && req.uri().path().starts_with("/v2/publish/")
        {
            let state = self.state.clone();
            return Box::pin(async move {
                let response = publish::publish_direct(state, req).await;
                let response = durable::answer(&broker, response).await;
                seen.publish_done(&ops, &response);
                Ok(response)
            });
        }
        let router = self.router.clone();
        Box::pin(async move {
            let response = tower::ServiceExt::oneshot(router, req).await?;
            let response = durable::answer(&broker, response).await;
            seen.done(&ops, &response);
            // Outside the router, so a 405 already carries the `Allow` header it adds.
            Ok(error::json_errors(response).await)
        })
    }
}

pub fn router(state: AppState) -> Router {
    let config = state.broker.config().clone();
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
        .route("/v2/keys/rotate", post(keys::rotate))
        .route("/v2/workflows/runs", delete(workflows::cancel_many))
        .route("/v2/workflows/events", get(workflow_logs::logs))
        .route("/v2/workflows/logs", get(workflow_logs::logs))
        .route(
            "/v2/workflows/dlq",
            get(workflow_logs::dlq_list).delete(workflow_logs::dlq_delete_many),
        )
        .route(
            "/v2/workflows/dlq/{id}",
            get(workflow_logs::dlq_get).delete(workflow_logs::dlq_delete),
        )
        .route("/v2/workflows/dlq/resume", post(workflow_logs::resume_many))
        .route(
            "/v2/workflows/dlq/restart",
            post(workflow_logs::restart_many),
        )
        .route("/v2/workflows/dlq/resume/{id}", post(workflow_logs::resume))
        .route(
            "/v2/workflows/dlq/restart/{id}",
            post(workflow_logs::restart),
        )
        .route(
            "/v2/workflows/dlq/callback/{id}",
            post(workflow_logs::retry_failure).delete(workflow_logs::cancel_failure),
        )
        .route(
            "/v2/workflows/runs/{id}",
            get(workflows::steps).delete(workflows::end),
        )
        .route("/v2/trigger/{*url}", post(workflows::trigger))
        .route("/v2/batch/trigger", post(workflows::trigger_batch))
        .route("/v2/wait/{event}", post(notify::wait))
        .route("/v2/notify/{event}", post(notify::notify))
        .route("/v2/notify/{run}/{event}", post(notify::notify_run))
        .route("/v2/waiters/{event}", get(notify::waiters))
        .route(
            "/v2/workflows/hooks/{user}/{run}/{event}",
            any(notify::webhook),
        );
    app = app
        .route("/health", get(health::health))
        .route("/metrics", get(metrics::metrics))
        .route("/__qstash/reset", post(controls::reset))
        .route("/__qstash/idle", get(controls::idle).post(controls::idle))
        .route("/__qstash/overview", get(controls::overview))
        .route("/__qstash/schedules/{id}/run", post(controls::run_schedule))
        .route("/__qstash/schedules/{id}/upcoming", get(controls::upcoming))
        .route(
            "/__qstash/messages/{id}/deliver",
            post(controls::deliver_message),
        )
        .merge(console::routes());
    if config.clock_control {
        app = app
            .route("/__qstash/clock", get(dev::get))
            .route("/__qstash/clock/advance", post(dev::advance))
            .route("/__qstash/clock/pause", post(dev::pause))
            .route("/__qstash/clock/resume", post(dev::resume));
    } else {
        app = app
            .route("/__qstash/clock", any(dev::disabled))
            .route("/__qstash/clock/{*rest}", any(dev::disabled));
    }
    // axum answers a wrong method with 405 and an `Allow` header; `Api` gives it (and every
    // other rejection) the API's body shape with `error::json_errors`.
    app.fallback(not_found)
        .layer(body_limit)
        .layer(axum::middleware::from_fn(requests::tag_route))
        .with_state(state)
}

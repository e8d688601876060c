//! The built-in web console at `/` and `/console`: static HTML, CSS and JavaScript modules
//! embedded in the binary (no build step, no CDN), which read and act through the public
//! `/v2` API and the `/__qstash` controls with the chosen user's token. The only
//! console-specific data route is `config.json` (the four users and whether clock control is
//! on); live updates come from [`stream`].

mod stream;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::extract::PathParam;
use crate::users::USERS;

/// Every embedded file: path under `/console/`, content type, contents.
const ASSETS: &[(&str, &str, &str)] = &[
    ("assets/style.css", CSS, include_str!("assets/style.css")),
    ("assets/app.js", JS, include_str!("assets/app.js")),
    ("assets/api.js", JS, include_str!("assets/api.js")),
    ("assets/ui.js", JS, include_str!("assets/ui.js")),
    (
        "assets/favicon.svg",
        SVG,
        include_str!("assets/favicon.svg"),
    ),
    (
        "assets/pages/overview.js",
        JS,
        include_str!("assets/pages/overview.js"),
    ),
    (
        "assets/pages/messages.js",
        JS,
        include_str!("assets/pages/messages.js"),
    ),
    (
        "assets/pages/message.js",
        JS,
        include_str!("assets/pages/message.js"),
    ),
    (
        "assets/pages/dlq.js",
        JS,
        include_str!("assets/pages/dlq.js"),
    ),
    (
        "assets/pages/schedules.js",
        JS,
        include_str!("assets/pages/schedules.js"),
    ),
    (
        "assets/pages/queues.js",
        JS,
        include_str!("assets/pages/queues.js"),
    ),
    (
        "assets/pages/url-groups.js",
        JS,
        include_str!("assets/pages/url-groups.js"),
    ),
    (
        "assets/pages/flow-control.js",
        JS,
        include_str!("assets/pages/flow-control.js"),
    ),
    (
        "assets/pages/workflows.js",
        JS,
        include_str!("assets/pages/workflows.js"),
    ),
    (
        "assets/pages/publish.js",
        JS,
        include_str!("assets/pages/publish.js"),
    ),
    (
        "assets/pages/keys.js",
        JS,
        include_str!("assets/pages/keys.js"),
    ),
    (
        "assets/pages/clock.js",
        JS,
        include_str!("assets/pages/clock.js"),
    ),
];

const INDEX: &str = include_str!("assets/index.html");
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The console's routes: the page, its assets, its configuration and its event stream.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/config.json", get(config))
        .route("/console/assets/{*path}", get(asset))
        .route("/__qstash/console/stream", get(stream::stream))
}

/// A static response with the console's security headers: everything comes from this
/// origin, nothing inline, and no Referer leaks the token of the event stream's URL.
fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

async fn asset(PathParam(path): PathParam) -> Result<Response, ApiError> {
    let wanted = format!("assets/{path}");
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == wanted)
        .map(|(_, ct, body)| file(ct, body))
        .ok_or_else(|| ApiError::not_found(format!("no such console file: /console/{wanted}")))
}

/// The users to choose from (their tokens are public constants, printed in the banner) and
/// what this server offers.
async fn config(axum::extract::State(app): axum::extract::State<AppState>) -> Response {
    let users: Vec<_> = USERS
        .iter()
        .map(|u| json!({ "name": u.name, "token": u.token }))
        .collect();
    let config = app.broker.config();
    let mut res = axum::Json(json!({
        "users": users,
        "clockControl": config.clock_control,
        "quota": config.quota.kind.to_string(),
        "maxRetries": config.quota.max_retries,
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_pages_import_is_embedded() {
        // A page importing a file that is not in ASSETS would fail only in the browser.
        let sources = ASSETS.iter().map(|(_, _, s)| *s).chain([INDEX]);
        for src in sources {
            for line in src
                .lines()
                .filter(|l| l.contains("from \"") || l.contains("src=\""))
            {
                let target = line
                    .split('"')
                    .nth(1)
                    .unwrap_or_default()
                    .trim_start_matches("./")
                    .trim_start_matches("../");
                if !target.ends_with(".js") {
                    continue;
                }
                let name = target.rsplit('/').next().unwrap_or_default();
                assert!(
                    ASSETS
                        .iter()
                        .any(|(p, _, _)| p.ends_with(&format!("/{name}"))),
                    "{target} is imported but not embedded"
                );
            }
        }
    }
}

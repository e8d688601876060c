//! One HTTP attempt: build the signed request, send it with the message's deadline, read the
//! answer (bounded), and describe what happened. Never touches broker state.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue};

use crate::domain::header_list::HeaderList;
use crate::domain::message::{Method, Response};
use crate::engine::core::{Attempt, Dispatch};
use crate::signing;

/// Response bodies are stored for logs, the DLQ and callbacks up to this size.
const MAX_STORED_RESPONSE: usize = 1024 * 1024;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        // Deliveries go to local endpoints; an HTTP(S)_PROXY meant for the internet must not
        // intercept them.
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .pool_idle_timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::limited(10))
        .build()
        .unwrap_or_default()
}

fn method(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

static USER_AGENT: HeaderValue = HeaderValue::from_static("Upstash-QStash");

fn text_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The headers of a delivery request, in the order the destination sees them.
pub fn request_headers(d: &Dispatch, now_s: i64) -> http::HeaderMap {
    let spec = &d.spec;
    let origin = spec.origin();
    let mut h = http::HeaderMap::with_capacity(8 + spec.options.headers.iter().count());
    append_forwarded(&mut h, &spec.options.headers);
    h.insert(http::header::USER_AGENT, USER_AGENT.clone());
    h.insert("upstash-message-id", text_value(&spec.id.to_string()));
    h.insert("upstash-retried", HeaderValue::from(d.retried));
    h.insert("upstash-caller-ip", text_value(&spec.caller_ip.to_string()));
    if let Some(s) = &origin.schedule_id {
        h.insert("upstash-schedule-id", text_value(s));
    }
    if let Some(t) = &origin.topic_name {
        h.insert("upstash-topic-name", text_value(t));
    }
    let jwt = signing::sign(&d.signing_key, &spec.url, &spec.body, now_s);
    h.insert("upstash-signature", text_value(&jwt));
    h
}

fn append_forwarded(h: &mut http::HeaderMap, list: &HeaderList) {
    for (name, value) in list.iter() {
        // Forwarded names came from valid request headers; query-parameter forms may not be.
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            h.append(n, v);
        }
    }
}

/// Makes the attempt described by `d`.
pub async fn send(client: &reqwest::Client, d: &Dispatch) -> Attempt {
    let headers = request_headers(d, signing::system_now_s());
    let request = client
        .request(method(d.spec.options.method), &*d.spec.url)
        .headers(headers)
        .timeout(Duration::from_millis(d.timeout_ms))
        .body(d.spec.body.clone());
    let mut resp = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Attempt {
                response: None,
                error: Some(describe(&e, d.timeout_ms)),
            };
        }
    };
    let status = resp.status().as_u16();
    let headers = HeaderList::from_pairs(
        resp.headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
    );
    let mut body = BytesMut::new();
    let mut error = None;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_STORED_RESPONSE.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(e) => {
                // The status line arrived; a broken body still counts as that answer.
                error = Some(describe(&e, d.timeout_ms));
                break;
            }
        }
    }
    let body: Bytes = body.freeze();
    let response = Response {
        status,
        headers,
        body,
    };
    if error.is_some() && (200..300).contains(&status) {
        // A 2xx whose body was cut off is not a confirmed delivery.
        return Attempt {
            response: None,
            error,
        };
    }
    Attempt {
        response: Some(response),
        error: None,
    }
}

fn describe(e: &reqwest::Error, timeout_ms: u64) -> String {
    if e.is_timeout() {
        return format!("timeout: no response within {} ms", timeout_ms);
    }
    let mut text = if e.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

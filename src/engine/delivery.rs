//! One HTTP attempt: build the signed request, send it with the message's deadline, read the
//! answer (bounded), and describe what happened. Never touches broker state.
//!
//! Built on hyper's pooled client rather than a higher-level one: per delivery it avoids a
//! URL re-parse (with IDNA processing) and a copy of the header map, which showed in profiles
//! of the delivery path.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Request, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::domain::header_list::HeaderList;
use crate::domain::loopback;
use crate::domain::message::{Method, Response};
use crate::domain::options::is_framing_header;
use crate::engine::body::DeliveryBody;
use crate::engine::core::{Attempt, Dispatch};
use crate::signing;

/// Response bodies are stored for logs, the DLQ and callbacks up to this size.
const MAX_STORED_RESPONSE: usize = 1024 * 1024;
/// Redirects followed before the last 3xx counts as the answer (as Go's client does).
const MAX_REDIRECTS: usize = 10;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, DeliveryBody>;

pub fn client(insecure_tls: bool) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(super::tls::client_config(insecure_tls))
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build(connector)
}

fn method(m: Method) -> http::Method {
    match m {
        Method::Get => http::Method::GET,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
        Method::Patch => http::Method::PATCH,
        Method::Delete => http::Method::DELETE,
    }
}

static USER_AGENT: HeaderValue = HeaderValue::from_static("Upstash-QStash");
static MESSAGE_ID: HeaderName = HeaderName::from_static("upstash-message-id");
static RETRIED: HeaderName = HeaderName::from_static("upstash-retried");
static CALLER_IP: HeaderName = HeaderName::from_static("upstash-caller-ip");
static SCHEDULE_ID: HeaderName = HeaderName::from_static("upstash-schedule-id");
static TOPIC_NAME: HeaderName = HeaderName::from_static("upstash-topic-name");
static SIGNATURE: HeaderName = HeaderName::from_static("upstash-signature");

fn text_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The headers of a delivery request, in the order the destination sees them.
pub fn request_headers(d: &Dispatch, now_s: i64) -> http::HeaderMap {
    let spec = &d.spec;
    let origin = spec.origin();
    let mut h = http::HeaderMap::with_capacity(16);
    append_forwarded(&mut h, &spec.options.headers);
    h.insert(http::header::USER_AGENT, USER_AGENT.clone());
    h.insert(MESSAGE_ID.clone(), text_value(spec.id.text().as_str()));
    h.insert(RETRIED.clone(), HeaderValue::from(d.retried));
    h.insert(CALLER_IP.clone(), text_value(&spec.caller_ip.to_string()));
    if let Some(s) = &origin.schedule_id {
        h.insert(SCHEDULE_ID.clone(), text_value(s));
    }
    if let Some(t) = &origin.topic_name {
        h.insert(TOPIC_NAME.clone(), text_value(t));
    }
    let workflow = d.workflow.as_deref();
    if let Some(w) = workflow {
        // The run's headers replace any forwarded copies (the SDKs forward what they got).
        for (name, value) in &w.headers {
            h.insert(HeaderName::from_static(name), text_value(value));
        }
    }
    let jwt = match workflow.and_then(|w| w.body.as_ref()) {
        Some(b) => d.signer.sign_hashed(&spec.url, &b.sha256, now_s),
        None => d.signer.sign(&spec.url, &spec.body, now_s),
    };
    // A JWT is base64url and dots: always a valid header value.
    h.insert(
        SIGNATURE.clone(),
        HeaderValue::from_maybe_shared(bytes::Bytes::from(jwt))
            .unwrap_or_else(|_| HeaderValue::from_static("")),
    );
    h
}

fn append_forwarded(h: &mut http::HeaderMap, list: &HeaderList) {
    for (name, value) in list.iter() {
        // Parsing already drops these; the wire is where it must hold, whatever stored them.
        if is_framing_header(name) {
            continue;
        }
        // Forwarded names came from valid request headers; query-parameter forms may not be.
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            h.append(n, v);
        }
    }
}

/// The destination as a request URI. Batch and JSON-given URLs may hold characters a request
/// line cannot carry (spaces, non-ASCII): those are percent-encoded the way a browser would.
fn parse_uri(url: &str) -> Result<Uri, String> {
    url.parse::<Uri>().or_else(|_| {
        let normalized =
            url::Url::parse(url).map_err(|e| format!("invalid destination URL: {e}"))?;
        normalized
            .as_str()
            .parse::<Uri>()
            .map_err(|e| format!("invalid destination URL: {e}"))
    })
}

/// Makes the attempt described by `d`; `rewrite_localhost` is `-rewrite-localhost`'s host.
pub async fn send(client: &HttpClient, d: &Dispatch, rewrite_localhost: Option<&str>) -> Attempt {
    let deadline = Duration::from_millis(d.timeout_ms);
    match tokio::time::timeout(deadline, exchange(client, d, rewrite_localhost)).await {
        Ok(Ok(response)) => Attempt {
            response: Some(response),
            error: None,
        },
        Ok(Err(error)) => Attempt {
            response: None,
            error: Some(error),
        },
        Err(_) => Attempt {
            response: None,
            error: Some(format!("timeout: no response within {} ms", d.timeout_ms)),
        },
    }
}

/// Sends the request, following redirects, and reads the final answer.
async fn exchange(
    client: &HttpClient,
    d: &Dispatch,
    rewrite_localhost: Option<&str>,
) -> Result<Response, String> {
    let mut uri = parse_uri(&d.spec.url)?;
    let mut method = method(d.spec.options.method);
    let mut body = DeliveryBody::of(d);
    for _ in 0..=MAX_REDIRECTS {
        let mut req = Request::new(body.clone());
        *req.method_mut() = method.clone();
        *req.uri_mut() = rewrite_localhost
            .and_then(|to| loopback::rewrite(&uri, to))
            .unwrap_or_else(|| uri.clone());
        // Built per hop (redirects are rare) so the common case moves it instead of copying.
        *req.headers_mut() = request_headers(d, signing::system_now_s());
        let resp = client.request(req).await.map_err(|e| describe(&e, &uri))?;
        let status = resp.status();
        if status.is_redirection()
            && let Some(next) = redirect_target(&uri, resp.headers())
        {
            if matches!(
                status,
                StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER
            ) && method != http::Method::GET
                && method != http::Method::HEAD
            {
                method = http::Method::GET;
                body = DeliveryBody::default();
            }
            uri = next;
            continue;
        }
        return read_response(resp).await;
    }
    Err(format!("stopped after {MAX_REDIRECTS} redirects"))
}

fn redirect_target(current: &Uri, headers: &http::HeaderMap) -> Option<Uri> {
    let location = headers.get(http::header::LOCATION)?.to_str().ok()?;
    let base = url::Url::parse(&current.to_string()).ok()?;
    base.join(location).ok()?.as_str().parse().ok()
}

async fn read_response(resp: http::Response<hyper::body::Incoming>) -> Result<Response, String> {
    let status = resp.status().as_u16();
    let (parts, mut incoming) = resp.into_parts();
    let headers = HeaderList::from_pairs(
        parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
    );
    // Sized from Content-Length when given: growing by doubling could leave a 1 MB answer
    // in a 2 MB allocation, kept by the logs, the DLQ and callbacks.
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = BytesMut::with_capacity(declared.min(MAX_STORED_RESPONSE));
    while let Some(frame) = incoming.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(chunk) = frame.data_ref() {
                    let room = MAX_STORED_RESPONSE.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
            }
            Err(e) => {
                // A 2xx whose body was cut off is not a confirmed delivery; any other status
                // already tells what happened.
                if (200..300).contains(&status) {
                    return Err(format!("response body interrupted: {e}"));
                }
                break;
            }
        }
    }
    let body = if body.capacity() - body.len() > body.len() / 4 {
        Bytes::copy_from_slice(&body)
    } else {
        body.freeze()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn describe(e: &hyper_util::client::legacy::Error, uri: &Uri) -> String {
    if let Some(tls) = super::tls::explain(e, uri.host().unwrap_or("the destination")) {
        return tls;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_with_odd_characters_are_encoded_not_refused() {
        assert_eq!(
            parse_uri("http://localhost:3000/a?b=1")
                .unwrap()
                .to_string(),
            "http://localhost:3000/a?b=1"
        );
        assert_eq!(parse_uri("http://localhost/a b").unwrap().path(), "/a%20b");
        assert!(parse_uri("not a url").is_err());
    }

    #[test]
    fn relative_and_absolute_redirects() {
        let base: Uri = "http://a.test/x/y?q=1".parse().unwrap();
        let mut h = http::HeaderMap::new();
        h.insert(http::header::LOCATION, HeaderValue::from_static("/z"));
        assert_eq!(
            redirect_target(&base, &h).unwrap().to_string(),
            "http://a.test/z"
        );
        h.insert(
            http::header::LOCATION,
            HeaderValue::from_static("https://b.test/w"),
        );
        assert_eq!(
            redirect_target(&base, &h).unwrap().to_string(),
            "https://b.test/w"
        );
    }
}

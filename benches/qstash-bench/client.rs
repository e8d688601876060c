//! The lean HTTP/1.1 client of the load generator: one keep-alive connection per worker
//! (hyper's connection API, no pool), requests built from a pre-built template.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::stamp::Stamp;

pub type Body = Full<Bytes>;

/// The bearer token of the server's default user.
pub const TOKEN: &str = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=";

pub type Vary = Arc<dyn Fn(u64, &mut Request<Body>) + Send + Sync>;

pub enum BodyTemplate {
    Fixed(Bytes),
    /// Stamped with the intended send time (open loop) or the send time (closed loop).
    Stamped(Stamp),
}

/// Everything about a request that does not change between requests.
pub struct RequestTemplate {
    pub addr: SocketAddr,
    pub method: Method,
    pub path: Uri,
    pub headers: HeaderMap,
    pub body: BodyTemplate,
    /// Adjusts request number `seq` (distinct schedule paths, flow-control keys, ...).
    pub vary: Option<Vary>,
}

impl RequestTemplate {
    /// A POST of `body` to `path` with the Host, Authorization and Content-Type headers and
    /// `extra` headers.
    pub fn post(addr: SocketAddr, path: &str, extra: &[(&str, &str)], body: BodyTemplate) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            HOST,
            HeaderValue::from_str(&addr.to_string()).expect("host"),
        );
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {TOKEN}")).expect("token"),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (k, v) in extra {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                HeaderValue::from_str(v).expect("header value"),
            );
        }
        RequestTemplate {
            addr,
            method: Method::POST,
            path: path.parse().expect("request path"),
            headers,
            body,
            vary: None,
        }
    }

    pub fn with_vary(mut self, vary: Vary) -> Self {
        self.vary = Some(vary);
        self
    }

    pub fn build(&self, seq: u64, stamp_ns: u64) -> Request<Body> {
        let body = match &self.body {
            BodyTemplate::Fixed(b) => b.clone(),
            BodyTemplate::Stamped(s) => s.body(stamp_ns),
        };
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.path.clone();
        *req.headers_mut() = self.headers.clone();
        if let Some(vary) = &self.vary {
            vary(seq, &mut req);
        }
        req
    }
}

pub struct Conn {
    sender: SendRequest<Body>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let connect = async {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Conn { sender })
        };
        tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .map_err(|_| format!("connect {addr}: timed out"))?
    }

    /// Sends `req` and reads the whole answer; the body is returned only for non-2xx answers.
    pub async fn send(
        &mut self,
        req: Request<Body>,
    ) -> Result<(StatusCode, Option<Bytes>), String> {
        self.sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("response body: {e}"))?;
        Ok((status, (!status.is_success()).then(|| body.to_bytes())))
    }
}

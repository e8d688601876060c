//! HTTPS destinations with a local certificate authority (mkcert, `next dev
//! --experimental-https`): trusted through SSL_CERT_FILE, or accepted with -insecure-tls;
//! otherwise the attempt fails with a sentence that says what to do.

use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::common::TOKEN;
use crate::common::binary::Started;
use crate::common::ext::{eventually, send};

/// A local CA (its PEM) and an HTTPS endpoint on 127.0.0.1 with a certificate it signed for
/// `localhost`; the endpoint counts the requests it answers.
struct LocalHttps {
    ca_pem: String,
    url: String,
    hits: Arc<Mutex<usize>>,
}

async fn local_https() -> LocalHttps {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(Mutex::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, hits) = (acceptor.clone(), counted.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |_: http::Request<Incoming>| {
                    *hits.lock().unwrap() += 1;
                    async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    LocalHttps {
        ca_pem: ca.pem(),
        url: format!("https://localhost:{port}/hook"),
        hits,
    }
}

/// Publishes one message (no retries) and waits until it is DELIVERED or FAILED; returns
/// the final state and the error of its ERROR entry, if any.
async fn deliver_once(server: &Started, url: &str) -> (String, Option<String>) {
    let http = reqwest::Client::new();
    let (status, body) = send(
        http.post(format!("{}/v2/publish/{url}", server.url))
            .bearer_auth(TOKEN)
            .header("Upstash-Retries", "0"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["messageId"].as_str().unwrap().to_string();
    eventually("a final state", || {
        let (http, id, base) = (http.clone(), id.clone(), server.url.clone());
        async move {
            let (_, logs) = send(
                http.get(format!("{base}/v2/events?messageId={id}"))
                    .bearer_auth(TOKEN),
            )
            .await;
            let events = logs["events"].as_array()?.clone();
            let last = events.first()?["state"].as_str()?.to_string();
            let error = events
                .iter()
                .find_map(|e| e["error"].as_str().map(String::from));
            matches!(last.as_str(), "DELIVERED" | "FAILED").then_some((last, error))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_ca_is_trusted_through_ssl_cert_file_or_any_certificate_with_insecure_tls() {
    let https = local_https().await;
    let dir = std::env::temp_dir().join(format!("qstash-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &https.ca_pem).unwrap();

    let plain = Started::new(&[], &[]);
    let (state, error) = deliver_once(&plain, &https.url).await;
    assert_eq!(state, "FAILED");
    let error = error.unwrap_or_default();
    assert!(
        error.contains("unknown authority") && error.contains("-insecure-tls"),
        "a sentence saying what to do, not rustls' Debug output: {error}"
    );

    let with_ca = Started::new(&[], &[("SSL_CERT_FILE", ca_file.to_str().unwrap())]);
    assert_eq!(deliver_once(&with_ca, &https.url).await.0, "DELIVERED");

    let insecure = Started::new(&["-insecure-tls"], &[]);
    assert_eq!(deliver_once(&insecure, &https.url).await.0, "DELIVERED");
    assert_eq!(*https.hits.lock().unwrap(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

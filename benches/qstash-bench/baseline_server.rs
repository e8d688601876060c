//! The baseline: a minimal axum server answering `POST /v2/publish/{*destination}` with a
//! small JSON body, nothing else. It runs as its own process (the bench re-executes itself
//! with `--serve-baseline`) on the same runtime setup as qstash, and prints the same
//! readiness and URL lines so it is started and measured exactly like the real server.

use std::io::Write;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use bytes::Bytes;

pub const READY_LINE: &str = "baseline server is running.";

async fn publish(body: Bytes) -> impl IntoResponse {
    let _ = body;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"messageId":"msg_baseline"}"#,
    )
}

pub fn serve() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("baseline: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("baseline: cannot listen: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        println!("{READY_LINE}\nQSTASH_URL=http://127.0.0.1:{port}");
        let _ = std::io::stdout().flush();
        let app = Router::new().route("/v2/publish/{*destination}", post(publish));
        match axum::serve(listener, app).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("baseline: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}

//! The data directory itself: created on first use, refused while another server holds it,
//! and never silently started empty when it cannot be read.

use std::time::Duration;

use super::{Node, TempDir};
use crate::common::binary::Dev;

fn start_fails(dir: &str) -> String {
    let mut dev = Dev::spawn(&["dev", "-port", "0", "-data-dir", dir], &[]);
    let status = dev.wait_exit(Duration::from_secs(15));
    assert!(!status.success(), "started anyway; {}", dev.output());
    dev.output()
}

#[tokio::test]
async fn persist_a_directory_in_use_is_refused_and_free_again_after_a_crash() {
    let dir = TempDir::new("lock");
    let node = Node::start(&dir.0);
    let out = start_fails(dir.path());
    assert!(
        out.contains("in use by another running qstash server"),
        "{out}"
    );
    // The lock dies with its process, however it ends.
    node.stop("KILL");
    let again = Node::start(&dir.0);
    again.get("/v2/queues").await;
}

#[tokio::test]
async fn persist_an_unreadable_directory_fails_the_start_with_a_clear_error() {
    let dir = TempDir::new("corrupt");
    Node::start(&dir.0).stop("TERM");
    let db = dir.0.join("qstash.db");
    let _ = std::fs::remove_file(dir.0.join("qstash.db-wal"));
    let _ = std::fs::remove_file(dir.0.join("qstash.db-shm"));
    std::fs::write(&db, vec![0x5a; 8192]).unwrap();
    let out = start_fails(dir.path());
    assert!(out.contains("unreadable or corrupt"), "{out}");
    assert!(out.contains(&db.display().to_string()), "{out}");
}

#[tokio::test]
async fn persist_a_directory_written_by_a_newer_server_is_refused_with_its_version() {
    let dir = TempDir::new("newer");
    Node::start(&dir.0).stop("TERM");
    let conn = rusqlite::Connection::open(dir.0.join("qstash.db")).unwrap();
    conn.execute(
        "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let out = start_fails(dir.path());
    assert!(out.contains("newer qstash (data format 99)"), "{out}");
}

#[tokio::test]
async fn persist_a_database_of_another_program_is_not_taken_over() {
    let dir = TempDir::new("foreign");
    std::fs::create_dir_all(&dir.0).unwrap();
    let conn = rusqlite::Connection::open(dir.0.join("qstash.db")).unwrap();
    conn.execute("CREATE TABLE notes (x TEXT)", []).unwrap();
    drop(conn);
    let out = start_fails(dir.path());
    assert!(out.contains("not qstash's"), "{out}");
}

/// The reset control wipes the user on disk too: after a restart nothing of it comes back,
/// and the other users keep theirs.
#[tokio::test(flavor = "multi_thread")]
async fn persist_a_reset_user_stays_reset_after_a_restart() {
    let dir = super::TempDir::new("reset");
    let node = super::Node::start(&dir.0);
    let delayed = [("Upstash-Delay", "1h")];
    let published = node
        .post("/v2/publish/http://127.0.0.1:9/a", &delayed, "x")
        .await;
    let message = format!("/v2/messages/{}", published["messageId"].as_str().unwrap());
    node.post("/v2/queues", &[], r#"{"queueName":"q-reset"}"#)
        .await;
    let default_keys = node.get("/v2/keys").await;
    node.post("/v2/keys/rotate", &[], "").await;
    let other = node
        .http
        .post(node.url("/v2/publish/http://127.0.0.1:9/b"))
        .bearer_auth(qstash::users::USERS[1].token)
        .header("Upstash-Delay", "1h")
        .body("y")
        .send()
        .await
        .expect("publish as user 1");
    assert!(other.status().is_success());
    node.post("/__qstash/reset", &[], "").await;
    node.stop("KILL");

    let node = super::Node::start(&dir.0);
    assert_eq!(node.get("/v2/queues").await, serde_json::json!([]));
    let gone = node.req(reqwest::Method::GET, &message).send().await;
    assert_eq!(gone.expect("GET message").status(), 404);
    assert_eq!(
        node.get("/v2/events").await["events"],
        serde_json::json!([])
    );
    assert_eq!(
        node.get("/v2/keys").await,
        default_keys,
        "the rotated keys are gone"
    );
    let theirs = node
        .http
        .get(node.url("/v2/events"))
        .bearer_auth(qstash::users::USERS[1].token)
        .send()
        .await
        .expect("events of user 1")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    assert!(!theirs["events"].as_array().expect("events").is_empty());
    node.stop("TERM");
}

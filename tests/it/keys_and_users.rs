//! Signing keys (`GET /v2/keys`, `POST /v2/keys/rotate`) and the isolation of the four
//! predefined users.

use crate::common::{Receiver, Reply, TestServer, status_json};
use qstash::users::USERS;
use serde_json::json;

const HOUR: (&str, &str) = ("Upstash-Delay", "1h");

fn is_signing_key(key: &str) -> bool {
    const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    key.strip_prefix("sig_")
        .is_some_and(|rest| rest.len() == 28 && rest.chars().all(|c| BASE58.contains(c)))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_user_starts_with_its_well_known_keys() {
    let server = TestServer::start().await;
    for (i, user) in USERS.iter().enumerate() {
        let (status, keys) = server.user(i).get_json("/v2/keys").await;
        assert_eq!(status, 200);
        assert_eq!(keys["current"], user.current_signing_key, "user {i}");
        assert_eq!(keys["next"], user.next_signing_key, "user {i}");
    }
}

/// Publishes to a fresh receiver that only knows `key`; returns whether the delivery's
/// signature verified with it.
async fn signed_with(server: &TestServer, user: usize, key: &str) -> Result<(), String> {
    let rx = Receiver::start_with_keys(&[key]).await;
    server
        .user(user)
        .publish(&format!("{}/k", rx.url), &[], "x")
        .await;
    match &rx.wait_for(1).await[0].signature_error {
        None => Ok(()),
        Some(e) => Err(e.clone()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_promotes_next_and_later_deliveries_use_it() {
    let server = TestServer::start().await;
    let old = &USERS[0];
    let resp = server.post("/v2/keys/rotate").send().await.unwrap();
    let (status, rotated) = status_json(resp).await;
    assert_eq!(status, 200);
    assert_eq!(rotated["current"], old.next_signing_key);
    let next = rotated["next"].as_str().unwrap().to_string();
    assert!(is_signing_key(&next), "{next}");
    assert!(next != old.current_signing_key && next != old.next_signing_key);
    assert_eq!(server.get_json("/v2/keys").await.1, rotated);
    signed_with(&server, 0, old.next_signing_key)
        .await
        .expect("signed with the new current key");
    assert!(
        signed_with(&server, 0, old.current_signing_key)
            .await
            .is_err(),
        "the old current key no longer signs"
    );
    // Second rotation: the generated key becomes current.
    let (_, again) = status_json(server.post("/v2/keys/rotate").send().await.unwrap()).await;
    assert_eq!(again["current"], next.as_str());
    assert!(is_signing_key(again["next"].as_str().unwrap()));
    assert_ne!(again["next"], next.as_str());
    signed_with(&server, 0, &next)
        .await
        .expect("signed with the generated key");
    // The other users keep theirs.
    for (i, user) in USERS.iter().enumerate().skip(1) {
        let (_, keys) = server.user(i).get_json("/v2/keys").await;
        assert_eq!(keys["current"], user.current_signing_key);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn users_do_not_see_or_touch_each_others_state() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.route("/dead", Reply::status(500));
    let pending = server.publish(&format!("{}/p", rx.url), &[HOUR], "x").await;
    let (_, dlq_id) = server.dead_letter(&format!("{}/dead", rx.url), &[]).await;
    let logged = server.events("").await.len();

    for (i, user) in USERS.iter().enumerate().skip(1) {
        let them = server.user(i);
        let (status, _) = them.get_json(&format!("/v2/messages/{pending}")).await;
        assert_eq!(status, 404, "user {i} reads user 0's message");
        let (status, _) = them.delete_json(&format!("/v2/messages/{pending}")).await;
        assert_eq!(status, 404, "user {i} cancels user 0's message");
        let (_, json) = them
            .delete_json(&format!("/v2/messages?messageIds={pending}"))
            .await;
        assert_eq!(json, json!({"cancelled": 0}), "user {i}");
        let (_, json) = them.delete_json("/v2/messages").await;
        assert_eq!(json, json!({"cancelled": 0}), "user {i} cancels all");

        assert_eq!(them.events("").await, Vec::<serde_json::Value>::new());
        assert_eq!(them.events(&format!("messageId={pending}")).await.len(), 0);
        let (_, logs) = them.get_json("/v2/logs").await;
        assert_eq!(logs["logs"], json!([]));

        let (_, dlq) = them.get_json("/v2/dlq").await;
        assert_eq!(dlq["messages"], json!([]), "user {i}");
        let (status, _) = them.get_json(&format!("/v2/dlq/{dlq_id}")).await;
        assert_eq!(status, 404);
        let (status, _) = them.delete_json(&format!("/v2/dlq/{dlq_id}")).await;
        assert_eq!(status, 404);
        let (status, _) = status_json(
            them.post(&format!("/v2/dlq/retry/{dlq_id}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = status_json(
            them.post(&format!("/v2/dlq/retry?dlqIds={dlq_id}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404);
        let (_, json) = status_json(them.post("/v2/dlq/retry").send().await.unwrap()).await;
        assert_eq!(json["responses"], json!([]), "user {i} retries all");
        let (_, json) = them.delete_json("/v2/dlq").await;
        assert_eq!(json, json!({"deleted": 0}), "user {i} deletes all");

        let (status, keys) = status_json(them.post("/v2/keys/rotate").send().await.unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(keys["current"], user.next_signing_key);
        // Each user's deliveries are signed with its own (now rotated) key.
        signed_with(&server, i, user.next_signing_key)
            .await
            .unwrap_or_else(|e| panic!("user {i}: {e}"));
    }

    let (status, _) = server.get_json(&format!("/v2/messages/{pending}")).await;
    assert_eq!(status, 200);
    assert_eq!(server.states(&pending).await, ["CREATED"]);
    let (status, _) = server.get_json(&format!("/v2/dlq/{dlq_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(server.events("").await.len(), logged);
    assert_eq!(
        server.get_json("/v2/keys").await.1,
        json!({"current": USERS[0].current_signing_key, "next": USERS[0].next_signing_key})
    );
    signed_with(&server, 0, USERS[0].current_signing_key)
        .await
        .expect("user 0 still signs with its own key");
}

//! `/webhook_endpoints` and `/webhooks/*` against the emulator: Lago's shapes, validation,
//! the per-organization URL uniqueness and limit (also under concurrency), and tenant
//! isolation.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use axum::body::Body;
use base64::{Engine, engine::general_purpose::STANDARD};
use billing_aws::webhook_keys::{PublicKeySource, generate_key_pair};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use support::{Api, missing_root, not_found, unauthorized, unprocessable};
use tower::ServiceExt;

const PATH: &str = "/api/v1/webhook_endpoints";

async fn create(api: &Api, fields: Value) -> support::Reply {
    api.post(PATH, json!({ "webhook_endpoint": fields })).await
}

fn is_uuid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

#[tokio::test]
async fn webhook_endpoints_are_created_listed_shown_updated_and_deleted() {
    let api = Api::start().await;

    // Given a full endpoint and a minimal one,
    let full = create(
        &api,
        json!({"webhook_url": "https://hooks.example.com/lago", "signature_algo": "hmac",
               "name": "Finance", "event_types": ["invoice.created", "subscription.started"]}),
    )
    .await;
    let full = full.ok("webhook_endpoint").clone();
    let minimal = create(&api, json!({"webhook_url": "http://127.0.0.1:9/hooks"})).await;
    let minimal = minimal.ok("webhook_endpoint").clone();

    // then each is Lago's WebhookEndpointObject, the minimal one with Lago's defaults.
    assert!(is_uuid(&full["lago_id"]), "{full:#}");
    let created_at = full["created_at"].as_str().unwrap_or_default();
    assert!(
        chrono::NaiveDateTime::parse_from_str(created_at, "%Y-%m-%dT%H:%M:%SZ").is_ok(),
        "created_at {created_at:?}"
    );
    let mut expected = json!({
        "lago_id": full["lago_id"], "lago_organization_id": api.org_id,
        "webhook_url": "https://hooks.example.com/lago", "signature_algo": "hmac",
        "name": "Finance", "event_types": ["invoice.created", "subscription.started"],
        "created_at": full["created_at"],
    });
    assert_eq!(full, expected);
    assert_eq!(
        minimal,
        json!({
            "lago_id": minimal["lago_id"], "lago_organization_id": api.org_id,
            "webhook_url": "http://127.0.0.1:9/hooks", "signature_algo": "jwt",
            "name": null, "event_types": null, "created_at": minimal["created_at"],
        })
    );

    // When listing, both are there with Lago's meta, oldest first, and pages split them;
    let list = api.get(PATH).await;
    assert_eq!(
        list.ok("webhook_endpoints").as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        list.body["meta"],
        json!({"current_page": 1, "next_page": null, "prev_page": null,
               "total_pages": 1, "total_count": 2})
    );
    let page_2 = api.get(&format!("{PATH}?per_page=1&page=2")).await;
    assert_eq!(
        page_2.ok("webhook_endpoints")[0]["lago_id"],
        minimal["lago_id"]
    );
    assert_eq!(page_2.body["meta"]["prev_page"], json!(1));

    // showing one returns it as created;
    let id = full["lago_id"].as_str().unwrap_or_default().to_owned();
    let shown = api.get(&format!("{PATH}/{id}")).await;
    assert_eq!(shown.ok("webhook_endpoint"), &expected);

    // an update changes what it sends and keeps what it does not (null types = every type);
    let updated = api
        .put(
            &format!("{PATH}/{id}"),
            json!({"webhook_endpoint": {"webhook_url": "https://new.example.com/lago",
                                        "event_types": null}}),
        )
        .await;
    expected["webhook_url"] = json!("https://new.example.com/lago");
    expected["event_types"] = Value::Null;
    assert_eq!(updated.ok("webhook_endpoint"), &expected);
    assert_eq!(
        api.get(&format!("{PATH}/{id}"))
            .await
            .ok("webhook_endpoint"),
        &expected
    );

    // a delete returns the endpoint, which is then gone,
    let deleted = api.delete(&format!("{PATH}/{id}")).await;
    assert_eq!(deleted.ok("webhook_endpoint"), &expected);
    api.get(&format!("{PATH}/{id}")).await.assert_error(
        404,
        not_found("webhook_endpoint"),
        "show after delete",
    );
    api.delete(&format!("{PATH}/{id}")).await.assert_error(
        404,
        not_found("webhook_endpoint"),
        "delete twice",
    );
    assert_eq!(api.count("webhook_endpoints").await, 1);

    // and its old and new URLs are free again.
    for url in [
        "https://hooks.example.com/lago",
        "https://new.example.com/lago",
    ] {
        create(&api, json!({ "webhook_url": url }))
            .await
            .ok("webhook_endpoint");
    }
}

#[tokio::test]
async fn bad_webhook_endpoints_are_refused_with_lagos_errors_and_write_nothing() {
    let api = Api::start().await;
    let existing = create(&api, json!({"webhook_url": "https://a.example.com"})).await;
    let id = existing.ok("webhook_endpoint")["lago_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let cases = [
        (
            json!({}),
            400,
            missing_root("webhook_endpoint"),
            "no root key",
        ),
        (
            json!({"webhook_endpoint": {"name": "x"}}),
            422,
            unprocessable(json!({"webhook_url": ["value_is_mandatory"]})),
            "no url",
        ),
        (
            json!({"webhook_endpoint": {"webhook_url": "ftp://example.com"}}),
            422,
            unprocessable(json!({"webhook_url": ["url_is_invalid"]})),
            "not http",
        ),
        (
            json!({"webhook_endpoint": {"webhook_url": "not a url"}}),
            422,
            unprocessable(json!({"webhook_url": ["url_is_invalid"]})),
            "not a url",
        ),
        (
            json!({"webhook_endpoint": {"webhook_url": "https://b.example.com", "signature_algo": "rsa"}}),
            422,
            unprocessable(json!({"signature_algo": ["value_is_invalid"]})),
            "unknown algorithm",
        ),
        (
            json!({"webhook_endpoint": {"webhook_url": "https://b.example.com", "event_types": ["invoice.creatd"]}}),
            422,
            unprocessable(json!({"event_types": ["value_is_invalid"]})),
            "unknown event type",
        ),
        (
            json!({"webhook_endpoint": {"webhook_url": "https://b.example.com", "event_types": "invoice.created"}}),
            422,
            unprocessable(json!({"event_types": ["value_is_invalid"]})),
            "event types not a list",
        ),
        (
            json!({"webhook_endpoint": {"webhook_url": "https://a.example.com"}}),
            422,
            unprocessable(json!({"webhook_url": ["value_already_exist"]})),
            "duplicate url",
        ),
    ];
    for (body, status, error, case) in cases {
        api.post(PATH, body).await.assert_error(status, error, case);
    }
    // An update is validated alike, and a refused one changes nothing.
    api.put(
        &format!("{PATH}/{id}"),
        json!({"webhook_endpoint": {"webhook_url": "mailto:x@example.com"}}),
    )
    .await
    .assert_error(
        422,
        unprocessable(json!({"webhook_url": ["url_is_invalid"]})),
        "update",
    );
    api.put(
        &format!("{PATH}/{}", uuid::Uuid::new_v4()),
        json!({"webhook_endpoint": {"webhook_url": "https://c.example.com"}}),
    )
    .await
    .assert_error(404, not_found("webhook_endpoint"), "update unknown");
    assert_eq!(api.count("webhook_endpoints").await, 1);
    assert_eq!(
        api.get(&format!("{PATH}/{id}"))
            .await
            .ok("webhook_endpoint")["webhook_url"],
        "https://a.example.com"
    );
}

#[tokio::test]
async fn a_url_is_unique_within_an_organization_only() {
    let api = Api::start().await;
    let other = api.another_organization("Other").await;
    let a = create(&api, json!({"webhook_url": "https://a.example.com"})).await;
    let b = create(&api, json!({"webhook_url": "https://b.example.com"})).await;
    let b_id = b.ok("webhook_endpoint")["lago_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    a.ok("webhook_endpoint");

    // Moving b onto a's URL is refused, and b keeps its own;
    api.put(
        &format!("{PATH}/{b_id}"),
        json!({"webhook_endpoint": {"webhook_url": "https://a.example.com"}}),
    )
    .await
    .assert_error(
        422,
        unprocessable(json!({"webhook_url": ["value_already_exist"]})),
        "move",
    );
    assert_eq!(
        api.get(&format!("{PATH}/{b_id}"))
            .await
            .ok("webhook_endpoint")["webhook_url"],
        "https://b.example.com"
    );
    // an update that keeps the URL is not a duplicate of itself;
    api.put(
        &format!("{PATH}/{b_id}"),
        json!({"webhook_endpoint": {"name": "B"}}),
    )
    .await
    .ok("webhook_endpoint");
    // and another organization may use the same URL.
    create(&other, json!({"webhook_url": "https://a.example.com"}))
        .await
        .ok("webhook_endpoint");
}

/// A create retried while it answers 503, as a client retries a transient failure: moto's
/// TransactWriteItems is not thread-safe (it copies the table while other requests write it)
/// and sometimes fails concurrent transactions with a 500, which the API reports as 503.
async fn create_retrying_503(api: &Api, fields: Value) -> support::Reply {
    for _ in 0..5 {
        let reply = create(api, fields.clone()).await;
        if reply.status != StatusCode::SERVICE_UNAVAILABLE {
            return reply;
        }
    }
    panic!("five 503s in a row creating {fields}");
}

#[tokio::test]
async fn an_organization_has_at_most_ten_endpoints_even_under_concurrent_creates() {
    let api = Api::start().await;
    // When twelve creates race,
    let creates = (0..12).map(|i| {
        let api = api.clone();
        tokio::spawn(async move {
            let url = format!("https://h{i}.example.com");
            create_retrying_503(&api, json!({ "webhook_url": url })).await
        })
    });
    let mut replies = Vec::new();
    for c in creates {
        replies.push(c.await.expect("the create task"));
    }
    // then exactly ten win and the others get Lago's limit error.
    let won: Vec<&support::Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(won.len(), 10, "{replies:#?}");
    for r in replies.iter().filter(|r| r.status != StatusCode::OK) {
        r.assert_error(
            422,
            unprocessable(json!({"base": ["exceeded_limit"]})),
            "11th",
        );
    }
    assert_eq!(api.count("webhook_endpoints").await, 10);

    // After a delete there is room for one more, and one only.
    let id = won[0].body["webhook_endpoint"]["lago_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    api.delete(&format!("{PATH}/{id}"))
        .await
        .ok("webhook_endpoint");
    create(&api, json!({"webhook_url": "https://again.example.com"}))
        .await
        .ok("webhook_endpoint");
    create(&api, json!({"webhook_url": "https://more.example.com"}))
        .await
        .assert_error(
            422,
            unprocessable(json!({"base": ["exceeded_limit"]})),
            "full again",
        );
}

#[tokio::test]
async fn an_organization_never_sees_or_changes_another_organizations_endpoints() {
    let a = Api::start().await;
    let b = a.another_organization("Other").await;
    let created = create(&a, json!({"webhook_url": "https://a.example.com"})).await;
    let id = created.ok("webhook_endpoint")["lago_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("{PATH}/{id}");

    b.get(&path)
        .await
        .assert_error(404, not_found("webhook_endpoint"), "show");
    b.put(
        &path,
        json!({"webhook_endpoint": {"webhook_url": "https://evil.example.com"}}),
    )
    .await
    .assert_error(404, not_found("webhook_endpoint"), "update");
    b.delete(&path)
        .await
        .assert_error(404, not_found("webhook_endpoint"), "delete");
    assert_eq!(b.count("webhook_endpoints").await, 0);
    // A's endpoint is untouched.
    assert_eq!(
        a.get(&path).await.ok("webhook_endpoint")["webhook_url"],
        "https://a.example.com"
    );
    // And nothing is served without an API key.
    for p in [
        PATH,
        path.as_str(),
        "/api/v1/webhooks/json_public_key",
        "/api/v1/webhooks/hmac_key",
    ] {
        a.send_raw(http::Method::GET, p, None, Vec::new())
            .await
            .assert_error(401, unauthorized(), p);
    }
}

#[tokio::test]
async fn the_public_key_is_served_as_base64_of_its_pem_in_json_and_as_text() {
    let pair = generate_key_pair().expect("a key pair");
    let api = Api::start().await.reconfigured(|d| {
        d.with_webhook_public_key(PublicKeySource::fixed(pair.public_pem.clone()))
    });

    let json_reply = api.get("/api/v1/webhooks/json_public_key").await;
    let key = json_reply.ok("webhook")["public_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        STANDARD
            .decode(&key)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        Some(pair.public_pem.clone()),
        "the JSON key is the Base64 of the PEM"
    );

    let request = Request::builder()
        .uri("/api/v1/webhooks/public_key")
        .header(header::AUTHORIZATION, format!("Bearer {}", api.key))
        .body(Body::empty())
        .expect("a request");
    let response = api.router().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    assert!(
        content_type.is_some_and(|c| c.to_str().is_ok_and(|c| c.starts_with("text/plain"))),
        "the deprecated route answers text/plain"
    );
    let text = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    assert_eq!(String::from_utf8_lossy(&text), key);
}

#[tokio::test]
async fn each_organization_has_its_own_hmac_key_made_once() {
    let a = Api::start().await;
    let b = a.another_organization("Other").await;
    let key = |api: Api| async move {
        api.get("/api/v1/webhooks/hmac_key").await.ok("webhook")["hmac_key"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let first = key(a.clone()).await;
    assert_eq!(first.len(), 64, "32 random bytes in hex");
    assert!(first.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(key(a.clone()).await, first, "stable across reads");
    // Creating an endpoint keeps it.
    create(
        &a,
        json!({"webhook_url": "https://a.example.com", "signature_algo": "hmac"}),
    )
    .await
    .ok("webhook_endpoint");
    assert_eq!(key(a).await, first);
    assert_ne!(key(b).await, first, "another organization's key differs");
}

//! Tenant isolation (DESIGN §2 "every read and write is scoped to the API key's organization"):
//! two organizations share one table, and neither can read, list, change or delete the
//! other's records through any route, while the same codes live side by side in both.

mod support;

use http::Method;
use serde_json::{Value, json};
use support::{Api, not_found, snapshot};

/// Organization A with a metric, two taxes (one applied to the organization) and a customer
/// under that tax; and organization B, empty, on the same router and table.
async fn two_organizations() -> (Api, Api) {
    let a = Api::start_as("Alpha").await;
    a.metric("storage").await;
    a.tax("vat").await;
    a.create(
        "taxes",
        "tax",
        json!({"name": "Default", "code": "vat_org", "rate": "5", "applied_to_organization": true}),
    )
    .await;
    a.create(
        "customers",
        "customer",
        json!({"external_id": "cus_1", "name": "Alpha's customer", "tax_codes": ["vat"]}),
    )
    .await;
    let b = a.another_organization("Beta").await;
    (a, b)
}

/// What B must see on a route aimed at A's records.
enum Expect {
    /// The list is empty, with Lago's empty `meta`.
    EmptyList(&'static str),
    /// Lago's 404 for the resource.
    NotFound(&'static str),
}

#[tokio::test]
async fn an_organization_cannot_read_list_change_or_delete_anothers_records_on_any_route() {
    // Given organization A's records, and organization B
    let (a, b) = two_organizations().await;
    let a_before = snapshot(&a).await;
    let routes: Vec<(Method, &str, Option<Value>, Expect)> = vec![
        (
            Method::GET,
            "/api/v1/billable_metrics",
            None,
            Expect::EmptyList("billable_metrics"),
        ),
        (
            Method::GET,
            "/api/v1/billable_metrics/storage",
            None,
            Expect::NotFound("billable_metric"),
        ),
        (
            Method::PUT,
            "/api/v1/billable_metrics/storage",
            Some(json!({"billable_metric": {"name": "Taken over", "code": "mine"}})),
            Expect::NotFound("billable_metric"),
        ),
        (
            Method::DELETE,
            "/api/v1/billable_metrics/storage",
            None,
            Expect::NotFound("billable_metric"),
        ),
        (
            Method::GET,
            "/api/v1/taxes",
            None,
            Expect::EmptyList("taxes"),
        ),
        (
            Method::GET,
            "/api/v1/taxes/vat",
            None,
            Expect::NotFound("tax"),
        ),
        (
            Method::PUT,
            "/api/v1/taxes/vat",
            Some(json!({"tax": {"rate": "99", "applied_to_organization": true}})),
            Expect::NotFound("tax"),
        ),
        (
            Method::DELETE,
            "/api/v1/taxes/vat",
            None,
            Expect::NotFound("tax"),
        ),
        (
            Method::GET,
            "/api/v1/customers",
            None,
            Expect::EmptyList("customers"),
        ),
        (
            Method::GET,
            "/api/v1/customers/cus_1",
            None,
            Expect::NotFound("customer"),
        ),
        (
            Method::DELETE,
            "/api/v1/customers/cus_1",
            None,
            Expect::NotFound("customer"),
        ),
        // An upsert naming A's customer and A's tax: the tax is not B's to apply.
        (
            Method::POST,
            "/api/v1/customers",
            Some(json!({"customer": {"external_id": "cus_1", "tax_codes": ["vat"]}})),
            Expect::NotFound("tax"),
        ),
    ];
    for (method, path, body, expect) in routes {
        // When B calls the route aimed at A's record
        let reply = b.send(method.clone(), path, body.as_ref()).await;
        // Then B sees nothing of A's
        let case = format!("B: {method} {path}");
        match expect {
            Expect::EmptyList(plural) => {
                assert_eq!(
                    reply.ok(plural),
                    &json!([]),
                    "{case}: B's list holds A's records"
                );
                assert_eq!(
                    reply.body["meta"],
                    json!({"current_page": 0, "next_page": null, "prev_page": null,
                           "total_pages": 0, "total_count": 0}),
                    "{case}: B's meta counts A's records"
                );
            }
            Expect::NotFound(resource) => reply.assert_error(404, not_found(resource), &case),
        }
    }
    // And A's records, lists and settings are exactly as they were
    assert_eq!(snapshot(&a).await, a_before, "B changed A's state");
    // And B holds nothing
    for plural in ["billable_metrics", "taxes", "customers"] {
        assert_eq!(b.count(plural).await, 0, "B's {plural} after the attempts");
    }
}

#[tokio::test]
async fn organizations_get_and_put_only_ever_return_and_change_the_callers_own() {
    // Given organizations A (with a tax applied to it) and B
    let (a, b) = two_organizations().await;
    let a_before = snapshot(&a).await;
    // When each reads its organization
    let a_org = a
        .get("/api/v1/organizations")
        .await
        .ok("organization")
        .clone();
    let b_org = b
        .get("/api/v1/organizations")
        .await
        .ok("organization")
        .clone();
    // Then each gets its own, with only its own default taxes
    assert_eq!(a_org["lago_id"], json!(a.org_id), "A's GET");
    assert_eq!(a_org["name"], json!("Alpha"), "A's name");
    let a_taxes: Vec<&Value> = a_org["taxes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| &t["code"])
        .collect();
    assert_eq!(a_taxes, [&json!("vat_org")], "A's default taxes");
    assert_eq!(b_org["lago_id"], json!(b.org_id), "B's GET");
    assert_eq!(b_org["name"], json!("Beta"), "B's name");
    assert_eq!(b_org["taxes"], json!([]), "B sees A's default tax");

    // When B updates its organization
    let reply = b
        .put(
            "/api/v1/organizations",
            json!({"organization": {"legal_name": "Beta SAS", "timezone": "Europe/Paris",
                                    "default_currency": "EUR"}}),
        )
        .await;
    // Then B's organization changed
    let updated = reply.ok("organization");
    assert_eq!(
        updated["lago_id"],
        json!(b.org_id),
        "B's PUT answers B's organization"
    );
    assert_eq!(updated["legal_name"], json!("Beta SAS"), "B's legal_name");
    assert_eq!(updated["timezone"], json!("Europe/Paris"), "B's timezone");
    assert_eq!(
        b.get("/api/v1/organizations").await.ok("organization"),
        updated,
        "B's GET after its PUT"
    );
    // And A's did not
    assert_eq!(snapshot(&a).await, a_before, "B's PUT changed A's state");
}

#[tokio::test]
async fn the_same_codes_and_external_ids_live_independently_in_two_organizations() {
    // Given organization A's metric `storage`, tax `vat` and customer `cus_1`
    let (a, b) = two_organizations().await;
    let a_before = snapshot(&a).await;
    let a_metric = a
        .get("/api/v1/billable_metrics/storage")
        .await
        .ok("billable_metric")
        .clone();
    let a_tax = a.get("/api/v1/taxes/vat").await.ok("tax").clone();
    let a_customer = a
        .get("/api/v1/customers/cus_1")
        .await
        .ok("customer")
        .clone();

    // When B creates records with the same keys
    let b_metric = b
        .create(
            "billable_metrics",
            "billable_metric",
            json!({"name": "Beta calls", "code": "storage", "aggregation_type": "count_agg"}),
        )
        .await;
    let b_tax = b
        .create(
            "taxes",
            "tax",
            json!({"name": "Beta VAT", "code": "vat", "rate": "7"}),
        )
        .await;
    let b_customer = b
        .create(
            "customers",
            "customer",
            json!({"external_id": "cus_1", "name": "Beta's customer", "tax_codes": ["vat"]}),
        )
        .await;

    // Then they are new records of B's, not A's updated
    for (mine, theirs, what) in [
        (&b_metric, &a_metric, "metric"),
        (&b_tax, &a_tax, "tax"),
        (&b_customer, &a_customer, "customer"),
    ] {
        assert_ne!(
            mine["lago_id"], theirs["lago_id"],
            "B's {what} is A's record"
        );
    }
    assert_eq!(
        b_metric["aggregation_type"],
        json!("count_agg"),
        "B's metric"
    );
    assert_eq!(b_tax["rate"], json!(7), "B's tax rate");
    assert_eq!(b_customer["name"], json!("Beta's customer"), "B's customer");
    assert_eq!(
        b_customer["sequential_id"],
        json!(1),
        "B counts its own customers"
    );
    assert_eq!(
        b_customer["taxes"][0]["lago_id"], b_tax["lago_id"],
        "B's customer has B's tax"
    );

    // When B changes and deletes its own copies
    b.put(
        "/api/v1/taxes/vat",
        json!({"tax": {"code": "vat_b", "rate": "8"}}),
    )
    .await
    .ok("tax");
    b.put(
        "/api/v1/billable_metrics/storage",
        json!({"billable_metric": {"name": "Renamed"}}),
    )
    .await
    .ok("billable_metric");
    b.post(
        "/api/v1/customers",
        json!({"customer": {"external_id": "cus_1", "name": null}}),
    )
    .await
    .ok("customer");
    b.delete("/api/v1/billable_metrics/storage")
        .await
        .ok("billable_metric");
    b.delete("/api/v1/customers/cus_1").await.ok("customer");

    // Then A's records are exactly as they were
    assert_eq!(
        snapshot(&a).await,
        a_before,
        "B's writes reached A's records"
    );
    // And B's state is only B's doing
    assert_eq!(b.count("billable_metrics").await, 0, "B's metrics");
    assert_eq!(b.count("customers").await, 0, "B's customers");
    let b_taxes = b.get("/api/v1/taxes").await;
    let codes: Vec<&Value> = b_taxes
        .ok("taxes")
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| &t["code"])
        .collect();
    assert_eq!(codes, [&json!("vat_b")], "B's taxes");
}

#[tokio::test]
async fn a_rename_is_checked_against_the_callers_codes_only() {
    // Given A's tax `vat` and metric `storage`, and B's tax `gst` and metric `calls`
    let (a, b) = two_organizations().await;
    let a_before = snapshot(&a).await;
    b.tax("gst").await;
    b.metric("calls").await;
    // When B renames its records onto codes only A uses
    let tax = b
        .put("/api/v1/taxes/gst", json!({"tax": {"code": "vat"}}))
        .await;
    let metric = b
        .put(
            "/api/v1/billable_metrics/calls",
            json!({"billable_metric": {"code": "storage"}}),
        )
        .await;
    // Then the renames succeed: A's codes do not exist for B
    assert_eq!(tax.ok("tax")["code"], json!("vat"), "B's tax rename");
    assert_eq!(
        metric.ok("billable_metric")["code"],
        json!("storage"),
        "B's metric rename"
    );
    // And A is untouched
    assert_eq!(snapshot(&a).await, a_before, "B's renames reached A");
}

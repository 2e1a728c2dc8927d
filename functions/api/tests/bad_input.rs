//! Bad input, route by route: every request that is unauthenticated, malformed, of the wrong
//! type, incomplete, invalid, a duplicate, too large, misrouted or sent with an unsupported
//! method gets Lago's error envelope (API_CONTRACT §1.5, §2.4), never a 5xx, and writes
//! nothing: the organization's whole readable state is identical before and after.

mod support;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Api, missing_root, not_found, seeded, snapshot, unauthorized, unprocessable};

/// A write route of the seeded organization: method, path, and the root key of its body.
struct Write {
    method: Method,
    path: &'static str,
    root: &'static str,
}

/// Every route that writes, aimed at the seeded records where it takes a key.
fn writes() -> Vec<Write> {
    let w = |method, path, root| Write { method, path, root };
    vec![
        w(Method::POST, "/api/v1/billable_metrics", "billable_metric"),
        w(
            Method::PUT,
            "/api/v1/billable_metrics/storage",
            "billable_metric",
        ),
        w(Method::POST, "/api/v1/taxes", "tax"),
        w(Method::PUT, "/api/v1/taxes/vat", "tax"),
        w(Method::POST, "/api/v1/customers", "customer"),
        w(Method::PUT, "/api/v1/organizations", "organization"),
    ]
}

/// Every route, with a body that would succeed for the seeded organization.
fn every_route() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/api/v1/billable_metrics", None),
        (
            Method::POST,
            "/api/v1/billable_metrics",
            Some(json!({"billable_metric": {"name": "Calls", "code": "calls",
                                            "aggregation_type": "count_agg"}})),
        ),
        (Method::GET, "/api/v1/billable_metrics/storage", None),
        (
            Method::PUT,
            "/api/v1/billable_metrics/storage",
            Some(json!({"billable_metric": {"name": "Renamed"}})),
        ),
        (Method::DELETE, "/api/v1/billable_metrics/storage", None),
        (Method::GET, "/api/v1/taxes", None),
        (
            Method::POST,
            "/api/v1/taxes",
            Some(json!({"tax": {"name": "GST", "code": "gst", "rate": "10"}})),
        ),
        (Method::GET, "/api/v1/taxes/vat", None),
        (
            Method::PUT,
            "/api/v1/taxes/vat",
            Some(json!({"tax": {"rate": "5"}})),
        ),
        (Method::DELETE, "/api/v1/taxes/vat", None),
        (Method::GET, "/api/v1/customers", None),
        (
            Method::POST,
            "/api/v1/customers",
            Some(json!({"customer": {"external_id": "cus_new"}})),
        ),
        (Method::GET, "/api/v1/customers/cus_1", None),
        (Method::DELETE, "/api/v1/customers/cus_1", None),
        (Method::GET, "/api/v1/credit_notes", None),
        (
            Method::GET,
            "/api/v1/credit_notes/00000000-0000-0000-0000-000000000000",
            None,
        ),
        (Method::GET, "/api/v1/customers/cus_1/credit_notes", None),
        (Method::GET, "/api/v1/organizations", None),
        (
            Method::PUT,
            "/api/v1/organizations",
            Some(json!({"organization": {"legal_name": "Hijacked Ltd"}})),
        ),
    ]
}

/// Sends `body` as raw bytes with the organization's key.
async fn send_bytes(api: &Api, method: &Method, path: &str, body: &[u8]) -> support::Reply {
    let auth = format!("Bearer {}", api.key);
    api.send_raw(method.clone(), path, Some(&auth), body.to_vec())
        .await
}

#[tokio::test]
async fn every_route_answers_401_without_a_valid_api_key_and_writes_nothing() {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    let before = snapshot(&api).await;
    let credentials = [
        (None, "no Authorization header"),
        (Some("Bearer lago_unknown_key"), "a key no organization has"),
        (Some("Bearer"), "the scheme without a key"),
        (Some(""), "an empty header"),
        (Some("lago_unknown_key"), "a bare unknown key"),
    ];
    for (method, path, body) in every_route() {
        for (authorization, credential) in credentials {
            // When the route is called with a body that would otherwise succeed
            let bytes = body.as_ref().map(|b| b.to_string().into_bytes());
            let reply = api
                .send_raw(
                    method.clone(),
                    path,
                    authorization,
                    bytes.unwrap_or_default(),
                )
                .await;
            // Then it is Lago's bare 401
            reply.assert_error(
                401,
                unauthorized(),
                &format!("{method} {path} with {credential}"),
            );
        }
    }
    // And nothing changed
    assert_eq!(
        snapshot(&api).await,
        before,
        "a refused request wrote something"
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400_and_writes_nothing() {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    let before = snapshot(&api).await;
    let bodies: [(&[u8], &str); 5] = [
        (b"{not json", "not JSON at all"),
        (br#"{"tax": {"name": "VAT""#, "truncated"),
        (br#"{"tax": {"name": "VAT",}}"#, "a trailing comma"),
        (br#"{"tax": {}} {"tax": {}}"#, "two documents"),
        (b"\xff\xfe{}", "bytes that are not UTF-8"),
    ];
    for write in writes() {
        for (body, what) in bodies {
            // When the body cannot be parsed
            let reply = send_bytes(&api, &write.method, write.path, body).await;
            // Then the answer is a 400 with exactly Lago's `status` and `error`
            let case = format!("{} {} with {what}", write.method, write.path);
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{case}: {reply:#?}");
            assert_eq!(reply.body["status"], json!(400), "{case}");
            let keys: Vec<&String> = reply
                .body
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            assert_eq!(keys, ["error", "status"], "{case}: only status and error");
            assert!(
                reply.body["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("BadRequest")),
                "{case}: error text {:?}",
                reply.body["error"]
            );
        }
    }
    // And nothing changed
    assert_eq!(
        snapshot(&api).await,
        before,
        "a refused request wrote something"
    );
}

#[tokio::test]
async fn a_body_without_its_root_key_is_lagos_400_naming_the_root_and_writes_nothing() {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    let before = snapshot(&api).await;
    for write in writes() {
        let root = write.root;
        let fields = json!({"name": "X", "code": "x", "external_id": "x"});
        // Rails wraps a JSON document that is not an object in `_json`, and treats an empty
        // body as no parameters: either way the root key is missing.
        let bodies: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "an empty body"),
            (b"null".to_vec(), "JSON null"),
            (b"[]".to_vec(), "an empty array"),
            (b"42".to_vec(), "a number"),
            (br#""text""#.to_vec(), "a string"),
            (
                json!([{ root: fields }]).to_string().into_bytes(),
                "the object inside an array",
            ),
            (b"{}".to_vec(), "an empty object"),
            (
                json!({ root: null }).to_string().into_bytes(),
                "a null root",
            ),
            (
                json!({ root: {} }).to_string().into_bytes(),
                "an empty root object",
            ),
            (
                json!({ root: "text" }).to_string().into_bytes(),
                "a string root",
            ),
            (
                json!({ root: [fields] }).to_string().into_bytes(),
                "an array root",
            ),
            (fields.to_string().into_bytes(), "the fields without a root"),
            (
                json!({"data": { root: fields }}).to_string().into_bytes(),
                "a nested root",
            ),
            (
                json!({ format!("{root}s"): fields })
                    .to_string()
                    .into_bytes(),
                "the plural root",
            ),
        ];
        for (body, what) in bodies {
            // When the root key is absent, null, empty or not an object
            let reply = send_bytes(&api, &write.method, write.path, &body).await;
            // Then the 400 has Lago's exact text naming the root
            reply.assert_error(
                400,
                missing_root(root),
                &format!("{} {} with {what}", write.method, write.path),
            );
        }
    }
    // And nothing changed
    assert_eq!(
        snapshot(&api).await,
        before,
        "a refused request wrote something"
    );
}

/// A request expected to be refused with a 422 and these `error_details`.
struct Refusal {
    method: Method,
    path: &'static str,
    body: Value,
    details: Value,
    case: &'static str,
}

/// Sends each refusal and checks its exact 422, then that nothing changed.
async fn assert_refused(api: &Api, refusals: Vec<Refusal>) {
    let before = snapshot(api).await;
    for r in refusals {
        let reply = api.send(r.method.clone(), r.path, Some(&r.body)).await;
        reply.assert_error(
            422,
            unprocessable(r.details),
            &format!("{} {}: {}", r.method, r.path, r.case),
        );
        assert_eq!(
            snapshot(api).await,
            before,
            "{}: the refused request wrote something",
            r.case
        );
    }
}

fn post_metric(fields: Value, details: Value, case: &'static str) -> Refusal {
    Refusal {
        method: Method::POST,
        path: "/api/v1/billable_metrics",
        body: json!({"billable_metric": fields}),
        details,
        case,
    }
}

fn put_metric(fields: Value, details: Value, case: &'static str) -> Refusal {
    Refusal {
        method: Method::PUT,
        path: "/api/v1/billable_metrics/storage",
        body: json!({"billable_metric": fields}),
        details,
        case,
    }
}

fn post_tax(fields: Value, details: Value, case: &'static str) -> Refusal {
    Refusal {
        method: Method::POST,
        path: "/api/v1/taxes",
        body: json!({"tax": fields}),
        details,
        case,
    }
}

fn put_tax(fields: Value, details: Value, case: &'static str) -> Refusal {
    Refusal {
        method: Method::PUT,
        path: "/api/v1/taxes/vat",
        body: json!({"tax": fields}),
        details,
        case,
    }
}

fn post_customer(fields: Value, details: Value, case: &'static str) -> Refusal {
    Refusal {
        method: Method::POST,
        path: "/api/v1/customers",
        body: json!({"customer": fields}),
        details,
        case,
    }
}

fn put_organization(fields: Value, details: Value, case: &'static str) -> Refusal {
    Refusal {
        method: Method::PUT,
        path: "/api/v1/organizations",
        body: json!({"organization": fields}),
        details,
        case,
    }
}

/// A valid new metric with `field` replaced.
fn metric_with(field: &str, value: Value) -> Value {
    let mut m = json!({"name": "Calls", "code": "calls", "aggregation_type": "sum_agg",
                       "field_name": "n"});
    m[field] = value;
    m
}

/// A valid new tax with `field` replaced.
fn tax_with(field: &str, value: Value) -> Value {
    let mut t = json!({"name": "GST", "code": "gst", "rate": "10"});
    t[field] = value;
    t
}

/// A valid upsert of the existing customer `cus_1` with `field` replaced.
fn customer_with(field: &str, value: Value) -> Value {
    let mut c = json!({"external_id": "cus_1", "name": "Changed"});
    c[field] = value;
    c
}

/// A valid upsert of a new customer with `field` replaced.
fn new_customer_with(field: &str, value: Value) -> Value {
    let mut c = json!({"external_id": "cus_new", "name": "New"});
    c[field] = value;
    c
}

fn invalid(field: &str) -> Value {
    json!({ field: ["value_is_invalid"] })
}

fn mandatory(field: &str) -> Value {
    json!({ field: ["value_is_mandatory"] })
}

#[tokio::test]
async fn a_metric_field_of_the_wrong_json_type_is_a_422_naming_the_field_and_writes_nothing() {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    // When a field carries a JSON type its schema does not allow
    // Then the 422 names the field (the top-level field for a nested one) and nothing changes
    assert_refused(
        &api,
        vec![
            post_metric(
                metric_with("name", json!(123)),
                invalid("name"),
                "numeric name",
            ),
            post_metric(
                metric_with("code", json!(["calls"])),
                invalid("code"),
                "array code",
            ),
            post_metric(
                metric_with("recurring", json!("yes")),
                invalid("recurring"),
                "string recurring",
            ),
            post_metric(
                metric_with("rounding_precision", json!("2")),
                invalid("rounding_precision"),
                "string rounding_precision",
            ),
            post_metric(
                metric_with("rounding_precision", json!(2.5)),
                invalid("rounding_precision"),
                "fractional rounding_precision",
            ),
            post_metric(
                metric_with("filters", json!("region")),
                invalid("filters"),
                "string filters",
            ),
            post_metric(
                metric_with("filters", json!([{"key": "region", "values": "eu"}])),
                invalid("filters"),
                "filter values as a string",
            ),
            post_metric(
                metric_with("filters", json!([{"key": 1, "values": ["eu"]}])),
                invalid("filters"),
                "numeric filter key",
            ),
            put_metric(
                json!({"aggregation_type": 1}),
                invalid("aggregation_type"),
                "numeric aggregation_type on update",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_tax_field_of_the_wrong_json_type_is_a_422_naming_the_field_and_writes_nothing() {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    // When a field carries a JSON type its schema does not allow
    // Then the 422 names the field (the top-level field for a nested one) and nothing changes
    assert_refused(
        &api,
        vec![
            post_tax(
                tax_with("rate", json!(true)),
                invalid("rate"),
                "boolean rate",
            ),
            post_tax(
                tax_with("rate", json!({"value": "10"})),
                invalid("rate"),
                "object rate",
            ),
            post_tax(
                tax_with("name", json!(["GST"])),
                invalid("name"),
                "array name",
            ),
            post_tax(
                tax_with("applied_to_organization", json!("yes")),
                invalid("applied_to_organization"),
                "string applied_to_organization",
            ),
            put_tax(
                json!({"description": 5}),
                invalid("description"),
                "numeric description on update",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_customer_field_of_the_wrong_json_type_is_a_422_naming_the_field_and_writes_nothing() {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    // When a field carries a JSON type its schema does not allow
    // Then the 422 names the field (the top-level field for a nested one) and nothing changes
    assert_refused(
        &api,
        vec![
            post_customer(
                json!({"external_id": 42}),
                invalid("external_id"),
                "numeric external_id",
            ),
            post_customer(
                customer_with("tax_codes", json!("vat")),
                invalid("tax_codes"),
                "string tax_codes",
            ),
            post_customer(
                customer_with("tax_codes", json!([1])),
                invalid("tax_codes"),
                "numeric tax code",
            ),
            post_customer(
                customer_with("metadata", json!({"k": "v"})),
                invalid("metadata"),
                "object metadata",
            ),
            post_customer(
                customer_with(
                    "metadata",
                    json!([{"key": "k", "value": 1, "display_in_invoice": true}]),
                ),
                invalid("metadata"),
                "numeric metadata value",
            ),
            post_customer(
                customer_with("net_payment_term", json!("30")),
                invalid("net_payment_term"),
                "string net_payment_term",
            ),
            post_customer(
                customer_with("billing_configuration", json!("stripe")),
                invalid("billing_configuration"),
                "string billing_configuration",
            ),
            post_customer(
                customer_with(
                    "billing_configuration",
                    json!({"invoice_grace_period": "3"}),
                ),
                invalid("billing_configuration"),
                "string invoice_grace_period",
            ),
            post_customer(
                new_customer_with("shipping_address", json!({"city": ["Paris"]})),
                invalid("shipping_address"),
                "array shipping city on a new customer",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn an_organization_field_of_the_wrong_json_type_is_a_422_naming_the_field_and_writes_nothing()
{
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    // When a field carries a JSON type its schema does not allow
    // Then the 422 names the field (the top-level field for a nested one) and nothing changes
    assert_refused(
        &api,
        vec![
            put_organization(
                json!({"net_payment_term": "30"}),
                invalid("net_payment_term"),
                "string net_payment_term",
            ),
            put_organization(
                json!({"email_settings": "invoice.finalized"}),
                invalid("email_settings"),
                "string email_settings",
            ),
            put_organization(
                json!({"billing_configuration": {"invoice_grace_period": true}}),
                invalid("billing_configuration"),
                "boolean invoice_grace_period",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_required_metric_field_left_out_null_or_blank_is_a_422_value_is_mandatory_and_writes_nothing()
 {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    // When a required field is absent, null or blank (on create), or set to null or blank
    // (on update)
    // Then each such field is reported as mandatory, all at once, and nothing changes
    assert_refused(
        &api,
        vec![
            post_metric(
                json!({"description": "no required field"}),
                json!({"name": ["value_is_mandatory"], "code": ["value_is_mandatory"],
                       "aggregation_type": ["value_is_mandatory"]}),
                "every required field absent",
            ),
            post_metric(
                json!({"name": " ", "code": "", "aggregation_type": "sum_agg", "field_name": ""}),
                json!({"name": ["value_is_mandatory"], "code": ["value_is_mandatory"],
                       "field_name": ["value_is_mandatory"]}),
                "blank name, code and field_name",
            ),
            post_metric(
                json!({"name": null, "code": null, "aggregation_type": null}),
                json!({"name": ["value_is_mandatory"], "code": ["value_is_mandatory"],
                       "aggregation_type": ["value_is_mandatory"]}),
                "null required fields",
            ),
            put_metric(json!({"name": null}), mandatory("name"), "name set to null"),
            put_metric(json!({"name": ""}), mandatory("name"), "name set to blank"),
            put_metric(json!({"code": null}), mandatory("code"), "code set to null"),
            put_metric(
                json!({"aggregation_type": null}),
                mandatory("aggregation_type"),
                "aggregation_type set to null",
            ),
            put_metric(
                json!({"field_name": null}),
                mandatory("field_name"),
                "field_name cleared on a sum",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_required_tax_field_left_out_null_or_blank_is_a_422_value_is_mandatory_and_writes_nothing()
 {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    // When a required field is absent, null or blank (on create), or set to null or blank
    // (on update)
    // Then each such field is reported as mandatory, all at once, and nothing changes
    assert_refused(
        &api,
        vec![
            post_tax(
                json!({"description": "no required field"}),
                json!({"name": ["value_is_mandatory"], "code": ["value_is_mandatory"],
                       "rate": ["value_is_mandatory"]}),
                "every required field absent",
            ),
            post_tax(tax_with("rate", json!("")), mandatory("rate"), "blank rate"),
            put_tax(json!({"rate": null}), mandatory("rate"), "rate set to null"),
            put_tax(json!({"name": null}), mandatory("name"), "name set to null"),
            put_tax(json!({"code": " "}), mandatory("code"), "code set to blank"),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_required_customer_field_left_out_null_or_blank_is_a_422_value_is_mandatory_and_writes_nothing()
 {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    // When a required field is absent, null or blank (on create), or set to null or blank
    // (on update)
    // Then each such field is reported as mandatory, all at once, and nothing changes
    assert_refused(
        &api,
        vec![
            post_customer(
                json!({"name": "Jane"}),
                mandatory("external_id"),
                "no external_id",
            ),
            post_customer(
                json!({"external_id": null, "name": "Jane"}),
                mandatory("external_id"),
                "null external_id",
            ),
            post_customer(
                json!({"external_id": "  "}),
                mandatory("external_id"),
                "blank external_id",
            ),
            post_customer(
                customer_with(
                    "metadata",
                    json!([{"key": "k", "display_in_invoice": true}]),
                ),
                mandatory("metadata"),
                "metadata without a value",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_metric_field_with_an_invalid_enum_or_format_is_a_422_naming_the_field_and_writes_nothing()
 {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    // When a field holds a value outside its enum or format
    // Then the 422 carries Lago's code for that field, and nothing changes
    assert_refused(
        &api,
        vec![
            post_metric(
                metric_with("aggregation_type", json!("custom_agg")),
                invalid("aggregation_type"),
                "custom_agg (premium, not served)",
            ),
            post_metric(
                metric_with("aggregation_type", json!("SUM_AGG")),
                invalid("aggregation_type"),
                "wrong case",
            ),
            post_metric(
                metric_with("aggregation_type", json!("recurring_count_agg")),
                invalid("aggregation_type"),
                "the removed recurring_count_agg",
            ),
            post_metric(
                metric_with("rounding_function", json!("truncate")),
                invalid("rounding_function"),
                "unknown rounding",
            ),
            post_metric(
                json!({"name": "Seats", "code": "seats", "aggregation_type": "weighted_sum_agg",
                       "field_name": "seats", "weighted_interval": "hours"}),
                invalid("weighted_interval"),
                "an interval other than seconds",
            ),
            put_metric(
                json!({"aggregation_type": "avg_agg"}),
                invalid("aggregation_type"),
                "unknown type on update",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_tax_field_with_an_invalid_enum_or_format_is_a_422_naming_the_field_and_writes_nothing() {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    // When a field holds a value outside its enum or format
    // Then the 422 carries Lago's code for that field, and nothing changes
    assert_refused(
        &api,
        vec![
            post_tax(
                tax_with("rate", json!("twenty")),
                invalid("rate"),
                "text rate",
            ),
            post_tax(
                tax_with("rate", json!("-1")),
                invalid("rate"),
                "negative rate",
            ),
            post_tax(
                tax_with("rate", json!("100.5")),
                invalid("rate"),
                "rate above 100 %",
            ),
            put_tax(
                json!({"rate": "1e2"}),
                invalid("rate"),
                "exponent rate on update",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_customer_field_with_an_invalid_enum_or_format_is_a_422_naming_the_field_and_writes_nothing()
 {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    // When a field holds a value outside its enum or format
    // Then the 422 carries Lago's code for that field, and nothing changes
    assert_refused(
        &api,
        vec![
            post_customer(
                customer_with("currency", json!("euro")),
                invalid("currency"),
                "currency name",
            ),
            post_customer(
                customer_with("currency", json!("XYZ")),
                invalid("currency"),
                "unknown ISO-shaped currency",
            ),
            post_customer(
                customer_with("currency", json!("eur")),
                invalid("currency"),
                "lower-case currency",
            ),
            post_customer(
                customer_with("timezone", json!("Mars/Olympus")),
                json!({"timezone": ["invalid_timezone"]}),
                "unknown timezone",
            ),
            post_customer(
                customer_with("account_type", json!("vip")),
                invalid("account_type"),
                "unknown account_type",
            ),
            post_customer(
                customer_with("customer_type", json!("robot")),
                invalid("customer_type"),
                "unknown customer_type",
            ),
            post_customer(
                customer_with("finalize_zero_amount_invoice", json!("maybe")),
                invalid("finalize_zero_amount_invoice"),
                "unknown finalize_zero_amount_invoice",
            ),
            post_customer(
                customer_with("country", json!("France")),
                json!({"country": ["not_a_valid_country_code"]}),
                "country name",
            ),
            post_customer(
                customer_with("email", json!("not-an-email")),
                json!({"email": ["invalid_email_format"]}),
                "malformed email",
            ),
            post_customer(
                customer_with("net_payment_term", json!(-1)),
                invalid("net_payment_term"),
                "negative net_payment_term",
            ),
            post_customer(
                customer_with(
                    "billing_configuration",
                    json!({"payment_provider": "paypal"}),
                ),
                invalid("payment_provider"),
                "unknown payment provider",
            ),
            post_customer(
                customer_with("billing_configuration", json!({"invoice_grace_period": -2})),
                invalid("invoice_grace_period"),
                "negative grace period",
            ),
            post_customer(
                customer_with(
                    "billing_configuration",
                    json!({"subscription_invoice_issuing_date_anchor": "tomorrow"}),
                ),
                invalid("subscription_invoice_issuing_date_anchor"),
                "unknown issuing date anchor",
            ),
            post_customer(
                new_customer_with("currency", json!("euro")),
                invalid("currency"),
                "invalid currency on a new customer",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn an_organization_field_with_an_invalid_enum_or_format_is_a_422_naming_the_field_and_writes_nothing()
 {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    // When a field holds a value outside its enum or format
    // Then the 422 carries Lago's code for that field, and nothing changes
    assert_refused(
        &api,
        vec![
            put_organization(
                json!({"default_currency": "euro"}),
                invalid("default_currency"),
                "currency name",
            ),
            put_organization(
                json!({"timezone": "Nowhere/City"}),
                json!({"timezone": ["invalid_timezone"]}),
                "unknown timezone",
            ),
            put_organization(
                json!({"document_numbering": "per_planet"}),
                invalid("document_numbering"),
                "unknown document_numbering",
            ),
            put_organization(
                json!({"country": "France"}),
                json!({"country": ["not_a_valid_country_code"]}),
                "country name",
            ),
            put_organization(
                json!({"net_payment_term": -1}),
                invalid("net_payment_term"),
                "negative net_payment_term",
            ),
            put_organization(
                json!({"email_settings": ["invoice.paid"]}),
                json!({"email_settings": ["unsupported_value"]}),
                "unknown email setting",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_duplicate_code_is_a_422_value_already_exist_and_writes_nothing() {
    // Given an organization with metrics `storage` and `calls`, and taxes `vat` and `gst`
    let api = seeded().await;
    api.create(
        "billable_metrics",
        "billable_metric",
        json!({"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}),
    )
    .await;
    api.tax("gst").await;
    let duplicate = || json!({"code": ["value_already_exist"]});
    // When a create reuses a code, or an update renames onto one
    // Then Lago's 422 value_already_exist, and nothing changes
    assert_refused(
        &api,
        vec![
            post_metric(
                json!({"name": "Other", "code": "storage", "aggregation_type": "count_agg"}),
                duplicate(),
                "create with a taken code",
            ),
            Refusal {
                method: Method::PUT,
                path: "/api/v1/billable_metrics/calls",
                body: json!({"billable_metric": {"code": "storage"}}),
                details: duplicate(),
                case: "rename onto a taken code",
            },
            post_tax(
                json!({"name": "Other", "code": "vat", "rate": "1"}),
                duplicate(),
                "create with a taken code",
            ),
            Refusal {
                method: Method::PUT,
                path: "/api/v1/taxes/gst",
                body: json!({"tax": {"code": "vat", "rate": "3"}}),
                details: duplicate(),
                case: "rename onto a taken code",
            },
        ],
    )
    .await;
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_a_413_and_writes_nothing() {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    let before = snapshot(&api).await;
    for write in writes() {
        // When the body is one byte over the limit (valid JSON, padded with spaces)
        let mut body = json!({ write.root: {"name": "Big", "code": "big", "external_id": "big"} })
            .to_string()
            .into_bytes();
        body.resize(lago::error::BODY_LIMIT_BYTES + 1, b' ');
        let reply = send_bytes(&api, &write.method, write.path, &body).await;
        // Then it is refused before being read
        reply.assert_error(
            413,
            json!({"status": 413, "error": "Payload Too Large", "code": "payload_too_large"}),
            &format!("{} {}", write.method, write.path),
        );
    }
    // And nothing changed
    assert_eq!(
        snapshot(&api).await,
        before,
        "a refused request wrote something"
    );
}

#[tokio::test]
async fn a_body_of_exactly_the_size_limit_is_accepted() {
    // Given an organization
    let api = Api::start().await;
    // When a valid create is padded with spaces to exactly the limit
    let mut body = json!({"tax": {"name": "GST", "code": "gst", "rate": "10"}})
        .to_string()
        .into_bytes();
    body.resize(lago::error::BODY_LIMIT_BYTES, b' ');
    let reply = send_bytes(&api, &Method::POST, "/api/v1/taxes", &body).await;
    // Then it is served
    assert_eq!(
        reply.ok("tax")["code"],
        json!("gst"),
        "the tax at the limit"
    );
}

#[tokio::test]
async fn a_record_too_large_to_store_is_a_422_not_a_server_error_and_writes_nothing() {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    // A text field of 500 kB fits the body limit but not a DynamoDB item (400 kB)
    let huge = json!("x".repeat(500_000));
    let too_long = || json!({"base": ["value_is_too_long"]});
    // When it is sent to each resource
    // Then it is refused as too long rather than failing in the store
    assert_refused(
        &api,
        vec![
            post_metric(
                metric_with("description", huge.clone()),
                too_long(),
                "metric description",
            ),
            put_metric(
                json!({"description": huge}),
                too_long(),
                "metric description on update",
            ),
            post_tax(
                tax_with("description", huge.clone()),
                too_long(),
                "tax description",
            ),
            put_tax(
                json!({"description": huge}),
                too_long(),
                "tax description on update",
            ),
            post_customer(
                new_customer_with("legal_name", huge.clone()),
                too_long(),
                "new customer legal_name",
            ),
            post_customer(
                customer_with("legal_name", huge.clone()),
                too_long(),
                "customer legal_name",
            ),
            put_organization(
                json!({"legal_name": huge}),
                too_long(),
                "organization legal_name",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_customer_grown_past_the_store_limit_by_successive_upserts_is_a_422() {
    // Given a customer whose legal name alone takes 300 kB
    let api = Api::start().await;
    let big = "x".repeat(300_000);
    let reply = api
        .post(
            "/api/v1/customers",
            json!({"customer": {"external_id": "cus_1", "legal_name": big}}),
        )
        .await;
    reply.ok("customer");
    let before = snapshot(&api).await;
    // When another upsert adds 300 kB more in another field
    let reply = api
        .post(
            "/api/v1/customers",
            json!({"customer": {"external_id": "cus_1", "address_line1": "y".repeat(300_000)}}),
        )
        .await;
    // Then the record would not fit: 422, and the customer is unchanged
    reply.assert_error(
        422,
        unprocessable(json!({"base": ["value_is_too_long"]})),
        "second upsert",
    );
    assert_eq!(
        snapshot(&api).await,
        before,
        "the refused upsert wrote something"
    );
}

#[tokio::test]
async fn an_unknown_route_is_lagos_json_404_with_or_without_a_key() {
    // Given an organization
    let api = Api::start().await;
    let paths = [
        (Method::GET, "/"),
        (Method::GET, "/api/v1"),
        (Method::GET, "/api/v1/does_not_exist"),
        (Method::POST, "/api/v1/does_not_exist"),
        (Method::GET, "/api/v2/taxes"),
        (Method::GET, "/api/v1/taxes/vat/extra"),
        (Method::DELETE, "/api/v1/customers/cus_1/nested/path"),
    ];
    for (method, path) in paths {
        for with_key in [true, false] {
            // When a path no route serves is called
            let reply = if with_key {
                api.send(method.clone(), path, None).await
            } else {
                api.send_raw(method.clone(), path, None, Vec::new()).await
            };
            // Then lago-api's catch-all answer: 404 resource_not_found, as JSON
            reply.assert_error(
                404,
                not_found("resource"),
                &format!("{method} {path} (key: {with_key})"),
            );
        }
    }
}

#[tokio::test]
async fn an_unsupported_method_on_a_known_route_is_a_json_405_and_writes_nothing() {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    let before = snapshot(&api).await;
    let body = json!({"tax": {"name": "X", "code": "x", "rate": "1"}});
    let calls = [
        (Method::PATCH, "/api/v1/taxes/vat"),
        (Method::POST, "/api/v1/taxes/vat"),
        (Method::DELETE, "/api/v1/taxes"),
        (Method::PUT, "/api/v1/taxes"),
        (Method::PATCH, "/api/v1/billable_metrics/storage"),
        (Method::POST, "/api/v1/billable_metrics/storage"),
        (Method::PUT, "/api/v1/billable_metrics"),
        (Method::PUT, "/api/v1/customers/cus_1"),
        (Method::PATCH, "/api/v1/customers/cus_1"),
        (Method::DELETE, "/api/v1/customers"),
        (Method::POST, "/api/v1/organizations"),
        (Method::DELETE, "/api/v1/organizations"),
    ];
    for (method, path) in calls {
        // When a known path is called with a method it does not serve
        let reply = api.send(method.clone(), path, Some(&body)).await;
        // Then a JSON 405 in Lago's envelope (code as in the spec's example)
        reply.assert_error(
            405,
            json!({"status": 405, "error": "Method Not Allowed", "code": "not_allowed"}),
            &format!("{method} {path}"),
        );
    }
    // And nothing changed
    assert_eq!(
        snapshot(&api).await,
        before,
        "a refused request wrote something"
    );
}

#[tokio::test]
async fn an_unknown_code_or_external_id_is_the_resources_404_and_writes_nothing() {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    let before = snapshot(&api).await;
    let calls = [
        (
            Method::GET,
            "/api/v1/billable_metrics/nope",
            None,
            "billable_metric",
        ),
        (
            Method::PUT,
            "/api/v1/billable_metrics/nope",
            Some(json!({"billable_metric": {"name": "X"}})),
            "billable_metric",
        ),
        (
            Method::DELETE,
            "/api/v1/billable_metrics/nope",
            None,
            "billable_metric",
        ),
        (Method::GET, "/api/v1/taxes/nope", None, "tax"),
        (
            Method::PUT,
            "/api/v1/taxes/nope",
            Some(json!({"tax": {"rate": "1"}})),
            "tax",
        ),
        (Method::DELETE, "/api/v1/taxes/nope", None, "tax"),
        (Method::GET, "/api/v1/customers/nope", None, "customer"),
        (Method::DELETE, "/api/v1/customers/nope", None, "customer"),
        // A code differing only in case is another code.
        (Method::GET, "/api/v1/taxes/VAT", None, "tax"),
        (Method::GET, "/api/v1/customers/CUS_1", None, "customer"),
    ];
    for (method, path, body, resource) in calls {
        // When the key names no record of the organization
        let reply = api.send(method.clone(), path, body.as_ref()).await;
        // Then Lago's 404 <resource>_not_found
        reply.assert_error(404, not_found(resource), &format!("{method} {path}"));
    }
    // And nothing changed
    assert_eq!(
        snapshot(&api).await,
        before,
        "a refused request wrote something"
    );
}

#[tokio::test]
async fn a_customer_with_an_unknown_tax_code_is_a_404_tax_not_found_and_writes_nothing() {
    // Given an organization with tax `vat` and customer `cus_1`
    let api = seeded().await;
    let before = snapshot(&api).await;
    let bodies = [
        (
            json!({"external_id": "cus_new", "tax_codes": ["nope"]}),
            "a new customer",
        ),
        (
            json!({"external_id": "cus_new", "tax_codes": ["vat", "nope"]}),
            "one known, one unknown",
        ),
        (
            json!({"external_id": "cus_1", "name": "Changed", "tax_codes": ["nope"]}),
            "an existing customer",
        ),
    ];
    for (customer, case) in bodies {
        // When an upsert applies a tax the organization does not have
        let reply = api
            .post("/api/v1/customers", json!({ "customer": customer }))
            .await;
        // Then Lago's 404 tax_not_found
        reply.assert_error(404, not_found("tax"), case);
    }
    // And no customer was created or changed
    assert_eq!(
        snapshot(&api).await,
        before,
        "a refused upsert wrote something"
    );
}

#[tokio::test]
async fn list_paging_parameters_that_are_not_positive_integers_are_a_422() {
    // Given an organization
    let api = Api::start().await;
    for plural in ["billable_metrics", "taxes", "customers"] {
        for (query, field) in [
            ("page=0", "page"),
            ("page=abc", "page"),
            ("page=-1", "page"),
            ("per_page=0", "per_page"),
            ("per_page=1.5", "per_page"),
        ] {
            // When a list is asked with a bad paging parameter
            let reply = api.get(&format!("/api/v1/{plural}?{query}")).await;
            // Then the parameter is named in a 422
            reply.assert_error(
                422,
                unprocessable(invalid(field)),
                &format!("{plural}?{query}"),
            );
        }
    }
}

#[tokio::test]
async fn a_key_longer_than_any_stored_one_is_the_resources_404_not_a_server_error() {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    let before = snapshot(&api).await;
    // A key of 2,000 characters: longer than a code may be, and than DynamoDB's sort key
    let long = "k".repeat(2_000);
    let calls = [
        (Method::GET, "billable_metrics", None, "billable_metric"),
        (
            Method::PUT,
            "billable_metrics",
            Some(json!({"billable_metric": {"name": "X"}})),
            "billable_metric",
        ),
        (Method::DELETE, "billable_metrics", None, "billable_metric"),
        (Method::GET, "taxes", None, "tax"),
        (
            Method::PUT,
            "taxes",
            Some(json!({"tax": {"rate": "1"}})),
            "tax",
        ),
        (Method::DELETE, "taxes", None, "tax"),
        (Method::GET, "customers", None, "customer"),
        (Method::DELETE, "customers", None, "customer"),
    ];
    for (method, plural, body, resource) in calls {
        // When a record is addressed by it
        let path = format!("/api/v1/{plural}/{long}");
        let reply = api.send(method.clone(), &path, body.as_ref()).await;
        // Then no such record exists
        reply.assert_error(
            404,
            not_found(resource),
            &format!("{method} {plural}/<2000 chars>"),
        );
    }
    // When it is sent as a tax code or an external id
    let reply = api
        .post(
            "/api/v1/customers",
            json!({"customer": {"external_id": "cus_1", "tax_codes": [long]}}),
        )
        .await;
    reply.assert_error(
        404,
        not_found("tax"),
        "tax_codes with a 2000-character code",
    );
    let reply = api
        .post(
            "/api/v1/customers",
            json!({"customer": {"external_id": long}}),
        )
        .await;
    reply.assert_error(
        422,
        unprocessable(invalid("external_id")),
        "a 2000-character external_id",
    );
    // And nothing changed
    assert_eq!(
        snapshot(&api).await,
        before,
        "a refused request wrote something"
    );
}

#[tokio::test]
async fn a_path_key_that_is_not_utf8_is_a_json_400() {
    // Given an organization with a metric, a tax and a customer
    let api = seeded().await;
    for (method, path) in [
        (Method::GET, "/api/v1/taxes/%FF"),
        (Method::DELETE, "/api/v1/billable_metrics/%C3%28"),
        (Method::GET, "/api/v1/customers/%FFcus"),
    ] {
        // When a path segment decodes to bytes that are not UTF-8
        let reply = api.send(method.clone(), path, None).await;
        // Then the answer is a JSON 400 with Lago's `status` and `error`, not a text page
        let case = format!("{method} {path}");
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{case}: {reply:#?}");
        assert_eq!(
            reply.content_type.as_deref(),
            Some("application/json"),
            "{case}"
        );
        assert_eq!(reply.body["status"], json!(400), "{case}");
    }
}

#[tokio::test]
async fn a_tax_code_repeated_in_tax_codes_applies_the_tax_once() {
    // Given an organization with tax `vat`
    let api = Api::start().await;
    let vat = api.tax("vat").await;
    // When a customer lists it twice
    let reply = api
        .post(
            "/api/v1/customers",
            json!({"customer": {"external_id": "cus_1", "tax_codes": ["vat", "vat"]}}),
        )
        .await;
    // Then the tax applies once
    assert_eq!(reply.ok("customer")["taxes"], json!([vat]), "taxes");
}

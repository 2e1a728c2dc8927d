//! Lago's semantics per resource (API_CONTRACT §4.2 billable metrics, §4.4 customers, §4.8
//! taxes, §4.14 organizations, §2.5 pagination): the objects returned, partial updates and
//! code renames, the customer upsert, deletes that return the deleted object, list `meta`, and
//! one customer out of twenty concurrent upserts.

mod support;

use http::StatusCode;
use serde_json::{Value, json};
use support::{Api, not_found, unprocessable};

/// A Lago id: a lowercase hyphenated UUID.
fn is_uuid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 36
            && s.char_indices().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
                }
            })
    })
}

/// Lago's date-time: `YYYY-MM-DDTHH:MM:SSZ` (second precision, UTC).
fn is_lago_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ").is_ok())
}

/// Asserts that `object` holds every field of `expected` with that value.
fn assert_fields(object: &Value, expected: &Value, case: &str) {
    let Some(expected) = expected.as_object() else {
        panic!("{case}: expected fields must be an object")
    };
    for (field, value) in expected {
        assert_eq!(
            object.get(field),
            Some(value),
            "{case}: field {field} of {object:#}"
        );
    }
}

/// `object` without the fields named.
fn without(object: &Value, fields: &[&str]) -> Value {
    let mut o = object.clone();
    if let Some(map) = o.as_object_mut() {
        for f in fields {
            map.remove(*f);
        }
    }
    o
}

/// The codes (or external ids) of a list, in order.
fn keys(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item[key].as_str().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Billable metrics
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn creating_a_metric_answers_lagos_billable_metric_object_and_get_returns_the_same() {
    // Given an organization
    let api = Api::start().await;
    // When a metric is created with every documented field
    let created = api
        .create(
            "billable_metrics",
            "billable_metric",
            json!({"name": "Storage", "code": "storage", "description": "GB stored",
                   "aggregation_type": "sum_agg", "field_name": "gb", "recurring": true,
                   "rounding_function": "round", "rounding_precision": 2,
                   "expression": "event.properties.gb * 2",
                   "filters": [{"key": "region", "values": ["us", "eu"]},
                               {"key": "cloud", "values": ["aws"]}]}),
        )
        .await;
    // Then the BillableMetricObject carries them, filters ordered by key as lago-api does
    assert!(
        is_uuid(&created["lago_id"]),
        "lago_id {}",
        created["lago_id"]
    );
    assert!(
        is_lago_time(&created["created_at"]),
        "created_at {}",
        created["created_at"]
    );
    assert_fields(
        &created,
        &json!({"name": "Storage", "code": "storage", "description": "GB stored",
                "aggregation_type": "sum_agg", "field_name": "gb", "recurring": true,
                "rounding_function": "round", "rounding_precision": 2,
                "expression": "event.properties.gb * 2", "weighted_interval": null,
                "filters": [{"key": "cloud", "values": ["aws"]},
                            {"key": "region", "values": ["us", "eu"]}]}),
        "created metric",
    );
    // And GET answers the same object
    let fetched = api.get("/api/v1/billable_metrics/storage").await;
    assert_eq!(fetched.ok("billable_metric"), &created, "GET after create");
}

#[tokio::test]
async fn a_minimal_metric_gets_lagos_defaults() {
    // Given an organization
    let api = Api::start().await;
    // When a count metric is created with only the required fields
    let created = api
        .create(
            "billable_metrics",
            "billable_metric",
            json!({"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}),
        )
        .await;
    // Then the optional fields are null, recurring false and filters empty
    assert_fields(
        &created,
        &json!({"description": null, "recurring": false, "field_name": null,
                "rounding_function": null, "rounding_precision": null, "expression": null,
                "weighted_interval": null, "filters": []}),
        "minimal metric",
    );
}

#[tokio::test]
async fn every_aggregation_type_is_accepted_and_recurring_only_where_lago_allows_it() {
    // Given an organization
    let api = Api::start().await;
    // Lago refuses recurring for count, max and latest (BillableMetric#validate_recurring)
    let cases = [
        ("count_agg", true),
        ("sum_agg", false),
        ("max_agg", true),
        ("unique_count_agg", false),
        ("weighted_sum_agg", false),
        ("latest_agg", true),
    ];
    let mut created = 0;
    for (aggregation_type, recurring_refused) in cases {
        for recurring in [false, true] {
            // When a metric of the type is created, recurring or not
            let code = format!("{aggregation_type}_{recurring}");
            let reply = api
                .post(
                    "/api/v1/billable_metrics",
                    json!({"billable_metric": {"name": "M", "code": code,
                           "aggregation_type": aggregation_type, "field_name": "value",
                           "recurring": recurring}}),
                )
                .await;
            let case = format!("{aggregation_type} recurring={recurring}");
            // Then it is created, unless it is recurring where Lago forbids it
            if recurring && recurring_refused {
                reply.assert_error(
                    422,
                    unprocessable(json!({"recurring": ["not_compatible_with_aggregation_type"]})),
                    &case,
                );
            } else {
                let metric = reply.ok("billable_metric");
                assert_eq!(
                    metric["aggregation_type"],
                    json!(aggregation_type),
                    "{case}"
                );
                assert_eq!(metric["recurring"], json!(recurring), "{case}");
                created += 1;
            }
        }
    }
    // And only the accepted ones exist
    assert_eq!(
        api.count("billable_metrics").await,
        created,
        "metrics stored"
    );
    assert_eq!(created, 9, "six types, three of them also recurring");
}

#[tokio::test]
async fn field_name_is_mandatory_for_every_aggregation_type_except_count() {
    // Given an organization
    let api = Api::start().await;
    for aggregation_type in [
        "count_agg",
        "sum_agg",
        "max_agg",
        "unique_count_agg",
        "weighted_sum_agg",
        "latest_agg",
    ] {
        // When a metric is created without field_name
        let reply = api
            .post(
                "/api/v1/billable_metrics",
                json!({"billable_metric": {"name": "M", "code": aggregation_type,
                       "aggregation_type": aggregation_type}}),
            )
            .await;
        // Then only count_agg is accepted
        if aggregation_type == "count_agg" {
            assert_eq!(
                reply.ok("billable_metric")["field_name"],
                json!(null),
                "count_agg"
            );
        } else {
            reply.assert_error(
                422,
                unprocessable(json!({"field_name": ["value_is_mandatory"]})),
                aggregation_type,
            );
        }
    }
    assert_eq!(
        api.count("billable_metrics").await,
        1,
        "only the count metric is stored"
    );
}

#[tokio::test]
async fn a_weighted_sum_is_weighted_in_seconds_and_other_types_carry_no_interval() {
    // Given an organization
    let api = Api::start().await;
    let cases = [
        (
            "weighted_sum_agg",
            json!(null),
            json!("seconds"),
            "weighted sum, interval absent",
        ),
        (
            "weighted_sum_agg",
            json!("seconds"),
            json!("seconds"),
            "weighted sum in seconds",
        ),
        ("sum_agg", json!(null), json!(null), "sum without interval"),
    ];
    for (i, (aggregation_type, interval, expected, case)) in cases.into_iter().enumerate() {
        // When the metric is created
        let mut fields = json!({"name": "Seats", "code": format!("seats_{i}"),
                                "aggregation_type": aggregation_type, "field_name": "seats"});
        if !interval.is_null() {
            fields["weighted_interval"] = interval;
        }
        let metric = api
            .create("billable_metrics", "billable_metric", fields)
            .await;
        // Then its interval is Lago's only one, and only on weighted sums
        assert_eq!(metric["weighted_interval"], expected, "{case}");
    }
}

#[tokio::test]
async fn rounding_function_and_precision_are_validated_and_returned() {
    // Given an organization
    let api = Api::start().await;
    let cases = [
        (json!("round"), json!(2), Ok(()), "round to 2 decimals"),
        (json!("ceil"), json!(null), Ok(()), "ceil to units"),
        (json!("floor"), json!(-1), Ok(()), "floor to tens"),
        (
            json!("truncate"),
            json!(2),
            Err(json!({"rounding_function": ["value_is_invalid"]})),
            "unknown function",
        ),
        (
            json!("round"),
            json!(29),
            Err(json!({"rounding_precision": ["value_is_invalid"]})),
            "beyond a decimal's 28 digits",
        ),
    ];
    for (i, (function, precision, expected, case)) in cases.into_iter().enumerate() {
        // When a metric is created with the rounding options
        let reply = api
            .post(
                "/api/v1/billable_metrics",
                json!({"billable_metric": {"name": "M", "code": format!("m_{i}"),
                       "aggregation_type": "sum_agg", "field_name": "v",
                       "rounding_function": function, "rounding_precision": precision}}),
            )
            .await;
        // Then valid options are returned as sent, invalid ones refused
        match expected {
            Ok(()) => assert_fields(
                reply.ok("billable_metric"),
                &json!({"rounding_function": function, "rounding_precision": precision}),
                case,
            ),
            Err(details) => reply.assert_error(422, unprocessable(details), case),
        }
    }
}

#[tokio::test]
async fn filters_are_validated_and_their_values_kept_once_in_order() {
    // Given an organization
    let api = Api::start().await;
    let cases = [
        (
            json!([{"key": "region", "values": ["eu", "us", "eu"]}]),
            Ok(json!([{"key": "region", "values": ["eu", "us"]}])),
            "a repeated value is kept once",
        ),
        (json!([]), Ok(json!([])), "no filters"),
        (
            json!([{"key": "region", "values": []}]),
            Err(json!({"filters": ["invalid_values"]})),
            "a key without values",
        ),
        (
            json!([{"key": " ", "values": ["eu"]}]),
            Err(json!({"filters": ["invalid_key"]})),
            "a blank key",
        ),
        (
            json!([{"key": "region", "values": ["eu"]}, {"key": "region", "values": ["us"]}]),
            Err(json!({"filters": ["duplicated_key"]})),
            "the same key twice",
        ),
    ];
    for (i, (filters, expected, case)) in cases.into_iter().enumerate() {
        // When a metric is created with the filters
        let reply = api
            .post(
                "/api/v1/billable_metrics",
                json!({"billable_metric": {"name": "M", "code": format!("m_{i}"),
                       "aggregation_type": "count_agg", "filters": filters}}),
            )
            .await;
        // Then valid filters are returned, invalid ones refused
        match expected {
            Ok(filters) => assert_eq!(reply.ok("billable_metric")["filters"], filters, "{case}"),
            Err(details) => reply.assert_error(422, unprocessable(details), case),
        }
    }
}

#[tokio::test]
async fn a_metric_update_changes_only_the_sent_fields_and_null_clears() {
    // Given a metric with every optional field set
    let api = Api::start().await;
    let original = api
        .create(
            "billable_metrics",
            "billable_metric",
            json!({"name": "Storage", "code": "storage", "description": "GB",
                   "aggregation_type": "sum_agg", "field_name": "gb",
                   "rounding_function": "ceil", "rounding_precision": 1,
                   "filters": [{"key": "region", "values": ["eu"]}]}),
        )
        .await;
    let steps = [
        (
            json!({"name": "Disk"}),
            json!({"name": "Disk"}),
            "a new name only",
        ),
        (
            json!({"description": null}),
            json!({"description": null}),
            "description cleared",
        ),
        (
            json!({"aggregation_type": "max_agg", "field_name": "peak_gb"}),
            json!({"aggregation_type": "max_agg", "field_name": "peak_gb"}),
            "another aggregation",
        ),
        (
            json!({"rounding_function": null, "rounding_precision": null}),
            json!({"rounding_function": null, "rounding_precision": null}),
            "rounding removed",
        ),
        (
            json!({"filters": []}),
            json!({"filters": []}),
            "filters removed",
        ),
    ];
    let mut expected = original.clone();
    for (fields, changed, case) in steps {
        // When a PUT sends some fields
        let reply = api
            .put(
                "/api/v1/billable_metrics/storage",
                json!({"billable_metric": fields}),
            )
            .await;
        // Then exactly those change; identity and creation time stay
        for (field, value) in changed.as_object().into_iter().flatten() {
            expected[field] = value.clone();
        }
        let updated = reply.ok("billable_metric");
        assert_eq!(updated, &expected, "{case}: the PUT answer");
        assert_eq!(
            api.get("/api/v1/billable_metrics/storage")
                .await
                .ok("billable_metric"),
            &expected,
            "{case}: GET after the PUT"
        );
    }
}

#[tokio::test]
async fn renaming_a_metric_moves_it_to_the_new_code() {
    // Given a metric `storage`
    let api = Api::start().await;
    let original = api.metric("storage").await;
    // When a PUT changes its code
    let reply = api
        .put(
            "/api/v1/billable_metrics/storage",
            json!({"billable_metric": {"code": "disk"}}),
        )
        .await;
    // Then the answer is the same metric under the new code
    let renamed = reply.ok("billable_metric").clone();
    let mut expected = original.clone();
    expected["code"] = json!("disk");
    assert_eq!(renamed, expected, "renamed metric");
    // And the old code is gone, the new one found, and there is still one metric
    api.get("/api/v1/billable_metrics/storage")
        .await
        .assert_error(404, not_found("billable_metric"), "GET old code");
    assert_eq!(
        api.get("/api/v1/billable_metrics/disk")
            .await
            .ok("billable_metric"),
        &renamed,
        "GET new code"
    );
    assert_eq!(
        api.count("billable_metrics").await,
        1,
        "metrics after the rename"
    );
    // And the old code is free again
    api.metric("storage").await;
    assert_eq!(
        api.count("billable_metrics").await,
        2,
        "metrics after reusing the old code"
    );
}

#[tokio::test]
async fn deleting_a_metric_returns_it_and_it_is_gone() {
    // Given a metric `storage`
    let api = Api::start().await;
    let original = api.metric("storage").await;
    // When it is deleted
    let reply = api.delete("/api/v1/billable_metrics/storage").await;
    // Then the answer is the deleted metric
    assert_eq!(reply.ok("billable_metric"), &original, "DELETE answer");
    // And it can be neither read, changed nor deleted again
    api.get("/api/v1/billable_metrics/storage")
        .await
        .assert_error(404, not_found("billable_metric"), "GET after delete");
    api.put(
        "/api/v1/billable_metrics/storage",
        json!({"billable_metric": {"name": "X"}}),
    )
    .await
    .assert_error(404, not_found("billable_metric"), "PUT after delete");
    api.delete("/api/v1/billable_metrics/storage")
        .await
        .assert_error(404, not_found("billable_metric"), "DELETE after delete");
    assert_eq!(
        api.count("billable_metrics").await,
        0,
        "metrics after delete"
    );
}

// ---------------------------------------------------------------------------------------------
// Taxes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_tax_rate_is_a_decimal_string_in_and_a_number_out() {
    // Given an organization
    let api = Api::start().await;
    let cases = [
        (json!("20.0"), json!(20), "a whole rate"),
        (json!("5.5"), json!(5.5), "a fractional rate"),
        (json!("0"), json!(0), "zero"),
        (json!("100"), json!(100), "the maximum"),
        (
            json!(8.5),
            json!(8.5),
            "a JSON number, as lago-python-client sends it",
        ),
    ];
    for (i, (rate, expected, case)) in cases.into_iter().enumerate() {
        // When a tax is created with the rate
        let tax = api
            .create(
                "taxes",
                "tax",
                json!({"name": "T", "code": format!("t_{i}"), "rate": rate}),
            )
            .await;
        // Then TaxObject returns it as a number, with Lago's defaults
        assert!(is_uuid(&tax["lago_id"]), "{case}: lago_id");
        assert!(is_lago_time(&tax["created_at"]), "{case}: created_at");
        assert_fields(
            &tax,
            &json!({"rate": expected, "name": "T", "description": null,
                    "applied_to_organization": false}),
            case,
        );
    }
}

#[tokio::test]
async fn a_tax_update_is_partial_and_can_rename_the_code() {
    // Given a tax `vat` with a description
    let api = Api::start().await;
    let original = api
        .create(
            "taxes",
            "tax",
            json!({"name": "VAT", "code": "vat", "rate": "20", "description": "France"}),
        )
        .await;
    // When only the rate is sent
    let reply = api
        .put("/api/v1/taxes/vat", json!({"tax": {"rate": "5.5"}}))
        .await;
    // Then only the rate changes
    let mut expected = original.clone();
    expected["rate"] = json!(5.5);
    assert_eq!(reply.ok("tax"), &expected, "rate update");
    // When the code is changed and the description cleared
    let reply = api
        .put(
            "/api/v1/taxes/vat",
            json!({"tax": {"code": "vat_fr", "description": null}}),
        )
        .await;
    // Then the tax moved to the new code
    expected["code"] = json!("vat_fr");
    expected["description"] = json!(null);
    assert_eq!(reply.ok("tax"), &expected, "rename");
    api.get("/api/v1/taxes/vat")
        .await
        .assert_error(404, not_found("tax"), "GET old code");
    assert_eq!(
        api.get("/api/v1/taxes/vat_fr").await.ok("tax"),
        &expected,
        "GET new code"
    );
    assert_eq!(api.count("taxes").await, 1, "taxes after the rename");
}

#[tokio::test]
async fn deleting_a_tax_returns_it_and_it_is_gone() {
    // Given a tax `vat`
    let api = Api::start().await;
    let original = api.tax("vat").await;
    // When it is deleted
    let reply = api.delete("/api/v1/taxes/vat").await;
    // Then the answer is the deleted tax, and it is gone
    assert_eq!(reply.ok("tax"), &original, "DELETE answer");
    api.get("/api/v1/taxes/vat")
        .await
        .assert_error(404, not_found("tax"), "GET after delete");
    api.delete("/api/v1/taxes/vat").await.assert_error(
        404,
        not_found("tax"),
        "DELETE after delete",
    );
    assert_eq!(api.count("taxes").await, 0, "taxes after delete");
}

#[tokio::test]
async fn a_tax_applied_to_the_organization_is_listed_in_the_organizations_taxes() {
    // Given an organization with taxes `vat` and `gst`
    let api = Api::start().await;
    api.tax("vat").await;
    api.tax("gst").await;
    let org_taxes = |reply: support::Reply| keys(&reply.ok("organization")["taxes"], "code");
    assert!(
        org_taxes(api.get("/api/v1/organizations").await).is_empty(),
        "no default taxes at first"
    );
    // When `vat` is applied to the organization
    api.put(
        "/api/v1/taxes/vat",
        json!({"tax": {"applied_to_organization": true}}),
    )
    .await
    .ok("tax");
    // Then the organization lists it
    assert_eq!(
        org_taxes(api.get("/api/v1/organizations").await),
        ["vat"],
        "after applying vat"
    );
    // When it is no longer applied
    api.put(
        "/api/v1/taxes/vat",
        json!({"tax": {"applied_to_organization": false}}),
    )
    .await
    .ok("tax");
    // Then the organization lists none
    assert!(
        org_taxes(api.get("/api/v1/organizations").await).is_empty(),
        "after removing vat"
    );
}

// ---------------------------------------------------------------------------------------------
// Customers
// ---------------------------------------------------------------------------------------------

/// A customer with every documented input field.
fn full_customer() -> Value {
    json!({
        "external_id": "cus_full", "name": "Acme", "firstname": "Jane", "lastname": "Doe",
        "email": "billing@acme.test", "currency": "EUR", "timezone": "Europe/Paris",
        "country": "FR", "address_line1": "1 rue de la Paix", "address_line2": "Bât. B",
        "city": "Paris", "state": "IDF", "zipcode": "75002", "legal_name": "Acme SAS",
        "legal_number": "123456789", "tax_identification_number": "FR123", "phone": "+33 1 23",
        "url": "https://acme.test", "logo_url": "https://acme.test/logo.png",
        "account_type": "customer", "customer_type": "company", "net_payment_term": 30,
        "finalize_zero_amount_invoice": "skip",
        "billing_configuration": {
            "invoice_grace_period": 3, "payment_provider": "stripe",
            "payment_provider_code": "stripe_eu", "provider_customer_id": "cus_stripe_1",
            "sync": true, "sync_with_provider": true, "document_locale": "fr",
            "subscription_invoice_issuing_date_anchor": "current_period_end",
            "subscription_invoice_issuing_date_adjustment": "keep_anchor",
            "provider_payment_methods": ["card", "sepa_debit"]
        },
        "shipping_address": {"address_line1": "2 quai", "address_line2": null, "city": "Lyon",
                             "state": null, "zipcode": "69001", "country": "FR"},
        "metadata": [{"key": "tier", "value": "gold", "display_in_invoice": true}],
        "tax_codes": ["vat"]
    })
}

#[tokio::test]
async fn posting_a_new_external_id_creates_the_customer_with_lagos_fields() {
    // Given an organization with tax `vat`
    let api = Api::start().await;
    let tax = api.tax("vat").await;
    let org = api
        .get("/api/v1/organizations")
        .await
        .ok("organization")
        .clone();
    // When a customer is posted with every field
    let customer = api.create("customers", "customer", full_customer()).await;
    // Then CustomerObjectExtended carries them
    assert!(is_uuid(&customer["lago_id"]), "lago_id");
    assert!(is_lago_time(&customer["created_at"]), "created_at");
    assert!(is_lago_time(&customer["updated_at"]), "updated_at");
    let input = full_customer();
    for field in [
        "external_id",
        "name",
        "firstname",
        "lastname",
        "email",
        "currency",
        "timezone",
        "country",
        "address_line1",
        "address_line2",
        "city",
        "state",
        "zipcode",
        "legal_name",
        "legal_number",
        "tax_identification_number",
        "phone",
        "url",
        "logo_url",
        "account_type",
        "customer_type",
        "net_payment_term",
        "finalize_zero_amount_invoice",
        "billing_configuration",
        "shipping_address",
    ] {
        assert_eq!(customer[field], input[field], "field {field}");
    }
    // And Lago's derived fields: the first sequential id, the slug from the organization's
    // prefix, the customer's own timezone, the metadata with ids and the taxes in full
    let prefix = org["document_number_prefix"].as_str().unwrap_or_default();
    assert_fields(
        &customer,
        &json!({"sequential_id": 1, "slug": format!("{prefix}-001"),
                "applicable_timezone": "Europe/Paris", "taxes": [tax]}),
        "derived fields",
    );
    let metadata = &customer["metadata"][0];
    assert!(is_uuid(&metadata["lago_id"]), "metadata lago_id {metadata}");
    assert_fields(
        metadata,
        &json!({"key": "tier", "value": "gold", "display_in_invoice": true}),
        "metadata",
    );
    // And GET answers the same object
    assert_eq!(
        api.get("/api/v1/customers/cus_full").await.ok("customer"),
        &customer,
        "GET after create"
    );
}

#[tokio::test]
async fn a_customer_without_a_timezone_is_billed_in_the_organizations() {
    // Given an organization in Europe/Berlin
    let api = Api::start().await;
    api.put(
        "/api/v1/organizations",
        json!({"organization": {"timezone": "Europe/Berlin"}}),
    )
    .await
    .ok("organization");
    // When a customer is created with only its external id
    let customer = api
        .create("customers", "customer", json!({"external_id": "cus_min"}))
        .await;
    // Then its own timezone is null and the applicable one the organization's; Lago's defaults
    assert_fields(
        &customer,
        &json!({"timezone": null, "applicable_timezone": "Europe/Berlin", "currency": null,
                "account_type": "customer", "finalize_zero_amount_invoice": "inherit",
                "name": null, "email": null, "metadata": [], "taxes": [],
                "net_payment_term": null}),
        "minimal customer",
    );
}

#[tokio::test]
async fn posting_an_existing_external_id_updates_it_keeping_absent_fields_and_clearing_nulls() {
    // Given a customer with every field
    let api = Api::start().await;
    api.tax("vat").await;
    api.tax("gst").await;
    let original = api.create("customers", "customer", full_customer()).await;
    let steps = [
        (
            json!({"city": "Marseille"}),
            json!({"city": "Marseille"}),
            "one field sent: only it changes",
        ),
        (
            json!({"timezone": null, "email": null, "legal_name": null}),
            json!({"timezone": null, "applicable_timezone": "UTC", "email": null,
                   "legal_name": null}),
            "nulls clear, the applicable timezone falls back to the organization's",
        ),
        (
            json!({"currency": "USD", "net_payment_term": 15}),
            json!({"currency": "USD", "net_payment_term": 15}),
            "currency changed while nothing was invoiced",
        ),
    ];
    let mut expected = original.clone();
    for (fields, changed, case) in steps {
        // When the same external id is posted again with some fields
        let mut body = fields.clone();
        body["external_id"] = json!("cus_full");
        let reply = api
            .post("/api/v1/customers", json!({ "customer": body }))
            .await;
        // Then it is the same customer, with exactly those fields changed
        for (field, value) in changed.as_object().into_iter().flatten() {
            expected[field] = value.clone();
        }
        let updated = reply.ok("customer");
        assert_eq!(
            without(updated, &["updated_at"]),
            without(&expected, &["updated_at"]),
            "{case}"
        );
    }
    // And there is still one customer, created once
    assert_eq!(api.count("customers").await, 1, "customers after upserts");
}

#[tokio::test]
async fn an_upsert_replaces_billing_configuration_fields_metadata_and_taxes_as_sent() {
    // Given a customer with every field and tax `vat`; and tax `gst`
    let api = Api::start().await;
    api.tax("vat").await;
    let gst = api.tax("gst").await;
    api.create("customers", "customer", full_customer()).await;
    // When billing_configuration sends one field, and metadata and taxes new lists
    let reply = api
        .post(
            "/api/v1/customers",
            json!({"customer": {"external_id": "cus_full",
                   "billing_configuration": {"invoice_grace_period": null, "document_locale": "de"},
                   "metadata": [{"key": "region", "value": "emea", "display_in_invoice": false}],
                   "tax_codes": ["gst"]}}),
        )
        .await;
    // Then inside billing_configuration absent fields are kept and null clears
    let customer = reply.ok("customer");
    let mut billing = full_customer()["billing_configuration"].clone();
    billing["invoice_grace_period"] = json!(null);
    billing["document_locale"] = json!("de");
    assert_eq!(
        customer["billing_configuration"], billing,
        "billing_configuration"
    );
    // And the lists are replaced
    assert_eq!(keys(&customer["metadata"], "key"), ["region"], "metadata");
    assert_eq!(
        customer["metadata"][0]["display_in_invoice"],
        json!(false),
        "metadata flag"
    );
    assert_eq!(customer["taxes"], json!([gst]), "taxes");
    // When empty lists are sent
    let reply = api
        .post(
            "/api/v1/customers",
            json!({"customer": {"external_id": "cus_full", "metadata": [], "tax_codes": []}}),
        )
        .await;
    // Then they are emptied
    assert_fields(
        reply.ok("customer"),
        &json!({"metadata": [], "taxes": []}),
        "empty lists",
    );
}

#[tokio::test]
async fn a_customers_tax_follows_the_tax_through_a_rename() {
    // Given a customer under tax `vat`
    let api = Api::start().await;
    api.tax("vat").await;
    api.create(
        "customers",
        "customer",
        json!({"external_id": "cus_1", "tax_codes": ["vat"]}),
    )
    .await;
    // When the tax's code is changed
    let renamed = api
        .put("/api/v1/taxes/vat", json!({"tax": {"code": "vat_fr"}}))
        .await
        .ok("tax")
        .clone();
    // Then the customer is still under that tax, by its new code (lago-api applies taxes by id)
    let customer = api.get("/api/v1/customers/cus_1").await;
    assert_eq!(
        customer.ok("customer")["taxes"],
        json!([renamed]),
        "taxes after the rename"
    );
}

#[tokio::test]
async fn a_deleted_tax_no_longer_applies_even_when_its_code_is_reused() {
    // Given a customer under tax `vat`
    let api = Api::start().await;
    api.tax("vat").await;
    api.create(
        "customers",
        "customer",
        json!({"external_id": "cus_1", "tax_codes": ["vat"]}),
    )
    .await;
    // When the tax is deleted
    api.delete("/api/v1/taxes/vat").await.ok("tax");
    // Then the customer has no tax
    let customer = api.get("/api/v1/customers/cus_1").await;
    assert_eq!(
        customer.ok("customer")["taxes"],
        json!([]),
        "after the delete"
    );
    // When another tax is created with the same code
    api.tax("vat").await;
    // Then it does not apply to the customer by accident
    let customer = api.get("/api/v1/customers/cus_1").await;
    assert_eq!(
        customer.ok("customer")["taxes"],
        json!([]),
        "after reusing the code"
    );
}

#[tokio::test]
async fn deleting_a_customer_returns_it_and_a_new_one_takes_the_next_sequential_id() {
    // Given customer `cus_1`
    let api = Api::start().await;
    let original = api.customer("cus_1").await;
    // When it is deleted
    let reply = api.delete("/api/v1/customers/cus_1").await;
    // Then the answer is the deleted customer, and it is gone
    assert_eq!(reply.ok("customer"), &original, "DELETE answer");
    api.get("/api/v1/customers/cus_1").await.assert_error(
        404,
        not_found("customer"),
        "GET after delete",
    );
    api.delete("/api/v1/customers/cus_1").await.assert_error(
        404,
        not_found("customer"),
        "DELETE after delete",
    );
    assert_eq!(api.count("customers").await, 0, "customers after delete");
    // When the external id is used again
    let again = api.customer("cus_1").await;
    // Then it is a new customer; sequential ids are never reused (Lago counts deleted ones)
    assert_ne!(again["lago_id"], original["lago_id"], "a new lago_id");
    assert_eq!(again["sequential_id"], json!(2), "the next sequential id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn twenty_concurrent_upserts_of_a_new_external_id_create_exactly_one_customer() {
    // Given an organization without customers
    let api = Api::start().await;
    // When twenty upserts of the same new external id race
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let api = api.clone();
        racers.spawn(async move {
            api.post(
                "/api/v1/customers",
                json!({"customer": {"external_id": "cus_race", "name": "Racer", "currency": "EUR"}}),
            )
            .await
        });
    }
    let replies = racers.join_all().await;
    // Then every one succeeds (no 5xx) and answers the same customer
    for reply in &replies {
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "a racing upsert failed: {reply:#?}"
        );
    }
    let first = replies[0].ok("customer").clone();
    for reply in &replies {
        let customer = reply.ok("customer");
        assert_eq!(
            customer["lago_id"], first["lago_id"],
            "two customers were created"
        );
        assert_eq!(
            customer["sequential_id"], first["sequential_id"],
            "the racers disagree on the customer's sequential id"
        );
    }
    // And exactly one customer exists, the one every racer answered
    assert_eq!(api.count("customers").await, 1, "customers after the race");
    let stored = api.get("/api/v1/customers/cus_race").await;
    assert_eq!(stored.ok("customer"), &first, "the stored customer");
    // And sequential ids stay unique: the next customer is numbered after it
    let next = api.customer("cus_next").await["sequential_id"].as_u64();
    assert!(
        next > first["sequential_id"].as_u64(),
        "the next customer is numbered {next:?}, not after {}",
        first["sequential_id"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_creates_of_distinct_customers_get_distinct_gapless_sequential_ids() {
    // Given an organization without customers
    let api = Api::start().await;
    // When ten different customers are created at once
    let mut creators = tokio::task::JoinSet::new();
    for i in 0..10 {
        let api = api.clone();
        creators.spawn(async move {
            api.post(
                "/api/v1/customers",
                json!({"customer": {"external_id": format!("cus_{i}")}}),
            )
            .await
        });
    }
    let replies = creators.join_all().await;
    // Then each succeeds with its own id, and together they number 1 to 10
    let mut ids: Vec<u64> = replies
        .iter()
        .map(|r| r.ok("customer")["sequential_id"].as_u64().unwrap_or(0))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=10).collect::<Vec<u64>>(), "sequential ids");
}

// ---------------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_list_pages_with_lagos_meta_including_the_empty_list() {
    // Given an organization
    let api = Api::start().await;
    let lists = [
        ("billable_metrics", "code"),
        ("taxes", "code"),
        ("customers", "external_id"),
    ];
    for (plural, _) in lists {
        // When a list is empty
        let reply = api.get(&format!("/api/v1/{plural}")).await;
        // Then Lago's zero meta: current_page 0
        assert_eq!(reply.ok(plural), &json!([]), "{plural} empty");
        assert_eq!(
            reply.body["meta"],
            json!({"current_page": 0, "next_page": null, "prev_page": null,
                   "total_pages": 0, "total_count": 0}),
            "{plural}: empty meta"
        );
    }
    // Given five records of each
    for i in 0..5 {
        api.metric(&format!("m_{i}")).await;
        api.tax(&format!("t_{i}")).await;
        api.customer(&format!("c_{i}")).await;
    }
    let meta = |current: u64, next: Value, prev: Value| {
        json!({"current_page": current, "next_page": next, "prev_page": prev,
               "total_pages": 3, "total_count": 5})
    };
    for (plural, key) in lists {
        // When the default page is asked
        let reply = api.get(&format!("/api/v1/{plural}")).await;
        // Then all five are on page 1 of 1 (Lago's default per_page is 100)
        assert_eq!(
            reply.ok(plural).as_array().map(Vec::len),
            Some(5),
            "{plural}: default page"
        );
        assert_eq!(
            reply.body["meta"],
            json!({"current_page": 1, "next_page": null, "prev_page": null,
                   "total_pages": 1, "total_count": 5}),
            "{plural}: default meta"
        );
        // When pages of two are asked, and one past the end
        let mut seen = Vec::new();
        for (page, expected_len, expected_meta) in [
            (1, 2, meta(1, json!(2), json!(null))),
            (2, 2, meta(2, json!(3), json!(1))),
            (3, 1, meta(3, json!(null), json!(2))),
            (4, 0, meta(4, json!(null), json!(3))),
        ] {
            let reply = api
                .get(&format!("/api/v1/{plural}?per_page=2&page={page}"))
                .await;
            // Then each page holds its share, with Lago's next/prev
            let items = reply.ok(plural).clone();
            assert_eq!(
                items.as_array().map(Vec::len),
                Some(expected_len),
                "{plural} page {page}"
            );
            assert_eq!(
                reply.body["meta"], expected_meta,
                "{plural} page {page} meta"
            );
            seen.extend(keys(&items, key));
        }
        // And the pages together hold every record once
        seen.sort();
        let mut all = keys(api.get(&format!("/api/v1/{plural}")).await.ok(plural), key);
        all.sort();
        assert_eq!(seen, all, "{plural}: pages partition the list");
    }
}

// ---------------------------------------------------------------------------------------------
// Organizations
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_new_organization_answers_lagos_organization_object() {
    // Given a new organization named Acme
    let api = Api::start().await;
    // When it is read
    let org = api
        .get("/api/v1/organizations")
        .await
        .ok("organization")
        .clone();
    // Then OrganizationObject carries its id and name and every documented setting
    assert!(is_uuid(&org["lago_id"]), "lago_id");
    assert!(is_lago_time(&org["created_at"]), "created_at");
    assert_fields(
        &org,
        &json!({"lago_id": api.org_id, "name": "Acme", "webhook_url": null, "webhook_urls": [],
                "country": null, "default_currency": "USD", "address_line1": null,
                "address_line2": null, "state": null, "zipcode": null, "email": null,
                "city": null, "legal_name": null, "legal_number": null,
                "document_numbering": "per_customer", "net_payment_term": 0,
                "tax_identification_number": null, "timezone": "UTC", "taxes": [],
                "billing_configuration": {"invoice_footer": null, "invoice_grace_period": 0,
                                          "document_locale": "en"}}),
        "new organization",
    );
    assert!(
        org["document_number_prefix"]
            .as_str()
            .is_some_and(|p| !p.is_empty()),
        "document_number_prefix {}",
        org["document_number_prefix"]
    );
    assert!(
        org["finalize_zero_amount_invoice"].is_boolean(),
        "finalize_zero_amount_invoice"
    );
}

#[tokio::test]
async fn an_organization_update_changes_only_the_sent_fields_and_null_clears() {
    // Given an organization
    let api = Api::start().await;
    let mut expected = api
        .get("/api/v1/organizations")
        .await
        .ok("organization")
        .clone();
    let steps = [
        (
            json!({"legal_name": "Acme SAS", "country": "FR", "default_currency": "EUR",
                   "timezone": "Europe/Paris", "document_numbering": "per_organization",
                   "document_number_prefix": "ACME", "net_payment_term": 30,
                   "email": "billing@acme.test", "webhook_url": "https://acme.test/hook",
                   "email_settings": ["invoice.finalized"], "finalize_zero_amount_invoice": false,
                   "billing_configuration": {"invoice_footer": "Thanks", "invoice_grace_period": 5,
                                             "document_locale": "fr"}}),
            json!({"legal_name": "Acme SAS", "country": "FR", "default_currency": "EUR",
                   "timezone": "Europe/Paris", "document_numbering": "per_organization",
                   "document_number_prefix": "ACME", "net_payment_term": 30,
                   "email": "billing@acme.test", "webhook_url": "https://acme.test/hook",
                   "webhook_urls": ["https://acme.test/hook"],
                   "email_settings": ["invoice.finalized"], "finalize_zero_amount_invoice": false,
                   "billing_configuration": {"invoice_footer": "Thanks", "invoice_grace_period": 5,
                                             "document_locale": "fr"}}),
            "many fields",
        ),
        (
            json!({"city": "Paris"}),
            json!({"city": "Paris"}),
            "one field: the others stay",
        ),
        (
            json!({"legal_name": null, "billing_configuration": {"invoice_footer": null}}),
            json!({"legal_name": null, "billing_configuration": {"invoice_footer": null,
                   "invoice_grace_period": 5, "document_locale": "fr"}}),
            "nulls clear, absent billing fields stay",
        ),
    ];
    for (fields, changed, case) in steps {
        // When a PUT sends some fields
        let reply = api
            .put("/api/v1/organizations", json!({"organization": fields}))
            .await;
        // Then exactly those change
        for (field, value) in changed.as_object().into_iter().flatten() {
            expected[field] = value.clone();
        }
        assert_eq!(reply.ok("organization"), &expected, "{case}: PUT answer");
        assert_eq!(
            api.get("/api/v1/organizations").await.ok("organization"),
            &expected,
            "{case}: GET after the PUT"
        );
    }
}

//! `/api/v1/plans` scenarios through the HTTP API, against DynamoDB in the AWS emulator.
//! Expected values come from API_CONTRACT §4.3 and SEMANTICS §3.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod plans_support;

use plans_support::{Api, not_found, unprocessable};
use serde_json::{Value, json};

const NOW: &str = "2024-03-10T12:00:00Z";

fn plan_body(code: &str, charges: Value) -> Value {
    json!({"plan": {
        "name": "Startup", "code": code, "interval": "monthly", "amount_cents": 10000,
        "amount_currency": "USD", "pay_in_advance": true, "trial_period": 5,
        "charges": charges,
    }})
}

/// One charge of each model on `metric_id`, with the properties of the contract's example.
fn every_model(metric_id: &str) -> Vec<(Value, Value)> {
    let charge = |model: &str, properties: Value| json!({"billable_metric_id": metric_id, "charge_model": model, "properties": properties});
    let cases = [
        ("standard", json!({"amount": "0.50"})),
        (
            "graduated",
            json!({"graduated_ranges": [
                {"from_value": 0, "to_value": 10, "flat_amount": "10", "per_unit_amount": "0.5"},
                {"from_value": 11, "to_value": null, "flat_amount": "0", "per_unit_amount": "0.4"}]}),
        ),
        (
            "package",
            json!({"amount": "30", "free_units": 100, "package_size": 1000}),
        ),
        (
            "percentage",
            json!({"rate": "1", "fixed_amount": "0.5", "free_units_per_events": 5,
                   "free_units_per_total_aggregation": "500",
                   "per_transaction_min_amount": "1.75", "per_transaction_max_amount": "3.75"}),
        ),
        (
            "volume",
            json!({"volume_ranges": [
                {"from_value": 0, "to_value": 100, "flat_amount": "0", "per_unit_amount": "0"},
                {"from_value": 101, "to_value": null, "flat_amount": "0", "per_unit_amount": "0.5"}]}),
        ),
        (
            "graduated_percentage",
            json!({"graduated_percentage_ranges": [
                {"from_value": 0, "to_value": 10, "rate": "1", "flat_amount": "10"},
                {"from_value": 11, "to_value": null, "rate": "0.5", "flat_amount": "0"}]}),
        ),
        ("dynamic", json!({})),
    ];
    cases
        .into_iter()
        .map(|(model, properties)| (charge(model, properties.clone()), properties))
        .collect()
}

#[tokio::test]
async fn a_plan_with_every_charge_model_echoes_its_properties_exactly() {
    // Given a sum metric and one charge per model
    let api = Api::start_at(NOW).await;
    let metric = api.metric("storage", "sum_agg", json!([])).await;
    let metric_id = metric["lago_id"].as_str().unwrap();
    let cases = every_model(metric_id);
    let charges: Vec<Value> = cases.iter().map(|(c, _)| c.clone()).collect();

    // When the plan is created
    let reply = api
        .post("/api/v1/plans", plan_body("startup", json!(charges)))
        .await;

    // Then every field is answered as the contract shapes it
    let plan = reply.ok("plan").clone();
    assert_eq!(plan["code"], "startup");
    assert_eq!(plan["name"], "Startup");
    assert_eq!(plan["interval"], "monthly");
    assert_eq!(plan["amount_cents"], 10000);
    assert_eq!(plan["amount_currency"], "USD");
    assert_eq!(plan["pay_in_advance"], true);
    assert_eq!(plan["trial_period"], json!(5.0));
    assert_eq!(
        plan["bill_charges_monthly"],
        Value::Null,
        "monthly plans answer null"
    );
    assert_eq!(plan["created_at"], "2024-03-10T12:00:00Z");
    for count in [
        "customers_count",
        "active_subscriptions_count",
        "draft_invoices_count",
    ] {
        assert_eq!(plan[count], 0, "{count}");
    }
    assert_eq!(plan["taxes"], json!([]));
    assert_eq!(plan["usage_thresholds"], json!([]));
    assert!(plan.get("minimum_commitment").is_none(), "absent when none");
    let got = plan["charges"].as_array().unwrap();
    assert_eq!(got.len(), cases.len());
    for (i, (charge, (sent, properties))) in got.iter().zip(&cases).enumerate() {
        let model = sent["charge_model"].as_str().unwrap();
        assert_eq!(charge["charge_model"], model);
        assert_eq!(&charge["properties"], properties, "{model}: echoed as sent");
        assert_eq!(charge["lago_billable_metric_id"], metric_id);
        assert_eq!(charge["billable_metric_code"], "storage");
        // Codes are generated from the metric code, unique within the plan.
        let code = if i == 0 {
            "storage".to_owned()
        } else {
            format!("storage_{}", i + 1)
        };
        assert_eq!(charge["code"], code.as_str(), "{model}");
        assert_eq!(charge["invoiceable"], true);
        assert_eq!(charge["pay_in_advance"], false);
        assert_eq!(charge["prorated"], false);
        assert_eq!(charge["min_amount_cents"], 0);
        assert_eq!(charge["regroup_paid_fees"], Value::Null);
        assert_eq!(charge["filters"], json!([]));
        assert!(charge["lago_id"].as_str().is_some_and(|id| !id.is_empty()));
    }

    // And reading it back answers the same object
    let shown = api.get("/api/v1/plans/startup").await;
    assert_eq!(shown.ok("plan"), &plan);
}

#[tokio::test]
async fn omitted_or_empty_properties_take_the_models_defaults() {
    // Given charges sent without properties, or with {} (API_CONTRACT §4.3.1)
    let api = Api::start_at(NOW).await;
    let metric = api.metric("calls", "sum_agg", json!([])).await;
    let id = metric["lago_id"].as_str().unwrap();
    let charges = json!([
        {"billable_metric_id": id, "charge_model": "standard", "properties": {}},
        {"billable_metric_id": id, "charge_model": "package"},
        {"billable_metric_id": id, "charge_model": "graduated", "properties": null},
        {"billable_metric_id": id, "charge_model": "percentage"},
    ]);
    // When the plan is created
    let plan = api
        .post("/api/v1/plans", plan_body("defaults", charges))
        .await
        .ok("plan")
        .clone();
    // Then each charge carries Lago's default properties
    let props: Vec<Value> = plan["charges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["properties"].clone())
        .collect();
    assert_eq!(
        props,
        vec![
            json!({"amount": "0"}),
            json!({"package_size": 1, "amount": "0", "free_units": 0}),
            json!({"graduated_ranges": [{"from_value": 0, "to_value": null,
                                         "per_unit_amount": "0", "flat_amount": "0"}]}),
            json!({"rate": "0"}),
        ]
    );
}

#[tokio::test]
async fn each_invalid_charge_is_refused_with_lagos_code_and_nothing_is_written() {
    // Given a sum metric and a count metric
    let api = Api::start_at(NOW).await;
    let sum = api.metric("gb", "sum_agg", json!([])).await["lago_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let count = api.metric("calls", "count_agg", json!([])).await["lago_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let gap = json!([{"from_value": 0, "to_value": 10, "flat_amount": "0", "per_unit_amount": "1"},
                     {"from_value": 12, "to_value": null, "flat_amount": "0", "per_unit_amount": "1"}]);
    let cases = [
        (
            "negative amount",
            json!({"billable_metric_id": sum, "charge_model": "standard", "properties": {"amount": "-1"}}),
            json!({"amount": ["invalid_amount"]}),
        ),
        (
            "amount as a JSON number",
            json!({"billable_metric_id": sum, "charge_model": "standard", "properties": {"amount": 5}}),
            json!({"amount": ["invalid_amount"]}),
        ),
        (
            "amount not a number",
            json!({"billable_metric_id": sum, "charge_model": "standard", "properties": {"amount": "abc"}}),
            json!({"amount": ["invalid_amount"]}),
        ),
        (
            "no graduated ranges",
            json!({"billable_metric_id": sum, "charge_model": "graduated", "properties": {"graduated_ranges": []}}),
            json!({"graduated_ranges": ["missing_graduated_ranges"]}),
        ),
        (
            "graduated ranges with a gap",
            json!({"billable_metric_id": sum, "charge_model": "graduated", "properties": {"graduated_ranges": gap}}),
            json!({"graduated_ranges": ["invalid_graduated_ranges"]}),
        ),
        (
            "graduated ranges not starting at 0 or 1",
            json!({"billable_metric_id": sum, "charge_model": "graduated", "properties": {"graduated_ranges": [{"from_value": 5, "to_value": null, "flat_amount": "0", "per_unit_amount": "1"}]}}),
            json!({"graduated_ranges": ["invalid_graduated_ranges"]}),
        ),
        (
            "graduated unit price not a decimal",
            json!({"billable_metric_id": sum, "charge_model": "graduated", "properties": {"graduated_ranges": [{"from_value": 0, "to_value": null, "flat_amount": "0", "per_unit_amount": "x"}]}}),
            json!({"amount": ["invalid_amount"]}),
        ),
        (
            "no volume ranges",
            json!({"billable_metric_id": sum, "charge_model": "volume", "properties": {"volume_ranges": []}}),
            json!({"volume_ranges": ["missing_volume_ranges"]}),
        ),
        (
            "volume ranges with an open middle",
            json!({"billable_metric_id": sum, "charge_model": "volume", "properties": {"volume_ranges": [{"from_value": 0, "to_value": null, "flat_amount": "0", "per_unit_amount": "1"}, {"from_value": 1, "to_value": null, "flat_amount": "0", "per_unit_amount": "1"}]}}),
            json!({"volume_ranges": ["invalid_volume_ranges"]}),
        ),
        (
            "no graduated percentage ranges",
            json!({"billable_metric_id": sum, "charge_model": "graduated_percentage", "properties": {"graduated_percentage_ranges": []}}),
            json!({"graduated_percentage_ranges": ["missing_graduated_percentage_ranges"]}),
        ),
        (
            "graduated percentage rate invalid",
            json!({"billable_metric_id": sum, "charge_model": "graduated_percentage", "properties": {"graduated_percentage_ranges": [{"from_value": 0, "to_value": null, "rate": "-2", "flat_amount": "0"}]}}),
            json!({"rate": ["invalid_rate"]}),
        ),
        (
            "package size zero",
            json!({"billable_metric_id": sum, "charge_model": "package", "properties": {"amount": "1", "package_size": 0, "free_units": 0}}),
            json!({"package_size": ["invalid_package_size"]}),
        ),
        (
            "package free units negative",
            json!({"billable_metric_id": sum, "charge_model": "package", "properties": {"amount": "1", "package_size": 10, "free_units": -1}}),
            json!({"free_units": ["invalid_free_units"]}),
        ),
        (
            "package without amount",
            json!({"billable_metric_id": sum, "charge_model": "package", "properties": {"package_size": 10, "free_units": 0}}),
            json!({"amount": ["invalid_amount"]}),
        ),
        (
            "percentage rate invalid",
            json!({"billable_metric_id": sum, "charge_model": "percentage", "properties": {"rate": "x"}}),
            json!({"rate": ["invalid_rate"]}),
        ),
        (
            "percentage rate as a number",
            json!({"billable_metric_id": sum, "charge_model": "percentage", "properties": {"rate": 1}}),
            json!({"rate": ["invalid_rate"]}),
        ),
        (
            "percentage fixed amount negative",
            json!({"billable_metric_id": sum, "charge_model": "percentage", "properties": {"rate": "1", "fixed_amount": "-1"}}),
            json!({"fixed_amount": ["invalid_fixed_amount"]}),
        ),
        (
            "percentage free events zero",
            json!({"billable_metric_id": sum, "charge_model": "percentage", "properties": {"rate": "1", "free_units_per_events": 0}}),
            json!({"free_units_per_events": ["invalid_free_units_per_events"]}),
        ),
        (
            "percentage min above max",
            json!({"billable_metric_id": sum, "charge_model": "percentage", "properties": {"rate": "1", "per_transaction_min_amount": "5", "per_transaction_max_amount": "1"}}),
            json!({"per_transaction_max_amount": ["invalid_per_transaction_max_amount"]}),
        ),
        (
            "unknown charge model",
            json!({"billable_metric_id": sum, "charge_model": "custom"}),
            json!({"charge_model": ["value_is_invalid"]}),
        ),
        (
            "dynamic on a count metric",
            json!({"billable_metric_id": count, "charge_model": "dynamic"}),
            json!({"charge_model": ["invalid_aggregation_type_or_charge_model"]}),
        ),
        (
            "volume in advance",
            json!({"billable_metric_id": sum, "charge_model": "volume", "pay_in_advance": true}),
            json!({"pay_in_advance": ["value_is_invalid"]}),
        ),
        (
            "not invoiceable in arrears",
            json!({"billable_metric_id": sum, "charge_model": "standard", "invoiceable": false}),
            json!({"invoiceable": ["value_is_invalid"]}),
        ),
        (
            "minimum spend in advance",
            json!({"billable_metric_id": sum, "charge_model": "standard", "pay_in_advance": true, "min_amount_cents": 100}),
            json!({"min_amount_cents": ["value_is_invalid"]}),
        ),
        (
            "prorated on a metered metric",
            json!({"billable_metric_id": sum, "charge_model": "standard", "prorated": true}),
            json!({"prorated": ["value_is_invalid"]}),
        ),
    ];
    for (case, charge, details) in cases {
        // When a plan with that charge is sent
        let reply = api
            .post("/api/v1/plans", plan_body("refused", json!([charge])))
            .await;
        // Then it is refused with Lago's code under Lago's field
        reply.assert_error(422, unprocessable(details), case);
    }
    // And no plan was written
    assert_eq!(api.total("/api/v1/plans", "plans").await, 0);
    api.get("/api/v1/plans/refused")
        .await
        .assert_error(404, not_found("plan"), "nothing stored");
}

#[tokio::test]
async fn required_plan_fields_and_unique_codes_are_enforced() {
    let api = Api::start_at(NOW).await;
    api.post(
        "/api/v1/plans",
        json!({"plan": {"name": "P", "amount_currency": "EUR", "interval": "daily"}}),
    )
    .await
    .assert_error(
        422,
        unprocessable(
            json!({"code": ["value_is_mandatory"], "interval": ["value_is_invalid"],
                             "amount_cents": ["value_is_mandatory"]}),
        ),
        "missing and invalid fields",
    );
    api.simple_plan("basic", "monthly", 1000, "EUR").await;
    api.post("/api/v1/plans", plan_body("basic", json!([])))
        .await
        .assert_error(
            422,
            unprocessable(json!({"code": ["value_already_exist"]})),
            "duplicate code",
        );
    let metric = api.metric("gb", "sum_agg", json!([])).await;
    let id = metric["lago_id"].as_str().unwrap();
    api.post(
        "/api/v1/plans",
        plan_body(
            "twice",
            json!([{"billable_metric_id": id, "charge_model": "standard", "code": "c"},
                   {"billable_metric_id": id, "charge_model": "standard", "code": "c"}]),
        ),
    )
    .await
    .assert_error(
        422,
        unprocessable(json!({"code": ["value_already_exist"]})),
        "duplicate charge code",
    );
    assert_eq!(api.total("/api/v1/plans", "plans").await, 1);
}

#[tokio::test]
async fn charges_name_an_existing_metric_of_the_organization_by_id_or_code() {
    let api = Api::start_at(NOW).await;
    let other = api.another_organization("Other").await;
    let foreign = other.metric("gb", "sum_agg", json!([])).await;
    api.metric("gb", "sum_agg", json!([])).await;
    for (case, charge) in [
        (
            "unknown id",
            json!({"billable_metric_id": "00000000-0000-0000-0000-000000000000", "charge_model": "standard"}),
        ),
        (
            "another organization's metric",
            json!({"billable_metric_id": foreign["lago_id"], "charge_model": "standard"}),
        ),
        (
            "unknown code",
            json!({"billable_metric_code": "nope", "charge_model": "standard"}),
        ),
    ] {
        api.post("/api/v1/plans", plan_body("p", json!([charge])))
            .await
            .assert_error(404, not_found("billable_metric"), case);
    }
    // A code is accepted as a convenience and answered with the metric's id.
    let plan = api
        .post(
            "/api/v1/plans",
            plan_body(
                "p",
                json!([{"billable_metric_code": "gb", "charge_model": "standard"}]),
            ),
        )
        .await
        .ok("plan")
        .clone();
    assert_eq!(plan["charges"][0]["billable_metric_code"], "gb");
    assert_ne!(
        plan["charges"][0]["lago_billable_metric_id"],
        foreign["lago_id"]
    );
}

#[tokio::test]
async fn filters_and_pricing_groups_follow_the_metrics_filters() {
    // Given a metric filtered by region and cloud
    let api = Api::start_at(NOW).await;
    let metric = api
        .metric(
            "compute",
            "sum_agg",
            json!([{"key": "region", "values": ["eu", "us"]},
                   {"key": "cloud", "values": ["aws", "gcp"]}]),
        )
        .await;
    let id = metric["lago_id"].as_str().unwrap();
    let filters = json!([
        {"invoice_display_name": "Europe", "values": {"region": ["eu"]}, "properties": {"amount": "2"}},
        {"values": {"region": ["__ALL_FILTER_VALUES__"], "cloud": ["aws"]},
         "properties": {"amount": "3", "pricing_group_keys": ["team"]}},
    ]);
    // When a charge with filters and pricing groups (one through the deprecated alias) is sent
    let plan = api
        .post(
            "/api/v1/plans",
            plan_body(
                "filtered",
                json!([
                    {"billable_metric_id": id, "charge_model": "standard",
                     "properties": {"amount": "1", "pricing_group_keys": ["tier"]},
                     "filters": filters},
                    {"billable_metric_id": id, "charge_model": "standard",
                     "properties": {"amount": "1", "grouped_by": ["tier"]}},
                ]),
            ),
        )
        .await
        .ok("plan")
        .clone();
    // Then both spellings are answered, and filters echo their values and properties
    let charge = &plan["charges"][0];
    assert_eq!(
        charge["properties"],
        json!({"amount": "1", "pricing_group_keys": ["tier"], "grouped_by": ["tier"]})
    );
    assert_eq!(
        plan["charges"][1]["properties"],
        json!({"amount": "1", "pricing_group_keys": ["tier"], "grouped_by": ["tier"]})
    );
    assert_eq!(
        charge["filters"],
        json!([
            {"invoice_display_name": "Europe", "values": {"region": ["eu"]},
             "properties": {"amount": "2"}},
            {"invoice_display_name": null,
             "values": {"region": ["__ALL_FILTER_VALUES__"], "cloud": ["aws"]},
             "properties": {"amount": "3", "pricing_group_keys": ["team"], "grouped_by": ["team"]}},
        ])
    );

    // And filters outside the metric's keys and values are refused, writing nothing
    for (case, filter, details) in [
        (
            "unknown value",
            json!({"values": {"region": ["asia"]}, "properties": {"amount": "1"}}),
            json!({"values": ["value_is_invalid"]}),
        ),
        (
            "unknown key",
            json!({"values": {"country": ["fr"]}, "properties": {"amount": "1"}}),
            json!({"values": ["value_is_invalid"]}),
        ),
        (
            "all values mixed with a value",
            json!({"values": {"region": ["eu", "__ALL_FILTER_VALUES__"]}, "properties": {"amount": "1"}}),
            json!({"values": ["value_is_invalid"]}),
        ),
        (
            "values not a list",
            json!({"values": {"region": "eu"}, "properties": {"amount": "1"}}),
            json!({"values": ["value_is_invalid"]}),
        ),
        (
            "no values",
            json!({"values": {}, "properties": {"amount": "1"}}),
            json!({"values": ["value_is_mandatory"]}),
        ),
        (
            "filter properties invalid for the model",
            json!({"values": {"region": ["eu"]}, "properties": {"amount": "-3"}}),
            json!({"amount": ["invalid_amount"]}),
        ),
    ] {
        api.post(
            "/api/v1/plans",
            plan_body(
                "bad_filter",
                json!([{"billable_metric_id": id, "charge_model": "standard",
                        "properties": {"amount": "1"}, "filters": [filter]}]),
            ),
        )
        .await
        .assert_error(422, unprocessable(details), case);
    }
    assert_eq!(api.total("/api/v1/plans", "plans").await, 1);
}

#[tokio::test]
async fn taxes_commitment_thresholds_and_metadata_are_stored_and_returned() {
    // Given two taxes
    let api = Api::start_at(NOW).await;
    api.tax("vat", "20").await;
    api.tax("reduced", "5.5").await;
    let metric = api.metric("gb", "sum_agg", json!([])).await;
    let id = metric["lago_id"].as_str().unwrap();
    // When a plan names them on itself, a charge and its minimum commitment
    let body = json!({"plan": {
        "name": "Tax", "code": "taxed", "interval": "yearly", "amount_cents": 120000,
        "amount_currency": "EUR", "pay_in_advance": false, "bill_charges_monthly": true,
        "invoice_display_name": "Taxed plan", "description": "With taxes",
        "tax_codes": ["vat"],
        "minimum_commitment": {"amount_cents": 5000, "invoice_display_name": "Minimum",
                               "tax_codes": ["reduced"]},
        "usage_thresholds": [{"amount_cents": 10000, "threshold_display_name": "First"},
                             {"amount_cents": 5000, "recurring": true}],
        "metadata": {"team": "growth", "empty": null},
        "charges": [{"billable_metric_id": id, "charge_model": "standard",
                     "properties": {"amount": "1"}, "tax_codes": ["reduced"],
                     "invoice_display_name": "Storage", "min_amount_cents": 300}],
    }});
    let plan = api.post("/api/v1/plans", body).await.ok("plan").clone();
    // Then taxes are resolved to tax objects, and everything else comes back
    let tax_codes = |taxes: &Value| -> Vec<Value> {
        taxes
            .as_array()
            .unwrap()
            .iter()
            .map(|t| json!([t["code"], t["rate"]]))
            .collect()
    };
    assert_eq!(tax_codes(&plan["taxes"]), vec![json!(["vat", 20])]);
    assert_eq!(
        tax_codes(&plan["charges"][0]["taxes"]),
        vec![json!(["reduced", 5.5])]
    );
    assert_eq!(plan["bill_charges_monthly"], true);
    assert_eq!(plan["invoice_display_name"], "Taxed plan");
    assert_eq!(plan["description"], "With taxes");
    assert_eq!(plan["charges"][0]["invoice_display_name"], "Storage");
    assert_eq!(plan["charges"][0]["min_amount_cents"], 300);
    let commitment = &plan["minimum_commitment"];
    assert_eq!(commitment["amount_cents"], 5000);
    assert_eq!(commitment["invoice_display_name"], "Minimum");
    assert_eq!(commitment["plan_code"], "taxed");
    assert_eq!(commitment["interval"], "yearly");
    assert_eq!(
        tax_codes(&commitment["taxes"]),
        vec![json!(["reduced", 5.5])]
    );
    let thresholds: Vec<Value> = plan["usage_thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            json!([
                t["amount_cents"],
                t["threshold_display_name"],
                t["recurring"]
            ])
        })
        .collect();
    assert_eq!(
        thresholds,
        vec![json!([10000, "First", false]), json!([5000, null, true])]
    );
    assert_eq!(plan["metadata"], json!({"team": "growth", "empty": null}));
    assert_eq!(api.get("/api/v1/plans/taxed").await.ok("plan"), &plan);

    // And an unknown tax anywhere is 404 tax_not_found, writing nothing
    for (case, patch) in [
        ("plan", json!({"tax_codes": ["nope"]})),
        (
            "commitment",
            json!({"minimum_commitment": {"amount_cents": 1, "tax_codes": ["nope"]}}),
        ),
        (
            "charge",
            json!({"charges": [{"billable_metric_id": id, "charge_model": "standard", "tax_codes": ["nope"]}]}),
        ),
    ] {
        let mut body = json!({"name": "T", "code": "unknown_tax", "interval": "monthly",
                              "amount_cents": 1, "amount_currency": "EUR"});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        api.post("/api/v1/plans", json!({"plan": body}))
            .await
            .assert_error(404, not_found("tax"), case);
    }
    assert_eq!(api.total("/api/v1/plans", "plans").await, 1);
}

#[tokio::test]
async fn an_update_changes_only_the_sent_fields_and_charges_keep_their_ids() {
    // Given a plan with three charges
    let api = Api::start_at(NOW).await;
    let metric = api.metric("gb", "sum_agg", json!([])).await;
    let id = metric["lago_id"].as_str().unwrap();
    let plan = api
        .post(
            "/api/v1/plans",
            plan_body(
                "evolving",
                json!([
                    {"billable_metric_id": id, "charge_model": "standard", "code": "a", "properties": {"amount": "1"}},
                    {"billable_metric_id": id, "charge_model": "standard", "code": "b", "properties": {"amount": "2"}},
                    {"billable_metric_id": id, "charge_model": "standard", "code": "c", "properties": {"amount": "3"}},
                ]),
            ),
        )
        .await
        .ok("plan")
        .clone();
    let charge_a = plan["charges"][0]["lago_id"].clone();
    let charge_b = plan["charges"][1]["lago_id"].clone();

    // When only the name is sent
    api.set_now("2024-03-11T08:00:00Z");
    let renamed = api
        .put(
            "/api/v1/plans/evolving",
            json!({"plan": {"name": "Evolved"}}),
        )
        .await
        .ok("plan")
        .clone();
    // Then only the name changed
    let mut expected = plan.clone();
    expected["name"] = json!("Evolved");
    assert_eq!(renamed, expected);

    // When charges are sent: `a` by id with new properties, `b` by code, a new one; `c` omitted
    let updated = api
        .put(
            "/api/v1/plans/evolving",
            json!({"plan": {"amount_cents": 20000, "charges": [
                {"id": charge_a, "properties": {"amount": "5"}},
                {"code": "b", "charge_model": "package"},
                {"billable_metric_code": "gb", "charge_model": "percentage", "properties": {"rate": "2"}},
            ]}}),
        )
        .await
        .ok("plan")
        .clone();
    // Then the list is replaced, matched charges keep their ids, the others are new
    assert_eq!(updated["amount_cents"], 20000);
    assert_eq!(updated["name"], "Evolved");
    let charges = updated["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 3);
    assert_eq!(charges[0]["lago_id"], charge_a);
    assert_eq!(charges[0]["properties"], json!({"amount": "5"}));
    assert_eq!(charges[1]["lago_id"], charge_b);
    assert_eq!(charges[1]["charge_model"], "package");
    assert_eq!(
        charges[1]["properties"],
        json!({"package_size": 1, "amount": "0", "free_units": 0}),
        "a new model without properties takes its defaults"
    );
    assert_eq!(charges[2]["charge_model"], "percentage");
    assert_eq!(charges[2]["code"], "gb");
    assert!(!charges.iter().any(|c| c["code"] == "c"));
    assert_eq!(charges[2]["created_at"], "2024-03-11T08:00:00Z");

    // And an invalid update writes nothing
    api.put(
        "/api/v1/plans/evolving",
        json!({"plan": {"name": "Broken", "charges": [{"id": charge_a, "properties": {"amount": "-1"}}]}}),
    )
    .await
    .assert_error(
        422,
        unprocessable(json!({"amount": ["invalid_amount"]})),
        "invalid charge",
    );
    assert_eq!(api.get("/api/v1/plans/evolving").await.ok("plan"), &updated);

    // And a new code moves the plan
    api.put(
        "/api/v1/plans/evolving",
        json!({"plan": {"code": "evolved"}}),
    )
    .await
    .ok("plan");
    api.get("/api/v1/plans/evolving")
        .await
        .assert_error(404, not_found("plan"), "old code");
    assert_eq!(
        api.get("/api/v1/plans/evolved").await.ok("plan")["lago_id"],
        plan["lago_id"]
    );
    api.put("/api/v1/plans/missing", json!({"plan": {"name": "x"}}))
        .await
        .assert_error(404, not_found("plan"), "unknown plan");
}

#[tokio::test]
async fn a_deleted_plan_answers_itself_then_leaves_the_catalog_and_frees_its_code() {
    let api = Api::start_at(NOW).await;
    let plan = api.simple_plan("old", "monthly", 1000, "EUR").await;
    api.simple_plan("kept", "monthly", 1000, "EUR").await;

    let deleted = api.delete("/api/v1/plans/old").await.ok("plan").clone();
    assert_eq!(deleted["lago_id"], plan["lago_id"]);
    assert_eq!(deleted["code"], "old");
    assert_eq!(deleted["pending_deletion"], true);

    api.get("/api/v1/plans/old")
        .await
        .assert_error(404, not_found("plan"), "deleted");
    api.delete("/api/v1/plans/old")
        .await
        .assert_error(404, not_found("plan"), "deleted twice");
    let list = api.get("/api/v1/plans").await;
    let codes: Vec<&Value> = list
        .ok("plans")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["code"])
        .collect();
    assert_eq!(codes, vec![&json!("kept")]);

    let again = api.simple_plan("old", "weekly", 500, "EUR").await;
    assert_ne!(again["lago_id"], plan["lago_id"]);
}

#[tokio::test]
async fn the_catalog_lists_with_lagos_paging() {
    let api = Api::start_at(NOW).await;
    for code in ["a", "b", "c"] {
        api.simple_plan(code, "monthly", 100, "EUR").await;
    }
    let page = api.get("/api/v1/plans?page=2&per_page=2").await;
    let codes: Vec<&Value> = page
        .ok("plans")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["code"])
        .collect();
    assert_eq!(codes, vec![&json!("c")]);
    assert_eq!(
        page.body["meta"],
        json!({"current_page": 2, "next_page": null, "prev_page": 1, "total_pages": 2, "total_count": 3})
    );
}

#[tokio::test]
async fn organizations_never_see_each_others_plans() {
    let api = Api::start_at(NOW).await;
    let other = api.another_organization("Other").await;
    api.simple_plan("shared_code", "monthly", 1000, "EUR").await;

    other
        .get("/api/v1/plans/shared_code")
        .await
        .assert_error(404, not_found("plan"), "read");
    other
        .put("/api/v1/plans/shared_code", json!({"plan": {"name": "x"}}))
        .await
        .assert_error(404, not_found("plan"), "update");
    other
        .delete("/api/v1/plans/shared_code")
        .await
        .assert_error(404, not_found("plan"), "delete");
    assert_eq!(other.total("/api/v1/plans", "plans").await, 0);
    // The same code is free in the other organization.
    other.simple_plan("shared_code", "weekly", 1, "USD").await;
    assert_eq!(
        api.get("/api/v1/plans/shared_code").await.ok("plan")["interval"],
        "monthly"
    );
}

#[tokio::test]
async fn charge_billing_options_are_kept_when_the_metric_allows_them() {
    // Given a recurring sum metric (prorating needs a recurring metric, SEMANTICS §3)
    let api = Api::start_at(NOW).await;
    let seats = api
        .create(
            "billable_metrics",
            "billable_metric",
            json!({"name": "Seats", "code": "seats", "aggregation_type": "sum_agg",
                   "field_name": "value", "recurring": true}),
        )
        .await;
    let id = seats["lago_id"].as_str().unwrap();
    // When charges are paid in advance outside invoices, regrouped, or prorated
    let plan = api
        .post(
            "/api/v1/plans",
            plan_body(
                "options",
                json!([
                    {"billable_metric_id": id, "charge_model": "standard", "pay_in_advance": true,
                     "invoiceable": false, "regroup_paid_fees": "invoice",
                     "properties": {"amount": "3"}},
                    {"billable_metric_id": id, "charge_model": "graduated", "prorated": true,
                     "properties": {"graduated_ranges": [
                         {"from_value": 0, "to_value": null, "per_unit_amount": "1", "flat_amount": "0"}]}},
                ]),
            ),
        )
        .await
        .ok("plan")
        .clone();
    // Then the options are answered as sent
    let c = &plan["charges"];
    assert_eq!(
        (
            &c[0]["pay_in_advance"],
            &c[0]["invoiceable"],
            &c[0]["regroup_paid_fees"]
        ),
        (&json!(true), &json!(false), &json!("invoice"))
    );
    assert_eq!(c[1]["prorated"], true);
    // And regrouping is refused where fees are invoiced anyway
    api.post(
        "/api/v1/plans",
        plan_body(
            "regroup_in_arrears",
            json!([{"billable_metric_id": id, "charge_model": "standard",
                    "regroup_paid_fees": "invoice"}]),
        ),
    )
    .await
    .assert_error(
        422,
        unprocessable(json!({"regroup_paid_fees": ["value_is_invalid"]})),
        "regroup in arrears",
    );
}

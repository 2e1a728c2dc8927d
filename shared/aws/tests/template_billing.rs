//! `template.yaml` declares what billing needs beyond tables and queues: every bucket of
//! `billing_aws::infra::BUCKETS` (private, encrypted) handed to the functions that read its
//! environment variable, and the billing clock's hourly schedule feeding the billing queue.
//! (`template_matches_infra.rs` checks the tables, queues and bus.)

use anyhow::{Context, Result, ensure};
use billing_aws::infra::{BILLING_QUEUE, BUCKETS};
use serde_yaml_ng::Value;
use std::path::Path;

fn template() -> Result<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(&path).context("reading template.yaml")?;
    serde_yaml_ng::from_str(&text).context("parsing template.yaml")
}

fn resource<'t>(t: &'t Value, id: &str, kind: &str) -> Result<&'t Value> {
    let r = t
        .get("Resources")
        .and_then(|r| r.get(id))
        .with_context(|| format!("template.yaml declares no `{id}`"))?;
    ensure!(
        r.get("Type").and_then(Value::as_str) == Some(kind),
        "`{id}` is not a {kind}"
    );
    Ok(r)
}

/// `!Ref X` (or `Ref: X`) as `X`.
fn referenced(v: Option<&Value>) -> Option<&str> {
    match v? {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        Value::Mapping(m) => m.get("Ref").and_then(Value::as_str),
        _ => None,
    }
}

#[test]
fn every_bucket_is_private_encrypted_and_given_to_the_functions_that_read_it() -> Result<()> {
    let t = template()?;
    let resources = t
        .get("Resources")
        .and_then(Value::as_mapping)
        .context("no Resources")?;
    for spec in BUCKETS {
        let bucket = resource(&t, spec.logical_id, "AWS::S3::Bucket")?;
        let p = bucket.get("Properties").context("bucket properties")?;
        ensure!(
            p.get("BucketEncryption").is_some(),
            "{} is not encrypted",
            spec.logical_id
        );
        let block = p
            .get("PublicAccessBlockConfiguration")
            .context("no public access block")?;
        for key in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            ensure!(
                block.get(key).and_then(Value::as_bool) == Some(true),
                "{}: {key} is not true",
                spec.logical_id
            );
        }
        let mut given = 0;
        for (id, r) in resources {
            let env = r
                .get("Properties")
                .and_then(|p| p.get("Environment"))
                .and_then(|e| e.get("Variables"));
            if let Some(v) = env.and_then(|e| e.get(spec.env_var)) {
                ensure!(
                    referenced(Some(v)) == Some(spec.logical_id),
                    "{id:?}: {} is not !Ref {}",
                    spec.env_var,
                    spec.logical_id
                );
                given += 1;
            }
        }
        ensure!(given > 0, "no function receives {}", spec.env_var);
    }
    Ok(())
}

#[test]
fn the_billing_clock_runs_hourly_and_feeds_the_billing_queue_the_worker_consumes() -> Result<()> {
    let t = template()?;
    let clock = resource(&t, "BillingClockFunction", "AWS::Serverless::Function")?;
    let p = clock.get("Properties").context("clock properties")?;
    let events = p
        .get("Events")
        .and_then(Value::as_mapping)
        .context("clock events")?;
    ensure!(
        events.values().any(|e| {
            e.get("Type").and_then(Value::as_str) == Some("Schedule")
                && e.get("Properties")
                    .and_then(|p| p.get("Schedule"))
                    .and_then(Value::as_str)
                    == Some("cron(0 * * * ? *)")
        }),
        "the billing clock does not run at the top of every hour"
    );
    let env = p
        .get("Environment")
        .and_then(|e| e.get("Variables"))
        .context("clock environment")?;
    ensure!(
        referenced(env.get(BILLING_QUEUE.env_var)) == Some(BILLING_QUEUE.logical_id),
        "the billing clock does not receive the billing queue"
    );
    let worker = resource(&t, "InvoiceFunction", "AWS::Serverless::Function")?;
    let events = worker
        .get("Properties")
        .and_then(|p| p.get("Events"))
        .and_then(Value::as_mapping)
        .context("worker events")?;
    ensure!(
        events.values().any(|e| {
            e.get("Type").and_then(Value::as_str) == Some("SQS")
                && e.get("Properties")
                    .and_then(|p| p.get("FunctionResponseTypes"))
                    .and_then(Value::as_sequence)
                    .is_some_and(|s| {
                        s.iter()
                            .any(|v| v.as_str() == Some("ReportBatchItemFailures"))
                    })
        }),
        "the invoice worker does not report batch item failures"
    );
    Ok(())
}

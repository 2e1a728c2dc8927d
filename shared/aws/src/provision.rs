//! Creates the stack's tables, queues, bus, rules and webhook signing keys in an emulator, from
//! [`crate::infra`].
//!
//! Used by the local runner and the tests; a deployed stack gets the same resources from
//! `template.yaml`. Every step is idempotent, so provisioning an existing stack is a no-op.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, Projection, ProjectionType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::infra::{
    BUS, QUEUES, RULES, TABLES, TableSpec, WEBHOOK_PRIVATE_KEY, WEBHOOK_PUBLIC_KEY,
};

/// The physical names of a provisioned stack, as environment variables carry them.
#[derive(Debug, Clone, Default)]
pub struct Provisioned {
    /// `(env_var, value)` pairs: table names, queue URLs, the bus name.
    pub env: Vec<(&'static str, String)>,
}

impl Provisioned {
    /// The value of one of the stack's environment variables.
    pub fn get(&self, env_var: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| *k == env_var)
            .map(|(_, v)| v.as_str())
    }
}

/// Provisioning failed; the message names the resource.
#[derive(Debug, thiserror::Error)]
#[error("provisioning {resource} failed: {message}")]
pub struct ProvisionError {
    resource: String,
    message: String,
}

fn failed(resource: &str, e: impl std::fmt::Display) -> ProvisionError {
    ProvisionError {
        resource: resource.to_owned(),
        message: e.to_string(),
    }
}

/// Creates every table, queue (with its DLQ), the bus with its rules, and the webhook signing
/// key pair under `prefix`.
pub async fn provision(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
) -> Result<Provisioned, ProvisionError> {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let mut out = Provisioned::default();

    for spec in TABLES {
        let name = format!("{prefix}-{}", spec.name_suffix);
        create_table(&dynamo, &name, &spec).await?;
        out.env.push((spec.env_var, name));
    }

    for spec in QUEUES {
        let dlq_name = spec.dlq_name(prefix);
        let fifo_attributes =
            |request: aws_sdk_sqs::operation::create_queue::builders::CreateQueueFluentBuilder| {
                if spec.fifo {
                    request.attributes(QueueAttributeName::FifoQueue, "true")
                } else {
                    request
                }
            };
        let dlq_url = fifo_attributes(sqs.create_queue())
            .queue_name(&dlq_name)
            .attributes(
                QueueAttributeName::MessageRetentionPeriod,
                spec.dlq_retention_s.to_string(),
            )
            .send()
            .await
            .map_err(|e| failed(&dlq_name, aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .queue_url
            .unwrap_or_default();
        let dlq_url_for_arn = dlq_url.clone();
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url_for_arn)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| failed(&dlq_name, aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap_or_default();
        let name = spec.name(prefix);
        let redrive = format!(
            r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{}"}}"#,
            spec.max_receive_count
        );
        let url = fifo_attributes(sqs.create_queue())
            .queue_name(&name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                spec.visibility_timeout_s.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .map_err(|e| failed(&name, aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .queue_url
            .unwrap_or_default();
        out.env.push((spec.env_var, url));
        out.env.push((spec.dlq_env_var, dlq_url));
    }

    for (env_var, name) in crate::documents::provision_buckets(sdk, prefix)
        .await
        .map_err(|e| failed("documents bucket", e))?
    {
        out.env.push((env_var, name));
    }

    let bus_name = format!("{prefix}-{}", BUS.name_suffix);
    let exists = events
        .describe_event_bus()
        .name(&bus_name)
        .send()
        .await
        .is_ok();
    if !exists {
        match events.create_event_bus().name(&bus_name).send().await {
            Ok(_) => {}
            // Another process (a parallel test) created it between our describe and create.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception()) => {}
            Err(e) => {
                return Err(failed(
                    &bus_name,
                    aws_sdk_eventbridge::error::DisplayErrorContext(e),
                ));
            }
        }
    }
    out.env.push((BUS.env_var, bus_name.clone()));

    for rule in RULES {
        let name = rule.name(prefix);
        let queue_url = out
            .get(rule.target.env_var)
            .ok_or_else(|| failed(&name, "its target queue is not provisioned"))?
            .to_owned();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| failed(&name, aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap_or_default();
        // PutRule and PutTargets are upserts: provisioning again changes nothing.
        events
            .put_rule()
            .name(&name)
            .event_bus_name(&bus_name)
            .event_pattern(rule.event_pattern())
            .state(aws_sdk_eventbridge::types::RuleState::Enabled)
            .send()
            .await
            .map_err(|e| failed(&name, aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id(rule.target_id)
            .arn(queue_arn)
            .build()
            .map_err(|e| failed(&name, e))?;
        let put = events
            .put_targets()
            .rule(&name)
            .event_bus_name(&bus_name)
            .targets(target)
            .send()
            .await
            .map_err(|e| failed(&name, aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
        if put.failed_entry_count > 0 {
            return Err(failed(&name, "the bus refused the rule's target"));
        }
    }

    // The webhook signing key pair: generated once, kept in Secrets Manager.
    let private_name = WEBHOOK_PRIVATE_KEY.name(prefix);
    let public_name = WEBHOOK_PUBLIC_KEY.name(prefix);
    crate::webhook_keys::Secrets::new(sdk)
        .ensure_key_pair(&private_name, &public_name)
        .await
        .map_err(|e| failed(&private_name, e))?;
    out.env.push((WEBHOOK_PRIVATE_KEY.env_var, private_name));
    out.env.push((WEBHOOK_PUBLIC_KEY.env_var, public_name));
    Ok(out)
}

async fn create_table(
    dynamo: &aws_sdk_dynamodb::Client,
    name: &str,
    spec: &TableSpec,
) -> Result<(), ProvisionError> {
    if dynamo
        .describe_table()
        .table_name(name)
        .send()
        .await
        .is_ok()
    {
        return Ok(());
    }
    let key = |attr: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(attr)
            .key_type(kind)
            .build()
            .map_err(|e| failed(name, e))
    };
    let string_attr = |attr: &str| {
        AttributeDefinition::builder()
            .attribute_name(attr)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| failed(name, e))
    };
    let mut request = dynamo
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(spec.hash_key, KeyType::Hash)?)
        .key_schema(key(spec.range_key, KeyType::Range)?)
        .attribute_definitions(string_attr(spec.hash_key)?)
        .attribute_definitions(string_attr(spec.range_key)?);
    for (index, hash, range) in spec.indexes {
        request = request
            .attribute_definitions(string_attr(hash)?)
            .attribute_definitions(string_attr(range)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(*index)
                    .key_schema(key(hash, KeyType::Hash)?)
                    .key_schema(key(range, KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(|e| failed(name, e))?,
            );
    }
    match request.send().await {
        Ok(_) => {}
        // Another process created it between our describe and create.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => {
            return Err(failed(
                name,
                aws_sdk_dynamodb::error::DisplayErrorContext(e),
            ));
        }
    }
    dynamo
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(spec.ttl_attribute)
                .enabled(true)
                .build()
                .map_err(|e| failed(name, e))?,
        )
        .send()
        .await
        .map_err(|e| failed(name, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    dynamo
        .update_continuous_backups()
        .table_name(name)
        .point_in_time_recovery_specification(
            PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .map_err(|e| failed(name, e))?,
        )
        .send()
        .await
        .map_err(|e| failed(name, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    Ok(())
}

//! The aggregate Lambda: wires the SDK clients, then serves SQS batches.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use billing_aws::{BillingStore, bus::EventBus, config, usage::UsageStore};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    billing_aws::telemetry::init();
    let sdk = config::sdk_config().await;
    let deps = aggregate::Deps::new(
        BillingStore::new(&sdk, config::required("BILLING_TABLE")?),
        UsageStore::new(&sdk, config::required("USAGE_TABLE")?),
    )
    .with_bus(EventBus::from_env(&sdk)?);
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(aggregate::handler(deps, event.payload).await)
    }))
    .await
}

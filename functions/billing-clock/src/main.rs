//! The billing-clock Lambda: runs on an hourly EventBridge schedule.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use billing_aws::{BillingStore, billing_queue::BillingQueue, config};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    billing_aws::telemetry::init();
    let sdk = config::sdk_config().await;
    let deps = billing_clock::Deps {
        store: BillingStore::new(&sdk, config::required("BILLING_TABLE")?),
        queue: BillingQueue::new(&sdk, config::required("BILLING_QUEUE_URL")?),
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |e: LambdaEvent<EventBridgeEvent<serde_json::Value>>| async move {
            billing_clock::handler(deps, e.payload, chrono::Utc::now()).await?;
            Ok::<(), lambda_runtime::Error>(())
        },
    ))
    .await
}

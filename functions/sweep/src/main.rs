//! The sweep Lambda: runs on an EventBridge schedule.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use billing_aws::{config, events::EventStore, queue::EventQueue};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    billing_aws::telemetry::init();
    let sdk = config::sdk_config().await;
    let events = EventStore::new(&sdk, config::required("EVENTS_TABLE")?);
    let queue = EventQueue::new(&sdk, config::required("EVENTS_QUEUE_URL")?);
    let (events, queue) = (&events, &queue);
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<EventBridgeEvent<serde_json::Value>>| async move {
            let report = sweep::sweep(events, queue).await?;
            tracing::info!(found = report.found, resent = report.resent, "sweep done");
            Ok::<(), lambda_runtime::Error>(())
        },
    ))
    .await
}

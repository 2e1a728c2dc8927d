//! The invoice Lambda: wires the SDK clients, then serves billing-queue batches.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    billing_aws::telemetry::init();
    let sdk = billing_aws::config::sdk_config().await;
    let deps = invoice::deps_from_env(&sdk)?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(invoice::handler(deps, event.payload).await)
    }))
    .await
}

//! The webhook dispatcher Lambda: reads its configuration and signing key, then serves SQS
//! batches of the webhook queue.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use webhook_dispatch::{Config, Deps, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    billing_aws::telemetry::init();
    let config = Config::from_env()?;
    let sdk = billing_aws::config::sdk_config().await;
    let deps = Deps::from_config(&sdk, &config).await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(handler(deps, event.payload).await)
    }))
    .await
}

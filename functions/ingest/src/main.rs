//! The ingest Lambda: wires configuration, the SDK clients and the router, then serves.

use billing_aws::{BillingStore, config, events::EventStore, queue::EventQueue, usage::UsageStore};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    billing_aws::telemetry::init();
    let sdk = config::sdk_config().await;
    let deps = ingest::Deps::new(
        BillingStore::new(&sdk, config::required("BILLING_TABLE")?),
        EventStore::new(&sdk, config::required("EVENTS_TABLE")?),
        EventQueue::new(&sdk, config::required("EVENTS_QUEUE_URL")?),
        UsageStore::new(&sdk, config::required("USAGE_TABLE")?),
    );
    lambda_http::run(ingest::router(deps)).await
}

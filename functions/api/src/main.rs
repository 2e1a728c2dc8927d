//! The API Lambda: wires configuration, the SDK clients and the router, then serves.

use billing_aws::{
    BillingStore, bus::EventBus, config, documents::DocumentStore, usage::UsageStore,
};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    billing_aws::telemetry::init();
    let config = config::Config::from_env()?;
    let sdk = config::sdk_config().await;
    let store = BillingStore::new(&sdk, config.billing_table);
    let usage = UsageStore::new(&sdk, config::required("USAGE_TABLE")?);
    lambda_http::run(api::router(
        api::Deps::new(store)
            .with_usage(usage)
            .with_bus(EventBus::from_env(&sdk)?)
            .with_webhook_public_key(billing_aws::webhook_keys::PublicKeySource::secret(
                billing_aws::webhook_keys::Secrets::new(&sdk),
                config::required("WEBHOOK_PUBLIC_KEY_SECRET")?,
            ))
            .with_documents(DocumentStore::new(
                &sdk,
                config::required("DOCUMENTS_BUCKET")?,
            )),
    ))
    .await
}

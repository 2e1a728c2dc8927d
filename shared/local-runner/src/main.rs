//! `local-runner serve` runs the stack; `local-runner create-organization --name N` prints a
//! new organization's API key (against `BILLING_TABLE` if set, else the local stack's table);
//! `local-runner create-webhook-keys --stack S` makes a deployed stack's webhook signing keys.

use std::time::Duration;

use anyhow::{Context, bail};
use billing_aws::{
    BillingStore, config, events::EventStore, infra, provision, queue::EventQueue,
    usage::UsageStore,
};
use local_runner::{organization, worker::QueuePoller};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sdk = config::sdk_config().await;
    let prefix = std::env::var("RESOURCE_PREFIX").unwrap_or_else(|_| "lago-local".into());
    match args.first().map(String::as_str) {
        None | Some("serve") => serve(&sdk, &prefix).await,
        Some("create-organization") => {
            let name = flag(&args, "--name").unwrap_or_else(|| "Organization".into());
            let key = flag(&args, "--api-key").unwrap_or_else(organization::new_api_key);
            let table = match config::required("BILLING_TABLE") {
                Ok(table) => table,
                Err(_) => provision::provision(&sdk, &prefix)
                    .await?
                    .get(infra::BILLING_TABLE.env_var)
                    .context("billing table not provisioned")?
                    .to_owned(),
            };
            let org = organization::create(&BillingStore::new(&sdk, table), &name, &key).await?;
            eprintln!("created organization {} ({})", org.name, org.id);
            println!("{key}");
            Ok(())
        }
        Some("create-webhook-keys") => {
            // The JWT webhook key pair of a deployed stack, made once before its first deploy
            // (the local stack makes its own when it provisions). Prints the public key.
            let stack = flag(&args, "--stack").context("--stack <stack name> is required")?;
            let public_pem = billing_aws::webhook_keys::Secrets::new(&sdk)
                .ensure_key_pair(
                    &infra::WEBHOOK_PRIVATE_KEY.name(&stack),
                    &infra::WEBHOOK_PUBLIC_KEY.name(&stack),
                )
                .await?;
            eprintln!("webhook signing keys ready in {stack}/webhook-*-key");
            println!("{public_pem}");
            Ok(())
        }
        Some(other) => bail!(
            "unknown command {other}; use `serve`, `create-organization` or `create-webhook-keys`"
        ),
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn serve(sdk: &aws_config::SdkConfig, prefix: &str) -> anyhow::Result<()> {
    billing_aws::telemetry::init();
    let stack = provision::provision(sdk, prefix).await?;
    let var = |spec: &'static str| -> anyhow::Result<String> {
        Ok(stack
            .get(spec)
            .with_context(|| format!("{spec} not provisioned"))?
            .to_owned())
    };
    let store = BillingStore::new(sdk, var(infra::BILLING_TABLE.env_var)?);
    let billing_store = store.clone();
    let events = EventStore::new(sdk, var(infra::EVENTS_TABLE.env_var)?);
    let usage = UsageStore::new(sdk, var(infra::USAGE_TABLE.env_var)?);
    let usage_store = usage.clone();
    let queue_url = var(infra::EVENTS_QUEUE.env_var)?;
    let queue = EventQueue::new(sdk, queue_url.clone());
    let (key, fresh) = match std::env::var("LAGO_API_KEY").ok().filter(|k| !k.is_empty()) {
        Some(key) => (key, false),
        None => (organization::new_api_key(), true),
    };
    let org = organization::ensure(&store, "Local", &key).await?;

    let ingest_deps =
        ingest::Deps::new(store.clone(), events.clone(), queue.clone(), usage.clone());
    // Every publisher keeps the objects of events too large for the bus in the documents
    // bucket, as the Lambdas do.
    let documents_bucket = var(infra::DOCUMENTS_BUCKET.env_var)?;
    let documents = billing_aws::documents::DocumentStore::new(sdk, documents_bucket.clone());
    let bus = billing_aws::bus::EventBus::new(sdk, var(infra::BUS.env_var)?)
        .with_overflow(documents.clone());
    let aggregate_deps = aggregate::Deps::new(store.clone(), usage.clone()).with_bus(bus.clone());
    let api_deps = api::Deps::new(store)
        .with_usage(usage)
        .with_bus(bus.clone())
        .with_documents(documents);
    let api_deps =
        api_deps.with_webhook_public_key(billing_aws::webhook_keys::PublicKeySource::secret(
            billing_aws::webhook_keys::Secrets::new(sdk),
            var(infra::WEBHOOK_PUBLIC_KEY.env_var)?,
        ));
    let drainer = local_runner::worker::Drainer::new(
        QueuePoller::new(
            aws_sdk_sqs::Client::new(sdk),
            queue_url.clone(),
            Duration::ZERO,
            Duration::from_secs(1),
        )
        .deduplicating(events.clone()),
        aggregate_deps.clone(),
    );
    let billing = local_runner::billing_run::BillingRunner {
        clock: billing_clock::Deps {
            store: billing_store.clone(),
            queue: billing_aws::billing_queue::BillingQueue::new(
                sdk,
                var(infra::BILLING_QUEUE.env_var)?,
            ),
        },
        invoice: invoicing::Deps {
            store: billing_store.clone(),
            usage: usage_store.clone(),
            bus: Some(bus),
            ids: std::sync::Arc::new(|| uuid::Uuid::new_v4().to_string()),
            clock: std::sync::Arc::new(chrono::Utc::now),
        },
        poller: QueuePoller::new(
            aws_sdk_sqs::Client::new(sdk),
            var(infra::BILLING_QUEUE.env_var)?,
            Duration::ZERO,
            Duration::ZERO,
        ),
    };
    let app = local_runner::app(api_deps, ingest_deps.clone(), drainer)
        .merge(local_runner::billing_run::routes(billing.clone()));

    // Webhooks: the dispatcher as the Lambda is configured, its issuer this runner's URL.
    let webhook_queue_url = var(infra::WEBHOOK_QUEUE.env_var)?;
    let issuer = format!(
        "http://{}",
        std::env::var("LOCAL_HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into())
    );
    let dispatch_deps = webhook_dispatch::Deps::from_config(
        sdk,
        &webhook_dispatch::Config {
            billing_table: var(infra::BILLING_TABLE.env_var)?,
            queue_url: webhook_queue_url.clone(),
            private_key: webhook_dispatch::PrivateKey::Secret(var(
                infra::WEBHOOK_PRIVATE_KEY.env_var
            )?),
            api_url: issuer,
            documents_bucket: Some(documents_bucket),
        },
    )
    .await?
    // The poller below decides when a failed webhook comes back.
    .with_backoff(webhook_dispatch::Backoff::NONE);
    let app = app.merge(local_runner::webhooks::routes(
        local_runner::webhooks::WebhookDrainer::new(
            QueuePoller::new(
                aws_sdk_sqs::Client::new(sdk),
                webhook_queue_url.clone(),
                Duration::ZERO,
                Duration::ZERO,
            ),
            dispatch_deps.clone(),
        ),
    ));
    let (billing_stop, billing_stop_rx) = tokio::sync::watch::channel(false);
    let billing_clock = tokio::spawn(billing.hourly(billing_stop_rx));

    let addr = std::env::var("LOCAL_HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    println!("Lago API:      http://{addr}  (organization {})", org.id);
    if fresh {
        println!("API key:       {key}");
    } else {
        println!("API key:       from LAGO_API_KEY");
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let poller = QueuePoller::new(
        aws_sdk_sqs::Client::new(sdk),
        queue_url,
        Duration::from_secs(2),
        Duration::from_secs(1),
    )
    .deduplicating(events.clone());
    let mut stop = stop_rx.clone();
    let aggregating = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                r = poller.poll_once(|e| aggregate::handler(&aggregate_deps, e)) => {
                    if let Err(e) = r {
                        tracing::error!(error.cause_chain = ?e, "events queue poll failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    });
    let mut stop = stop_rx.clone();
    let sweeping = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = every.tick() => {
                    if let Err(e) = sweep::sweep(&events, &queue).await {
                        tracing::error!(error.cause_chain = %e, "sweep failed");
                    }
                }
            }
        }
    });
    let mut stop = stop_rx.clone();
    // Locally a failed webhook comes back after 10 s, until the queue's redrive moves it.
    let webhook_poller = QueuePoller::new(
        aws_sdk_sqs::Client::new(sdk),
        webhook_queue_url,
        Duration::from_secs(10),
        Duration::from_secs(1),
    );
    let dispatching = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                r = webhook_poller.poll_once(|e| webhook_dispatch::handler(&dispatch_deps, e)) => {
                    if let Err(e) = r {
                        tracing::error!(error.cause_chain = ?e, "webhook queue poll failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    let _ = stop_tx.send(true);
    let _ = billing_stop.send(true);
    let _ = billing_clock.await;
    let _ = tokio::join!(aggregating, sweeping, dispatching);
    Ok(())
}

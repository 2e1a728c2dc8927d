//! `local-runner serve` runs the stack; `local-runner create-organization --name N` prints a
//! new organization's API key (against `BILLING_TABLE` if set, else the local stack's table).

use anyhow::{Context, bail};
use billing_aws::{BillingStore, config, infra, provision};
use local_runner::organization;

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
        Some(other) => bail!("unknown command {other}; use `serve` or `create-organization`"),
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
    let table = stack
        .get(infra::BILLING_TABLE.env_var)
        .context("billing table not provisioned")?;
    let store = BillingStore::new(sdk, table);
    let (key, fresh) = match std::env::var("LAGO_API_KEY").ok().filter(|k| !k.is_empty()) {
        Some(key) => (key, false),
        None => (organization::new_api_key(), true),
    };
    let org = organization::ensure(&store, "Local", &key).await?;
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
    axum::serve(listener, local_runner::app(api::Deps::new(store)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

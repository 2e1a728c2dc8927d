//! `PUT /invoices/{lago_id}/refresh`: a draft recomputed from the current usage states, as if
//! it were created now (late events inside the grace period are billed). A finalized invoice
//! never changes.

use billing::{
    catalog::Record,
    invoice::{Invoice, InvoiceState, Slot},
};
use billing_aws::{StoreError, context::SubscriptionContext, dynamo::invoices::InvoiceWrite};
use chrono::{DateTime, Utc};

use crate::{
    Deps, InvoicingError,
    price_slot::{Catalog, price_slot},
};

/// How many times a refresh re-reads an invoice another writer changed (R19).
pub const REFRESH_RETRIES: usize = 5;

/// `record` recomputed at `now` (not written): same slot, same "already billed" fact, fresh
/// usage, fresh taxes.
pub(crate) async fn recompute(
    deps: &Deps,
    catalog: &Catalog,
    record: &Record<Invoice>,
    now: DateTime<Utc>,
) -> Result<Record<Invoice>, InvoicingError> {
    let invoice = &record.value;
    let context =
        SubscriptionContext::load(&deps.store, &catalog.org, &invoice.external_subscription_id)
            .await?;
    let ps = context
        .subscriptions
        .iter()
        .find(|p| p.subscription.lago_id == invoice.subscription_id)
        .ok_or_else(|| {
            InvoicingError::Corrupt(format!("invoice {} has no subscription", record.lago_id))
        })?;
    let slot = Slot::parse_key(&invoice.slot)
        .ok_or_else(|| InvoicingError::Corrupt(format!("slot {:?}", invoice.slot)))?;
    let priced = price_slot(
        deps,
        catalog,
        &context,
        ps,
        slot,
        &record.lago_id,
        invoice.prior_subscription_fee,
        now,
    )
    .await?;
    let c = priced.computed;
    let mut value = invoice.clone();
    value.fees = c.fees;
    value.amounts = c.amounts;
    value.taxes_rate = c.taxes_rate;
    value.applied_taxes = c.applied_taxes;
    value.has_subscription_fee = c.has_subscription_fee;
    Ok(Record {
        updated_at: now,
        version: record.version + 1,
        value,
        ..record.clone()
    })
}

/// Refreshes a draft; any other invoice is returned as it is.
pub async fn refresh_invoice(
    deps: &Deps,
    org_id: &str,
    invoice_id: &str,
    now: DateTime<Utc>,
) -> Result<Record<Invoice>, InvoicingError> {
    let catalog = Catalog::load(&deps.store, org_id).await?;
    for _ in 0..REFRESH_RETRIES {
        let record = match deps.store.get::<Invoice>(org_id, invoice_id).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Err(InvoicingError::NotFound("invoice")),
            Err(e) => return Err(e.into()),
        };
        if record.value.status != InvoiceState::Draft {
            return Ok(record);
        }
        let refreshed = recompute(deps, &catalog, &record, now).await?;
        match deps
            .store
            .write_invoice(org_id, &refreshed, InvoiceWrite::Replace)
            .await
        {
            Ok(()) => {
                deps.store
                    .put_fee_pointers(org_id, &refreshed.value)
                    .await?;
                return Ok(refreshed);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(InvoicingError::Busy("invoice refresh"))
}

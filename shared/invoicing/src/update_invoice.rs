//! `PUT /invoices/{lago_id}`: the payment status and metadata of an invoice.

use billing::{
    catalog::Record,
    invoice::{Invoice, InvoiceMetadata, InvoiceState, PaymentStatus},
};
use billing_aws::{StoreError, dynamo::invoices::InvoiceWrite};
use chrono::{DateTime, Utc};

use crate::{Deps, InvoicingError, invoice_events, price_slot::Catalog};

/// One metadata entry to set: `id` updates that entry, else a new one is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataInput {
    /// The entry to update.
    pub id: Option<String>,
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// What an update changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceUpdate {
    /// New payment status.
    pub payment_status: Option<PaymentStatus>,
    /// The whole metadata set (see [`replaced_metadata`]); `None` leaves it as it is.
    pub metadata: Option<Vec<MetadataInput>>,
}

/// The metadata after an update that sends `entries` (lago-api's
/// `Invoices::Metadata::UpdateService`): the set is replaced. An entry naming an existing id
/// updates it in place (keeping its id and creation time); any other entry is created; an
/// existing entry the request does not name is deleted.
pub fn replaced_metadata(
    existing: &[InvoiceMetadata],
    entries: &[MetadataInput],
    mut new_id: impl FnMut() -> String,
    now: DateTime<Utc>,
) -> Vec<InvoiceMetadata> {
    entries
        .iter()
        .map(|m| {
            match m
                .id
                .as_ref()
                .and_then(|id| existing.iter().find(|e| &e.lago_id == id))
            {
                Some(e) => InvoiceMetadata {
                    key: m.key.clone(),
                    value: m.value.clone(),
                    ..e.clone()
                },
                None => InvoiceMetadata {
                    lago_id: new_id(),
                    key: m.key.clone(),
                    value: m.value.clone(),
                    created_at: now,
                },
            }
        })
        .collect()
}

/// Most characters of a metadata value (lago-api).
pub const METADATA_VALUE_MAX: usize = 140;

/// Updates an invoice. A payment status is only set on a finalized invoice
/// (405 `payment_status_update_on_draft_invoice` otherwise, as lago-api). A changed status
/// and `invoice.payment_status_updated` in the outbox are one write; any event the outbox
/// still owes for the invoice (a retry of an update whose publish failed) is published too.
pub async fn update_invoice(
    deps: &Deps,
    org_id: &str,
    invoice_id: &str,
    update: InvoiceUpdate,
    now: DateTime<Utc>,
) -> Result<Record<Invoice>, InvoicingError> {
    if let Some(entries) = &update.metadata
        && entries
            .iter()
            .any(|m| m.value.chars().count() > METADATA_VALUE_MAX)
    {
        return Err(InvoicingError::Invalid {
            field: "metadata",
            code: "value_is_too_long",
        });
    }
    let catalog = Catalog::load(&deps.store, org_id).await?;
    for _ in 0..5 {
        let current = match deps.store.get::<Invoice>(org_id, invoice_id).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Err(InvoicingError::NotFound("invoice")),
            Err(e) => return Err(e.into()),
        };
        let mut next = Record {
            updated_at: now,
            version: current.version + 1,
            ..current.clone()
        };
        let mut status_changed = false;
        if let Some(status) = update.payment_status {
            if current.value.status == InvoiceState::Draft {
                return Err(InvoicingError::NotAllowed(
                    "payment_status_update_on_draft_invoice",
                ));
            }
            status_changed = current.value.payment_status != status;
            next.value.payment_status = status;
        }
        if let Some(entries) = &update.metadata {
            next.value.metadata =
                replaced_metadata(&current.value.metadata, entries, || (deps.ids)(), now);
        }
        let events: Vec<String> = if status_changed {
            vec![invoice_events::outbox_entry(
                &next,
                "invoice.payment_status_updated",
            )]
        } else {
            Vec::new()
        };
        match deps
            .store
            .write_invoice_with_events(org_id, &next, InvoiceWrite::Replace, &events)
            .await
        {
            Ok(()) => {
                invoice_events::flush_invoice(deps, &catalog, None, &next.value).await?;
                return Ok(next);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(InvoicingError::Busy("invoice update"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, key: &str, value: &str) -> InvoiceMetadata {
        InvoiceMetadata {
            lago_id: id.into(),
            key: key.into(),
            value: value.into(),
            created_at: DateTime::<Utc>::MIN_UTC,
        }
    }

    #[test]
    fn an_update_replaces_the_metadata_set_keeping_the_ids_it_names() {
        // Given an invoice with `po` (m1) and `ref` (m2).
        let existing = vec![entry("m1", "po", "42"), entry("m2", "ref", "a")];
        let now = DateTime::<Utc>::UNIX_EPOCH;
        // When the request names m1 with a new value, adds `cc` and leaves m2 out.
        let input = vec![
            MetadataInput {
                id: Some("m1".into()),
                key: "po".into(),
                value: "43".into(),
            },
            MetadataInput {
                id: None,
                key: "cc".into(),
                value: "x".into(),
            },
        ];
        let out = replaced_metadata(&existing, &input, || "m3".into(), now);
        // Then m1 is updated in place, cc is created, and m2 is deleted (lago-api).
        assert_eq!(
            out,
            vec![
                entry("m1", "po", "43"),
                InvoiceMetadata {
                    created_at: now,
                    ..entry("m3", "cc", "x")
                },
            ]
        );
        // And an empty list clears the set.
        assert_eq!(
            replaced_metadata(&existing, &[], || "m4".into(), now),
            vec![]
        );
    }
}

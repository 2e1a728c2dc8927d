//! Subscriptions in the billing table.
//!
//! - Item: `sk = SUB#<external_id>#<lago_id>`: every subscription ever created under an
//!   external id (active, pending, terminated, canceled) sits in one key range, read with one
//!   strongly consistent query.
//! - Family head: `sk = SUBHEAD#<external_id>`, a counter every change to an external id's
//!   subscriptions advances conditionally ([`BillingStore::write_subscriptions`]). Two requests
//!   racing on the same external id (two creates, an upgrade and a termination) cannot both
//!   win: the second sees the head moved and retries on fresh data. This is what keeps one
//!   active subscription per external id.
//! - Index: `gsi1pk = ORG#<org>#CUSSUB#<customer lago id>`, `gsi1sk = <created_at>#<lago_id>`,
//!   to list a customer's subscriptions.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use billing::{
    catalog::{
        Record,
        customer::Customer,
        plan::Plan,
        subscription::{
            OnTerminationCreditNote, OnTerminationInvoice, Subscription, SubscriptionState,
            SubscriptionStatus,
        },
    },
    period::BillingTime,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{
    BillingStore, Kind, LIST_SCAN_MAX, StoreError, mapping, org_pk,
    plans::{plan_item, transaction_failures},
};

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn customer_pk(org_id: &str, customer_id: &str) -> String {
    format!("{}#CUSSUB#{customer_id}", org_pk(org_id))
}

/// A subscription as stored.
#[derive(Serialize, Deserialize)]
pub struct SubscriptionItem {
    subscription_id: String,
    external_id: String,
    external_customer_id: String,
    customer_id: String,
    plan_code: String,
    effective_plan_code: String,
    name: Option<String>,
    status: String,
    billing_time: String,
    subscription_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    initial_started_at: Option<DateTime<Utc>>,
    ending_at: Option<DateTime<Utc>>,
    terminated_at: Option<DateTime<Utc>>,
    canceled_at: Option<DateTime<Utc>>,
    previous_plan_code: Option<String>,
    previous_subscription_id: Option<String>,
    next_plan_code: Option<String>,
    next_subscription_id: Option<String>,
    downgrade_plan_date: Option<NaiveDate>,
    on_termination_credit_note: Option<String>,
    on_termination_invoice: String,
}

impl Kind for Subscription {
    const PREFIX: &'static str = "SUB#";
    type Item = SubscriptionItem;

    fn key(&self) -> &str {
        self.store_key()
    }

    fn to_item(&self) -> SubscriptionItem {
        let st = self.state();
        SubscriptionItem {
            subscription_id: st.lago_id.clone(),
            external_id: st.external_id.clone(),
            external_customer_id: st.external_customer_id.clone(),
            customer_id: st.customer_id.clone(),
            plan_code: st.plan_code.clone(),
            effective_plan_code: st.effective_plan_code.clone(),
            name: st.name.clone(),
            status: st.status.as_str().to_owned(),
            billing_time: match st.billing_time {
                BillingTime::Calendar => "calendar".into(),
                BillingTime::Anniversary => "anniversary".into(),
            },
            subscription_at: st.subscription_at,
            started_at: st.started_at,
            initial_started_at: st.initial_started_at,
            ending_at: st.ending_at,
            terminated_at: st.terminated_at,
            canceled_at: st.canceled_at,
            previous_plan_code: st.previous_plan_code.clone(),
            previous_subscription_id: st.previous_subscription_id.clone(),
            next_plan_code: st.next_plan_code.clone(),
            next_subscription_id: st.next_subscription_id.clone(),
            downgrade_plan_date: st.downgrade_plan_date,
            on_termination_credit_note: st.on_termination_credit_note.map(|c| c.as_str().into()),
            on_termination_invoice: st.on_termination_invoice.as_str().to_owned(),
        }
    }

    fn from_item(item: SubscriptionItem) -> Result<Self, String> {
        let status = SubscriptionStatus::parse(&item.status)
            .ok_or_else(|| format!("subscription status {:?}", item.status))?;
        let billing_time = BillingTime::parse(&item.billing_time).map_err(|e| e.to_string())?;
        let on_termination_credit_note = match item.on_termination_credit_note.as_deref() {
            None => None,
            Some(c) => Some(
                OnTerminationCreditNote::parse(c)
                    .ok_or_else(|| format!("on_termination_credit_note {c:?}"))?,
            ),
        };
        let on_termination_invoice = OnTerminationInvoice::parse(&item.on_termination_invoice)
            .ok_or_else(|| format!("on_termination_invoice {:?}", item.on_termination_invoice))?;
        Subscription::from_state(SubscriptionState {
            lago_id: item.subscription_id,
            external_id: item.external_id,
            external_customer_id: item.external_customer_id,
            customer_id: item.customer_id,
            plan_code: item.plan_code,
            effective_plan_code: item.effective_plan_code,
            name: item.name,
            status,
            billing_time,
            subscription_at: item.subscription_at,
            started_at: item.started_at,
            initial_started_at: item.initial_started_at,
            ending_at: item.ending_at,
            terminated_at: item.terminated_at,
            canceled_at: item.canceled_at,
            previous_plan_code: item.previous_plan_code,
            previous_subscription_id: item.previous_subscription_id,
            next_plan_code: item.next_plan_code,
            next_subscription_id: item.next_subscription_id,
            downgrade_plan_date: item.downgrade_plan_date,
            on_termination_credit_note,
            on_termination_invoice,
        })
    }
}

/// Every subscription of an external id, with the family head's version as read.
#[derive(Debug, Clone)]
pub struct SubscriptionFamily {
    /// The head's version (0: no subscription was ever written under the external id).
    pub version: u64,
    /// The subscriptions, oldest first.
    pub subscriptions: Vec<Record<Subscription>>,
}

/// One atomic change to an external id's subscriptions, optionally with the override plan and
/// the customer (its currency) it depends on: all of it is written, or none.
#[derive(Debug, Clone)]
pub struct SubscriptionWrite<'a> {
    /// The external id whose family head is advanced.
    pub external_id: &'a str,
    /// The head version the change was decided on ([`SubscriptionFamily::version`]).
    pub read_version: u64,
    /// Subscriptions to store: version 1 creates, a later version replaces the one read at
    /// `version - 1`.
    pub subscriptions: Vec<&'a Record<Subscription>>,
    /// An override plan to store (version 1 creates, later replaces).
    pub plan: Option<&'a Record<Plan>>,
    /// The customer, replaced at `version - 1` (its currency set from the plan).
    pub customer: Option<&'a Record<Customer>>,
    /// Domain events of the change to publish after it (`<subscription id>#<webhook type>`),
    /// put in the external id's outbox in the same transaction
    /// ([`super::billing_schedule::BillingProgress::pending_events`]).
    pub pending_events: Vec<String>,
}

fn subscription_item(
    org_id: &str,
    record: &Record<Subscription>,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let mut item = mapping::to_item(org_id, record)?;
    item.insert(
        "gsi1pk".into(),
        s(customer_pk(org_id, record.value.customer_id())),
    );
    item.insert(
        "gsi1sk".into(),
        s(format!(
            "{}#{}",
            record.created_at.to_rfc3339(),
            record.lago_id
        )),
    );
    Ok(item)
}

fn versioned_put(
    table: &str,
    item: HashMap<String, AttributeValue>,
    version: u64,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder().table_name(table).set_item(Some(item));
    let put = if version <= 1 {
        put.condition_expression("attribute_not_exists(pk)")
    } else {
        put.condition_expression("attribute_exists(pk) AND version = :v")
            .expression_attribute_values(":v", AttributeValue::N((version - 1).to_string()))
    };
    let put = put
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl BillingStore {
    /// Every subscription ever created under `external_id` (active, pending, terminated,
    /// canceled), oldest first.
    pub async fn subscriptions_by_external_id(
        &self,
        org_id: &str,
        external_id: &str,
    ) -> Result<Vec<Record<Subscription>>, StoreError> {
        Ok(self
            .subscription_family(org_id, external_id)
            .await?
            .subscriptions)
    }

    /// The subscriptions of `external_id` and the version of their family head, the basis of
    /// a [`SubscriptionWrite`].
    pub async fn subscription_family(
        &self,
        org_id: &str,
        external_id: &str,
    ) -> Result<SubscriptionFamily, StoreError> {
        let head = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(format!("SUBHEAD#{external_id}")))
            .consistent_read(true)
            .send()
            .await?;
        let version = head
            .item
            .and_then(|i| i.get("version").cloned())
            .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
            .unwrap_or(0);
        let prefix = format!("{}{external_id}#", Subscription::PREFIX);
        let mut subscriptions = self
            .query_subscriptions(org_id, &prefix)
            .await?
            .into_iter()
            // An external id that extends this one (`a` and `a#b`) shares the key prefix.
            .filter(|r| r.value.external_id() == external_id)
            .collect::<Vec<_>>();
        subscriptions.sort_by(|a, b| (a.created_at, &a.lago_id).cmp(&(b.created_at, &b.lago_id)));
        Ok(SubscriptionFamily {
            version,
            subscriptions,
        })
    }

    /// Every subscription of the organization (at most [`LIST_SCAN_MAX`]), oldest first.
    pub async fn subscriptions(
        &self,
        org_id: &str,
    ) -> Result<Vec<Record<Subscription>>, StoreError> {
        let mut all = self
            .query_subscriptions(org_id, Subscription::PREFIX)
            .await?;
        all.sort_by(|a, b| (a.created_at, &a.lago_id).cmp(&(b.created_at, &b.lago_id)));
        Ok(all)
    }

    /// Every subscription of a customer (by the customer's Lago id), oldest first. Read from
    /// the index, so eventually consistent.
    pub async fn subscriptions_by_customer(
        &self,
        org_id: &str,
        customer_id: &str,
    ) -> Result<Vec<Record<Subscription>>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        while out.len() < LIST_SCAN_MAX {
            let page = self
                .client()
                .query()
                .table_name(self.table())
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :pk")
                .expression_attribute_values(":pk", s(customer_pk(org_id, customer_id)))
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                out.push(mapping::from_item(item)?);
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok(out)
    }

    async fn query_subscriptions(
        &self,
        org_id: &str,
        prefix: &str,
    ) -> Result<Vec<Record<Subscription>>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        while out.len() < LIST_SCAN_MAX {
            let page = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(org_pk(org_id)))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                out.push(mapping::from_item(item)?);
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok(out)
    }

    /// Writes one change to an external id's subscriptions in a single transaction, advancing
    /// the family head from `read_version`. `Conflict` if anything it read changed meanwhile
    /// (the head, a subscription, the plan or the customer): re-read and decide again.
    pub async fn write_subscriptions(
        &self,
        org_id: &str,
        change: &SubscriptionWrite<'_>,
    ) -> Result<(), StoreError> {
        let mut items = Vec::with_capacity(change.subscriptions.len() + 3);
        let head = HashMap::from([
            ("pk".to_owned(), s(org_pk(org_id))),
            (
                "sk".to_owned(),
                s(format!("SUBHEAD#{}", change.external_id)),
            ),
            ("external_id".to_owned(), s(change.external_id)),
            (
                "version".to_owned(),
                AttributeValue::N((change.read_version + 1).to_string()),
            ),
        ]);
        // The billing clock looks at this external id again from the time of the change.
        if let Some(at) = change.subscriptions.iter().map(|r| r.updated_at).max() {
            items.push(super::billing_schedule::touch(
                self.table(),
                org_id,
                change.external_id,
                at,
                change.read_version + 1,
                &change.pending_events,
            )?);
        }
        for record in &change.subscriptions {
            items.push(versioned_put(
                self.table(),
                subscription_item(org_id, record)?,
                record.version,
            )?);
        }
        if let Some(plan) = change.plan {
            items.push(versioned_put(
                self.table(),
                plan_item(org_id, plan)?,
                plan.version,
            )?);
        }
        if let Some(customer) = change.customer {
            items.push(versioned_put(
                self.table(),
                mapping::to_item(org_id, customer)?,
                customer.version.max(2),
            )?);
        }
        // The head goes last: a reader that sees it advanced sees every other item of the
        // change too (DynamoDB's reads are per-item; the emulator applies items in order).
        // `subscription_family` reads the head before the subscriptions for the same reason.
        items.push(versioned_put(self.table(), head, change.read_version + 1)?);
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match transaction_failures(&e) {
                Some(failed) if failed.iter().any(|f| *f) => Err(StoreError::Conflict),
                _ => Err(e.into()),
            },
        }
    }
}

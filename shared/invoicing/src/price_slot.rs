//! What one slot's invoice holds: its boundaries, subscription fee, usage fees, taxes and
//! totals, computed from the catalog and the usage states. Creating an invoice and refreshing
//! a draft call the same code, so a refresh is exactly "create it again now".

use billing::{
    catalog::{Record, customer::Customer, organization::Organization, plan::Plan, tax::Tax},
    invoice::{
        ChargeLine, ComputedInvoice, InvoiceLines, Numbering, Slot, SlotKind, SubscriptionTimeline,
        TaxInfo, terminated_by,
    },
    invoice_number::DocumentNumbering,
    invoice_totals::{TaxRate, TaxSources},
    period::InvoiceBoundaries,
};
use billing_aws::{
    BillingStore,
    context::{PricedSubscription, SubscriptionContext},
    usage_pricing::charge_usage,
};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::{Deps, InvoicingError, derived_uuid};

/// The organization's side of pricing: settings, taxes, the customer.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The organization.
    pub org: Organization,
    /// Every tax of the organization.
    pub taxes: Vec<Record<Tax>>,
}

impl Catalog {
    /// Reads the organization and its taxes.
    pub async fn load(store: &BillingStore, org_id: &str) -> Result<Self, InvoicingError> {
        let org = match store.organization(org_id).await {
            Ok(o) => o,
            Err(billing_aws::StoreError::NotFound) => {
                return Err(InvoicingError::NotFound("organization"));
            }
            Err(e) => return Err(e.into()),
        };
        let (taxes, _) = store.list::<Tax>(org_id, 1, 1000).await?;
        Ok(Self { org, taxes })
    }

    fn info(t: &Record<Tax>) -> TaxInfo {
        TaxInfo {
            lago_id: t.lago_id.clone(),
            code: t.value.code().to_owned(),
            name: t.value.name().to_owned(),
            description: t.value.description().map(str::to_owned),
            rate: t.value.rate(),
        }
    }

    fn by_codes(&self, codes: &[String]) -> Vec<TaxInfo> {
        codes
            .iter()
            .filter_map(|c| self.taxes.iter().find(|t| t.value.code() == c))
            .map(Self::info)
            .collect()
    }

    /// The taxes of a fee (SEMANTICS §8.4, first non-empty source wins): the charge's, the
    /// plan's, the customer's, the organization's defaults.
    pub fn fee_taxes(
        &self,
        charge_codes: &[String],
        plan: &Plan,
        customer: Option<&Customer>,
    ) -> Vec<TaxInfo> {
        let charge = self.by_codes(charge_codes);
        let plan_taxes = self.by_codes(plan.tax_codes());
        let customer_taxes: Vec<TaxInfo> = customer
            .map(|c| {
                c.tax_ids()
                    .iter()
                    .filter_map(|id| self.taxes.iter().find(|t| &t.lago_id == id))
                    .map(Self::info)
                    .collect()
            })
            .unwrap_or_default();
        let org_taxes: Vec<TaxInfo> = self
            .taxes
            .iter()
            .filter(|t| t.value.applied_to_organization())
            .map(Self::info)
            .collect();
        let rates = |v: &[TaxInfo]| v.iter().map(TaxInfo::rate).collect::<Vec<TaxRate>>();
        let (c, p, cu, o) = (
            rates(&charge),
            rates(&plan_taxes),
            rates(&customer_taxes),
            rates(&org_taxes),
        );
        let chosen = TaxSources {
            charge: &c,
            plan: &p,
            customer: &cu,
            billing_entity: &o,
            ..Default::default()
        }
        .applicable()
        .to_vec();
        // Map the chosen rates back to their snapshots (codes are unique in an organization).
        [charge, plan_taxes, customer_taxes, org_taxes]
            .into_iter()
            .find(|source| {
                !source.is_empty()
                    && source
                        .iter()
                        .map(|t| t.code.as_str())
                        .eq(chosen.iter().map(|r| r.code()))
            })
            .unwrap_or_default()
    }

    /// Grace days: the customer's, else the organization's.
    pub fn grace_days(&self, customer: Option<&Customer>) -> u32 {
        customer
            .and_then(|c| c.invoice_grace_period())
            .unwrap_or(self.org.settings.invoice_grace_period)
    }

    /// Net payment term: the customer's, else the organization's.
    pub fn net_payment_term(&self, customer: Option<&Customer>) -> u32 {
        customer
            .and_then(|c| c.net_payment_term())
            .unwrap_or(self.org.settings.net_payment_term)
    }

    /// Whether a zero-amount invoice is finalized (else closed).
    pub fn finalize_zero_amount(&self, customer: Option<&Customer>) -> bool {
        use billing::catalog::customer::ZeroAmountInvoice;
        match customer.map(|c| c.finalize_zero_amount_invoice()) {
            Some(ZeroAmountInvoice::Finalize) => true,
            Some(ZeroAmountInvoice::Skip) => false,
            _ => self.org.settings.finalize_zero_amount_invoice,
        }
    }

    /// How invoices of `customer` are numbered.
    pub fn numbering(&self, customer: Option<&Record<Customer>>) -> Numbering {
        use billing::catalog::organization::DocumentNumbering as OrgNumbering;
        Numbering {
            scheme: match self.org.settings.document_numbering {
                OrgNumbering::PerCustomer => DocumentNumbering::PerCustomer,
                OrgNumbering::PerOrganization => DocumentNumbering::PerBillingEntity,
            },
            prefix: self.org.settings.document_number_prefix.clone(),
            customer_sequential_id: customer.and_then(|c| c.sequential_id).unwrap_or(0),
            timezone: self.org.settings.timezone,
        }
    }
}

/// A slot's invoice content.
#[derive(Debug, Clone)]
pub struct PricedSlot {
    /// Fees and totals.
    pub computed: ComputedInvoice,
    /// The boundaries.
    pub boundaries: InvoiceBoundaries,
}

/// The timeline of a priced subscription.
pub fn timeline(ps: &PricedSubscription) -> SubscriptionTimeline<'_> {
    SubscriptionTimeline {
        subscription: &ps.subscription.value,
        created_at: ps.subscription.created_at,
        plan: &ps.plan.value,
        timezone: ps.timezone,
    }
}

/// Computes `slot`'s invoice for `ps`, one of `context`'s subscriptions. `prior_fee` says
/// whether an earlier invoice billed a subscription fee.
#[allow(clippy::too_many_arguments)]
pub async fn price_slot(
    deps: &Deps,
    catalog: &Catalog,
    context: &SubscriptionContext,
    ps: &PricedSubscription,
    slot: Slot,
    invoice_id: &str,
    prior_fee: bool,
    now: DateTime<Utc>,
) -> Result<PricedSlot, InvoicingError> {
    let org_id = &catalog.org.id;
    let line = timeline(ps);
    let boundaries = ps.dates.invoice_boundaries(slot.at)?;
    let s = &ps.subscription.value;
    let customer = context.customer.as_ref().map(|c| &c.value);
    let predecessor_change = s.previous_subscription_id().and_then(|prev| {
        context
            .subscriptions
            .iter()
            .find(|o| o.subscription.lago_id == prev)
            .and_then(|o| terminated_by(&o.subscription.value))
    });
    let fee = if line.bills_subscription_fee(&slot)? {
        Some(line.fee_facts(&slot, prior_fee, terminated_by(s), predecessor_change)?)
    } else {
        None
    };
    let mut usages = Vec::new();
    if matches!(slot.kind, SlotKind::Periodic | SlotKind::Termination) {
        let from = boundaries.charges_from_datetime();
        let to = boundaries.charges_to_datetime();
        let states = deps
            .usage
            .states_upto(org_id, s.external_id(), from)
            .await?;
        for (charge, spec) in &ps.charges {
            let usage = charge_usage(
                &deps.usage,
                org_id,
                s.external_id(),
                spec,
                from,
                to,
                boundaries.charges_duration_days(),
                &states,
            )
            .await?;
            usages.push((charge, spec, usage));
        }
    }
    let charges: Vec<ChargeLine<'_>> = usages
        .iter()
        .map(|(charge, spec, usage)| ChargeLine {
            charge,
            metric: &spec.metric,
            usage,
            taxes: catalog.fee_taxes(charge.tax_codes(), &ps.plan.value, customer),
        })
        .collect();
    // A periodic slot starts the next period: recurring pay-in-advance charges are billed
    // again for it (SEMANTICS §4.9), from the units at the end of the closed one.
    let renewal = if slot.kind == SlotKind::Periodic {
        let next = ps.dates.current_usage_boundaries(slot.at)?;
        Some((next.charges_from_datetime(), next.charges_to_datetime()))
    } else {
        None
    };
    let lines = InvoiceLines {
        invoice_id,
        renewal,
        timeline: &line,
        slot,
        boundaries,
        subscription_fee: fee,
        subscription_taxes: catalog.fee_taxes(&[], &ps.plan.value, customer),
        charges,
        now,
    };
    let fee_id = |key: &str| derived_uuid(&["fee", invoice_id, key]);
    let computed = billing::invoice::compute_invoice(&lines, &fee_id, true)?;
    Ok(PricedSlot {
        computed,
        boundaries,
    })
}

/// The timezone of a context (its customer's, else the organization's).
pub fn context_timezone(context: &SubscriptionContext, org: &Organization) -> Tz {
    context
        .customer
        .as_ref()
        .map(|c| c.value.applicable_timezone(org.settings.timezone))
        .unwrap_or(org.settings.timezone)
}

//! The taxes that may apply to one subscription's charge fees, read once (SEMANTICS §8.4,
//! first non-empty source wins): the charge's own, else the plan's, else the customer's, else
//! the organization's defaults. Current usage and fee estimates both resolve taxes this way.

use std::collections::BTreeMap;

use billing::{
    catalog::{Record, customer::Customer, plan::Plan, tax::Tax},
    invoice_totals::{TaxRate, TaxSources},
};

use crate::{BillingStore, StoreError};

/// The most taxes one organization's list is read to (R19); Lago organizations have a few.
const TAXES_MAX: usize = 1000;

/// The taxes of one subscription's plan, customer and organization.
#[derive(Debug, Clone)]
pub struct TaxContext {
    by_code: BTreeMap<String, Record<Tax>>,
    plan: Vec<TaxRate>,
    customer: Vec<TaxRate>,
    organization: Vec<TaxRate>,
}

impl TaxContext {
    /// Reads the organization's taxes and resolves the plan's, the customer's (when there is
    /// one) and the organization's defaults.
    pub async fn load(
        store: &BillingStore,
        org_id: &str,
        customer: Option<&Customer>,
        plan: &Plan,
    ) -> Result<Self, StoreError> {
        let (all, _) = store.list::<Tax>(org_id, 1, TAXES_MAX).await?;
        let rate = |t: &Record<Tax>| TaxRate::from_tax(&t.value);
        let by_code: BTreeMap<String, Record<Tax>> = all
            .iter()
            .map(|t| (t.value.code().to_owned(), t.clone()))
            .collect();
        let plan = plan
            .tax_codes()
            .iter()
            .filter_map(|c| by_code.get(c).map(rate))
            .collect();
        // Customers apply taxes by Lago id (a renamed tax stays applied).
        let customer = customer
            .map(|c| {
                c.tax_ids()
                    .iter()
                    .filter_map(|id| all.iter().find(|t| &t.lago_id == id))
                    .map(rate)
                    .collect()
            })
            .unwrap_or_default();
        let organization = all
            .iter()
            .filter(|t| t.value.applied_to_organization())
            .map(rate)
            .collect();
        Ok(Self {
            by_code,
            plan,
            customer,
            organization,
        })
    }

    /// The taxes of a charge fee whose charge has `charge_codes`.
    pub fn for_charge(&self, charge_codes: &[String]) -> Vec<TaxRate> {
        let charge: Vec<TaxRate> = charge_codes
            .iter()
            .filter_map(|c| self.by_code.get(c))
            .map(|t| TaxRate::from_tax(&t.value))
            .collect();
        TaxSources {
            charge: &charge,
            plan: &self.plan,
            customer: &self.customer,
            billing_entity: &self.organization,
            ..Default::default()
        }
        .applicable()
        .to_vec()
    }

    /// A tax by code (for its name, description and Lago id on applied taxes).
    pub fn tax(&self, code: &str) -> Option<&Record<Tax>> {
        self.by_code.get(code)
    }
}

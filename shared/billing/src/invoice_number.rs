//! Invoice numbers (SEMANTICS §8.8). Numbers are assigned only at finalization; drafts show
//! `<PREFIX>-DRAFT`. The caller reads the existing sequential ids in the right scope (the
//! customer's invoices in one billing entity, or the billing entity's) and passes them in.

/// How an organization numbers its invoices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentNumbering {
    /// `PREFIX-<customer seq>-<invoice seq>`, a sequence per (customer, billing entity).
    PerCustomer,
    /// `PREFIX-YYYYMM-<entity seq>`, one sequence per billing entity that never resets.
    PerBillingEntity,
}

/// The default prefix: the first 3 characters of the billing entity name, upper-cased, then
/// `-`, then the last 4 characters of its id, upper-cased (`LAG-1A2B`).
pub fn default_prefix(billing_entity_name: &str, billing_entity_id: &str) -> String {
    let head: String = billing_entity_name.chars().take(3).collect();
    let chars: Vec<char> = billing_entity_id.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("{}-{}", head.to_uppercase(), tail.to_uppercase())
}

/// The next sequential id: one above the largest existing one in scope (1 when none). Voided
/// invoices keep their ids, drafts have none, so the sequence has no gaps.
pub fn next_sequential_id(existing: &[u64]) -> u64 {
    existing
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .saturating_add(1)
}

/// A finalized invoice number. `%03d` is a minimum width (1000 prints as `1000`).
/// `year_month` is the finalization month in the billing entity's timezone (per-entity only).
pub fn invoice_number(
    numbering: DocumentNumbering,
    prefix: &str,
    customer_sequential_id: u64,
    sequential_id: u64,
    year_month: (i32, u32),
) -> String {
    match numbering {
        DocumentNumbering::PerCustomer => {
            format!("{prefix}-{customer_sequential_id:03}-{sequential_id:03}")
        }
        DocumentNumbering::PerBillingEntity => {
            format!(
                "{prefix}-{:04}{:02}-{sequential_id:03}",
                year_month.0, year_month.1
            )
        }
    }
}

/// A draft's number.
pub fn draft_number(prefix: &str) -> String {
    format!("{prefix}-DRAFT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_are_minimums() {
        assert_eq!(
            invoice_number(
                DocumentNumbering::PerCustomer,
                "LAG-1A2B",
                1,
                1000,
                (2024, 1)
            ),
            "LAG-1A2B-001-1000"
        );
        assert_eq!(
            invoice_number(
                DocumentNumbering::PerBillingEntity,
                "LAG-1A2B",
                7,
                16,
                (2024, 3)
            ),
            "LAG-1A2B-202403-016"
        );
    }
}

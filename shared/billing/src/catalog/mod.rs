//! The records an organization configures through the API: billable metrics, taxes, customers
//! and the organization itself. Each is validated on construction; a rejected field is reported
//! as a [`FieldError`] carrying Lago's field name and error code, so the HTTP edge can answer with
//! Lago's `validation_errors` envelope without deciding anything itself.

pub mod customer;
pub mod event;
pub mod metric;
pub mod organization;
pub mod plan;
pub mod subscription;
pub mod tax;
pub mod webhook_endpoint;

/// One rejected input field: Lago's field name and its snake_case error code
/// (`value_is_mandatory`, `value_is_invalid`, `invalid_value`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field as Lago names it in `error_details` (`code`, `aggregation_type`, `filters`, ...).
    pub field: String,
    /// Lago's error code for the field.
    pub code: &'static str,
}

impl FieldError {
    /// A rejected field.
    pub fn new(field: impl Into<String>, code: &'static str) -> Self {
        Self {
            field: field.into(),
            code,
        }
    }
}

/// Every rejected field of one input, in the order they were found.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
#[error("{} invalid field(s)", .0.len())]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Records a rejected field.
    pub fn push(&mut self, field: impl Into<String>, code: &'static str) {
        self.0.push(FieldError::new(field, code));
    }

    /// `Ok(())` when nothing was rejected.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// A `code` as Lago accepts it for metrics, taxes, plans and the like: non-empty once trimmed,
/// at most 255 characters, and without `/` (it travels in URL paths).
pub fn check_code(field: &str, code: &str, errors: &mut ValidationErrors) {
    if code.trim().is_empty() {
        errors.push(field, "value_is_mandatory");
    } else if code.chars().count() > 255 || code.contains('/') {
        errors.push(field, "value_is_invalid");
    }
}

/// A required free-text name: non-empty once trimmed, at most 255 characters.
pub fn check_name(field: &str, name: &str, errors: &mut ValidationErrors) {
    if name.trim().is_empty() {
        errors.push(field, "value_is_mandatory");
    } else if name.chars().count() > 255 {
        errors.push(field, "value_is_invalid");
    }
}

/// A stored record: the domain value plus the identity and timestamps the store gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<T> {
    /// Lago's UUID for the record.
    pub lago_id: String,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Per-organization sequence number, for records that have one (customers).
    pub sequential_id: Option<u64>,
    /// Optimistic-concurrency version: a replace succeeds only over the version it read.
    pub version: u64,
    /// The record itself.
    pub value: T,
}

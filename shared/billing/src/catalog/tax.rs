//! Taxes: a named percentage that organizations, customers, plans and charges refer to by code.

use rust_decimal::Decimal;

use super::{ValidationErrors, check_code, check_name};

/// What a caller supplies to define (or fully redefine) a tax.
#[derive(Debug, Clone, Default)]
pub struct TaxInput {
    /// Display name (required).
    pub name: Option<String>,
    /// Unique code within the organization (required).
    pub code: Option<String>,
    /// The rate in percent as sent on the wire (a decimal string such as `"20.0"`).
    pub rate: Option<String>,
    /// Internal description.
    pub description: Option<String>,
    /// Whether the organization applies the tax to every customer by default.
    pub applied_to_organization: Option<bool>,
}

/// A validated tax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tax {
    name: String,
    code: String,
    rate: Decimal,
    description: Option<String>,
    applied_to_organization: bool,
}

impl Tax {
    /// Validates a complete tax; the rate is a percentage between 0 and 100 inclusive.
    pub fn new(input: TaxInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = input.name.unwrap_or_default();
        check_name("name", &name, &mut errors);
        let code = input.code.unwrap_or_default();
        check_code("code", &code, &mut errors);
        let rate = match input.rate.as_deref().map(str::trim) {
            None | Some("") => {
                errors.push("rate", "value_is_mandatory");
                None
            }
            Some(s) => match parse_rate(s) {
                Some(r) => Some(r),
                None => {
                    errors.push("rate", "value_is_invalid");
                    None
                }
            },
        };
        errors.into_result()?;
        Ok(Self {
            name,
            code,
            rate: rate.unwrap_or_default(),
            description: input.description,
            applied_to_organization: input.applied_to_organization.unwrap_or(false),
        })
    }

    /// The input that reproduces this tax, for applying a partial update on top.
    pub fn to_input(&self) -> TaxInput {
        TaxInput {
            name: Some(self.name.clone()),
            code: Some(self.code.clone()),
            rate: Some(self.rate.to_string()),
            description: self.description.clone(),
            applied_to_organization: Some(self.applied_to_organization),
        }
    }

    /// Display name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Unique code within the organization.
    pub fn code(&self) -> &str {
        &self.code
    }
    /// The rate in percent (20 means 20 %).
    pub fn rate(&self) -> Decimal {
        self.rate
    }
    /// Internal description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// Whether the organization applies it to every customer by default.
    pub fn applied_to_organization(&self) -> bool {
        self.applied_to_organization
    }
}

/// A plain decimal percentage in `0..=100`; exponents, signs and other text are refused.
fn parse_rate(s: &str) -> Option<Decimal> {
    let plain = s.chars().all(|c| c.is_ascii_digit() || c == '.')
        && s.chars().filter(|c| *c == '.').count() <= 1
        && s.chars().any(|c| c.is_ascii_digit());
    if !plain {
        return None;
    }
    let rate: Decimal = s.parse().ok()?;
    (rate <= Decimal::ONE_HUNDRED).then(|| rate.normalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tax(rate: Option<&str>) -> Result<Tax, ValidationErrors> {
        Tax::new(TaxInput {
            name: Some("VAT".into()),
            code: Some("vat_20".into()),
            rate: rate.map(String::from),
            ..Default::default()
        })
    }

    #[test]
    fn a_decimal_string_rate_is_kept_exactly() {
        assert_eq!(
            tax(Some("20.0")).map(|t| t.rate().to_string()),
            Ok("20".into())
        );
        assert_eq!(
            tax(Some("5.5")).map(|t| t.rate().to_string()),
            Ok("5.5".into())
        );
        assert_eq!(tax(Some("0")).map(|t| t.rate().to_string()), Ok("0".into()));
    }

    #[test]
    fn rates_that_are_not_a_percentage_are_refused() {
        for bad in ["-1", "100.01", "abc", "1e2", "."] {
            let errors = tax(Some(bad)).err().map(|e| e.0);
            assert_eq!(
                errors,
                Some(vec![super::super::FieldError::new(
                    "rate",
                    "value_is_invalid"
                )]),
                "{bad}"
            );
        }
        assert!(tax(None).is_err());
    }
}

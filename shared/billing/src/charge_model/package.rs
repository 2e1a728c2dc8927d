//! `package`: a price per started package of units, after free units (SEMANTICS §4.5).

use rust_decimal::Decimal;

use super::{AmountDetails, ChargeAmount, ChargeError, PricingInput, checked};

/// Validated `package` properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageProperties {
    amount: Decimal,
    package_size: u64,
    free_units: u64,
}

impl PackageProperties {
    /// Properties with a price per package, a package size (> 0) and free units.
    pub(crate) fn new(amount: Decimal, package_size: u64, free_units: u64) -> Self {
        Self {
            amount,
            package_size: package_size.max(1),
            free_units,
        }
    }

    /// Price of one package.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// Units per package.
    pub fn package_size(&self) -> u64 {
        self.package_size
    }

    /// Units given for free before packaging.
    pub fn free_units(&self) -> u64 {
        self.free_units
    }
}

/// `paid = units − free_units`; `amount = ceil(paid / size) × price` (0 when nothing is paid);
/// `unit_amount = amount / paid`.
pub fn price(props: &PackageProperties, input: &PricingInput) -> Result<ChargeAmount, ChargeError> {
    let free = Decimal::from(props.free_units);
    let paid = input.units() - free;
    let paid_units = paid.max(Decimal::ZERO);
    let amount = if paid <= Decimal::ZERO {
        Decimal::ZERO
    } else {
        let packages = checked(paid.checked_div(Decimal::from(props.package_size)))?.ceil();
        checked(packages.checked_mul(props.amount))?
    };
    let unit_amount = if paid_units.is_zero() {
        Decimal::ZERO
    } else {
        checked(amount.checked_div(paid_units))?
    };
    Ok(ChargeAmount::new(
        amount,
        unit_amount,
        AmountDetails::Package {
            free_units: free,
            paid_units,
            per_package_size: props.package_size,
            per_package_unit_amount: props.amount,
        },
    ))
}

//! Money: currencies, precise amounts for pricing maths, and integer minor units for invoices.
//!
//! Two types and one door between them (STYLE R7):
//! - [`PreciseAmount`] is a `Decimal` in the currency's *major* unit (`200.61725` EUR). Every
//!   pricing computation uses it.
//! - [`Money`] is an `i64` count of *minor* units (`20062` cents). It is what gets invoiced.
//! - The only way from the first to the second is [`PreciseAmount::round`], which names its
//!   [`RoundingRule`]. Lago rounds half-up (half away from zero) everywhere (SEMANTICS §0), so
//!   [`RoundingRule::HalfAwayFromZero`] is the rule the crate uses at every fee boundary.
//!
//! Arithmetic across currencies is an error, never a silent conversion, and overflow is an
//! error, never a wrap or a panic.

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};

/// What can go wrong with money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: expected {expected}, found {found}")]
    CurrencyMismatch {
        /// The currency of the left-hand side (or of the target).
        expected: Currency,
        /// The currency that did not match.
        found: Currency,
    },
    /// An amount does not fit in the representation (`i64` minor units or `Decimal`).
    #[error("amount overflow")]
    Overflow,
    /// A currency code that is not in the ISO 4217 table.
    #[error("unknown currency code {0:?}")]
    UnknownCurrency(String),
    /// An allocation was asked with no shares, a negative share, or shares summing to zero.
    #[error("invalid allocation shares")]
    InvalidShares,
}

/// An ISO 4217 currency with its number of decimals (the exponent).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    exponent: u32,
}

/// The ISO 4217 table: Lago's 138 currencies plus the three-decimal ones (BHD, IQD, JOD,
/// KWD, LYD, OMR, TND), with ISO exponents (CLF has 4).
#[rustfmt::skip]
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2),
    ("AUD", 2), ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2),
    ("BHD", 3), ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2), ("BRL", 2), ("BSD", 2),
    ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHF", 2), ("CLF", 4),
    ("CLP", 0), ("CNY", 2), ("COP", 2), ("CRC", 2), ("CVE", 2), ("CZK", 2), ("DJF", 0),
    ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ETB", 2), ("EUR", 2), ("FJD", 2),
    ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2), ("GMD", 2), ("GNF", 0),
    ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HRK", 2), ("HTG", 2), ("HUF", 2),
    ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("ISK", 0), ("JMD", 2), ("JOD", 3),
    ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0), ("KRW", 0), ("KWD", 3),
    ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2), ("LKR", 2), ("LRD", 2), ("LSL", 2),
    ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2), ("MKD", 2), ("MMK", 2), ("MNT", 2),
    ("MOP", 2), ("MRO", 2), ("MUR", 2), ("MVR", 2), ("MWK", 2), ("MXN", 2), ("MYR", 2),
    ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2), ("NOK", 2), ("NPR", 2), ("NZD", 2),
    ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2), ("PHP", 2), ("PKR", 2), ("PLN", 2),
    ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2), ("RUB", 2), ("RWF", 0), ("SAR", 2),
    ("SBD", 2), ("SCR", 2), ("SEK", 2), ("SGD", 2), ("SHP", 2), ("SLL", 2), ("SOS", 2),
    ("SRD", 2), ("STD", 2), ("SZL", 2), ("THB", 2), ("TJS", 2), ("TND", 3), ("TOP", 2),
    ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0), ("USD", 2),
    ("UYU", 2), ("UZS", 2), ("VND", 0), ("VUV", 0), ("WST", 2), ("XAF", 0), ("XCD", 2),
    ("XOF", 0), ("XPF", 0), ("YER", 2), ("ZAR", 2), ("ZMW", 2),
];

impl Currency {
    /// Euro (2 decimals), used often enough in tests and examples to name.
    pub const EUR: Currency = Currency {
        code: "EUR",
        exponent: 2,
    };
    /// US dollar (2 decimals).
    pub const USD: Currency = Currency {
        code: "USD",
        exponent: 2,
    };
    /// Japanese yen (0 decimals).
    pub const JPY: Currency = Currency {
        code: "JPY",
        exponent: 0,
    };
    /// Kuwaiti dinar (3 decimals).
    pub const KWD: Currency = Currency {
        code: "KWD",
        exponent: 3,
    };

    /// Looks up an ISO 4217 code (upper case, as Lago sends it).
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|&(code, exponent)| Currency { code, exponent })
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }

    /// The ISO 4217 code.
    pub fn code(self) -> &'static str {
        self.code
    }

    /// Decimals of the minor unit (EUR 2, JPY 0, KWD 3).
    pub fn exponent(self) -> u32 {
        self.exponent
    }

    /// Minor units per major unit (`10^exponent`, Lago's `subunit_to_unit`).
    pub fn subunit_to_unit(self) -> Decimal {
        Decimal::from(10_i64.pow(self.exponent))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// How a precise value becomes a whole number of minor units. The rule is always named at the
/// call site (STYLE R8), so that a reader never has to guess which rounding happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundingRule {
    /// Half away from zero: 0.5 → 1, −0.5 → −1, 2.5 → 3. Lago's rule for charge fees (Ruby
    /// `BigDecimal#round`, ROUND_HALF_UP), subscription fees, taxes and coupons (Ruby
    /// `Float#round`). Never banker's rounding.
    HalfAwayFromZero,
}

impl RoundingRule {
    fn strategy(self) -> RoundingStrategy {
        match self {
            Self::HalfAwayFromZero => RoundingStrategy::MidpointAwayFromZero,
        }
    }
}

/// Rounds a decimal count of minor units (Lago's `precise_*_cents`) to a whole `i64`.
///
/// This is the same door as [`PreciseAmount::round`] for values already expressed in cents
/// (taxes, coupons, prorated subscription fees are computed in cents by Lago).
pub fn round_cents(precise_cents: Decimal, rule: RoundingRule) -> Result<i64, MoneyError> {
    let rounded = precise_cents.round_dp_with_strategy(0, rule.strategy());
    i64::try_from(rounded).map_err(|_| MoneyError::Overflow)
}

/// An unrounded amount in the currency's major unit: the value every pricing formula computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreciseAmount {
    amount: Decimal,
    currency: Currency,
}

impl PreciseAmount {
    /// An amount of `amount` major units (`"200.61725"` EUR).
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self::new(Decimal::ZERO, currency)
    }

    /// An amount given in (possibly fractional) minor units, such as a dynamic charge's
    /// `precise_total_amount_cents`.
    pub fn from_precise_cents(cents: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let amount = cents
            .checked_div(currency.subunit_to_unit())
            .ok_or(MoneyError::Overflow)?;
        Ok(Self::new(amount, currency))
    }

    /// The amount in major units.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The unrounded amount in minor units (Lago's `precise_amount_cents`).
    pub fn precise_cents(&self) -> Result<Decimal, MoneyError> {
        self.amount
            .checked_mul(self.currency.subunit_to_unit())
            .ok_or(MoneyError::Overflow)
    }

    /// Adds an amount of the same currency.
    pub fn checked_add(&self, other: &PreciseAmount) -> Result<PreciseAmount, MoneyError> {
        same_currency(self.currency, other.currency)?;
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Self::new(amount, self.currency))
    }

    /// The one door to invoiced money: rounds to the currency's exponent with `rule`, then
    /// counts minor units. `round(amount, exponent) × subunit_to_unit`, as Lago does (§4.10).
    pub fn round(&self, rule: RoundingRule) -> Result<Money, MoneyError> {
        let rounded = self
            .amount
            .round_dp_with_strategy(self.currency.exponent, rule.strategy());
        let cents = rounded
            .checked_mul(self.currency.subunit_to_unit())
            .ok_or(MoneyError::Overflow)?;
        let cents = i64::try_from(cents.trunc()).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::new(cents, self.currency))
    }
}

/// A whole number of minor units in a currency: what an invoice shows (`amount_cents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money {
    cents: i64,
    currency: Currency,
}

impl Money {
    /// `cents` minor units of `currency`.
    pub fn new(cents: i64, currency: Currency) -> Self {
        Self { cents, currency }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// The count of minor units (`amount_cents`).
    pub fn cents(&self) -> i64 {
        self.cents
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount in major units, exactly.
    pub fn to_precise(&self) -> PreciseAmount {
        PreciseAmount::new(
            Decimal::from(self.cents) / self.currency.subunit_to_unit(),
            self.currency,
        )
    }

    /// Adds money of the same currency; overflow is an error.
    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        same_currency(self.currency, other.currency)?;
        let cents = self
            .cents
            .checked_add(other.cents)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(cents, self.currency))
    }

    /// Subtracts money of the same currency; overflow is an error.
    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        same_currency(self.currency, other.currency)?;
        let cents = self
            .cents
            .checked_sub(other.cents)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(cents, self.currency))
    }

    /// Sums amounts that must all be in `currency` (an empty sum is zero).
    pub fn sum_in<'a>(
        currency: Currency,
        items: impl IntoIterator<Item = &'a Money>,
    ) -> Result<Money, MoneyError> {
        items
            .into_iter()
            .try_fold(Money::zero(currency), |acc, m| acc.checked_add(m))
    }

    /// Splits this amount in proportion to `shares`, conserving every minor unit (largest
    /// remainder, STYLE R9): each part gets the floor of its exact share, then the units left
    /// over go one by one to the parts with the largest fractional remainders (ties to the
    /// earliest part). The parts always sum to `self`.
    pub fn allocate(&self, shares: &[Decimal]) -> Result<Vec<Money>, MoneyError> {
        let parts = allocate_cents(self.cents, shares)?;
        Ok(parts
            .into_iter()
            .map(|c| Money::new(c, self.currency))
            .collect())
    }
}

/// Largest-remainder split of `total` minor units by `shares` (see [`Money::allocate`]).
pub fn allocate_cents(total: i64, shares: &[Decimal]) -> Result<Vec<i64>, MoneyError> {
    if shares.is_empty() || shares.iter().any(|s| s.is_sign_negative() && !s.is_zero()) {
        return Err(MoneyError::InvalidShares);
    }
    let sum = shares
        .iter()
        .try_fold(Decimal::ZERO, |acc, s| acc.checked_add(*s))
        .ok_or(MoneyError::Overflow)?;
    if sum.is_zero() {
        return Err(MoneyError::InvalidShares);
    }
    let magnitude = Decimal::from(total.unsigned_abs());
    let sign: i64 = if total < 0 { -1 } else { 1 };
    let mut parts = Vec::with_capacity(shares.len());
    let mut remainders = Vec::with_capacity(shares.len());
    let mut allocated: i64 = 0;
    for share in shares {
        // magnitude × share / sum, without losing precision to an early division.
        let exact = magnitude
            .checked_mul(*share)
            .and_then(|p| p.checked_div(sum))
            .ok_or(MoneyError::Overflow)?;
        let floor = exact.floor();
        let part = i64::try_from(floor).map_err(|_| MoneyError::Overflow)?;
        allocated = allocated.checked_add(part).ok_or(MoneyError::Overflow)?;
        parts.push(part);
        remainders.push(exact - floor);
    }
    let magnitude_i = i64::try_from(magnitude).map_err(|_| MoneyError::Overflow)?;
    let mut left = magnitude_i - allocated;
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| remainders[b].cmp(&remainders[a]).then(a.cmp(&b)));
    // `left` is below the number of parts (each floor loses less than one unit), but the loop
    // cycles anyway so that the conservation never depends on that reasoning.
    let mut i = 0;
    while left > 0 {
        let idx = order[i % order.len()];
        parts[idx] += 1;
        left -= 1;
        i += 1;
    }
    Ok(parts.into_iter().map(|p| p * sign).collect())
}

fn same_currency(expected: Currency, found: Currency) -> Result<(), MoneyError> {
    if expected == found {
        Ok(())
    } else {
        Err(MoneyError::CurrencyMismatch { expected, found })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn currencies_carry_their_iso_exponent() {
        // Given the ISO 4217 table, when looking up a 0-, 2- and 3-decimal currency,
        // then each reports its exponent and subunit.
        let cases = [
            ("JPY", 0, dec!(1)),
            ("EUR", 2, dec!(100)),
            ("KWD", 3, dec!(1000)),
        ];
        for (code, exp, sub) in cases {
            let c = Currency::parse(code);
            assert_eq!(
                c.map(|c| (c.exponent(), c.subunit_to_unit())),
                Ok((exp, sub)),
                "{code}"
            );
        }
        assert_eq!(
            Currency::parse("XXX"),
            Err(MoneyError::UnknownCurrency("XXX".into()))
        );
    }

    #[test]
    fn rounding_is_half_away_from_zero_never_bankers() {
        // Lago's worked example: 200.61725 EUR → 20061.725 cents → 20062 (SEMANTICS §1.3).
        let cases = [
            (dec!(200.61725), Currency::EUR, 20062),
            (dec!(0.125), Currency::EUR, 13), // banker's would give 12
            (dec!(0.135), Currency::EUR, 14),
            (dec!(-0.125), Currency::EUR, -13),
            (dec!(2.5), Currency::JPY, 3), // banker's would give 2
            (dec!(1.2345), Currency::KWD, 1235),
        ];
        for (amount, currency, cents) in cases {
            let m = PreciseAmount::new(amount, currency).round(RoundingRule::HalfAwayFromZero);
            assert_eq!(m.map(|m| m.cents()), Ok(cents), "{amount} {currency}");
        }
    }

    #[test]
    fn mixing_currencies_is_an_error_not_a_panic() {
        let eur = Money::new(100, Currency::EUR);
        let usd = Money::new(100, Currency::USD);
        assert_eq!(
            eur.checked_add(&usd),
            Err(MoneyError::CurrencyMismatch {
                expected: Currency::EUR,
                found: Currency::USD
            })
        );
        assert!(Money::sum_in(Currency::EUR, [&eur, &usd]).is_err());
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let max = Money::new(i64::MAX, Currency::EUR);
        assert_eq!(
            max.checked_add(&Money::new(1, Currency::EUR)),
            Err(MoneyError::Overflow)
        );
        let huge = PreciseAmount::new(Decimal::MAX, Currency::EUR);
        assert_eq!(
            huge.round(RoundingRule::HalfAwayFromZero),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn allocation_gives_leftover_cents_to_largest_remainders() {
        // 100 cents in thirds: 33.33 each, one cent left → the first (ties go to the earliest).
        let parts = allocate_cents(100, &[dec!(1), dec!(1), dec!(1)]);
        assert_eq!(parts, Ok(vec![34, 33, 33]));
        // 10 cents by 1/6, 2/6, 3/6: 1.667, 3.333, 5 → floors 1, 3, 5, one left → the first.
        assert_eq!(
            allocate_cents(10, &[dec!(1), dec!(2), dec!(3)]),
            Ok(vec![2, 3, 5])
        );
        assert_eq!(allocate_cents(10, &[]), Err(MoneyError::InvalidShares));
        assert_eq!(
            allocate_cents(10, &[dec!(0)]),
            Err(MoneyError::InvalidShares)
        );
    }
}

//! `tax` bodies (API_CONTRACT §4.8). The rate is a string on input and a number on output.

use billing::catalog::{
    Record,
    tax::{Tax, TaxInput},
};
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Number, Value};

use super::{nullable, timestamp};

/// `{"tax": {...}}` of a create or an update.
#[derive(Debug, Default, Deserialize)]
pub struct TaxInputDto {
    // `null` is kept apart from absent (`Some(None)`): lago-api assigns every sent key, so a
    // null name, code or rate is refused as mandatory rather than ignored.
    #[serde(default, deserialize_with = "nullable")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    code: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable_rate")]
    rate: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    applied_to_organization: Option<bool>,
}

/// The rate as sent: Lago documents a decimal string (`"20.0"`), but lago-python-client's
/// `Tax.rate` is a float, so its requests carry a JSON number (`20.0`). Both are taken as the
/// decimal text they spell (a number by its shortest round-trip form), so validation and
/// storage see one representation and never a binary float.
fn rate_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Rate {
        Text(String),
        Number(Number),
    }
    Ok(Option::<Rate>::deserialize(d)?.map(|rate| match rate {
        Rate::Text(text) => text,
        Rate::Number(number) => number.to_string(),
    }))
}

/// [`rate_text`] with `null` kept apart from absent.
fn nullable_rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    rate_text(d).map(Some)
}

impl TaxInputDto {
    /// The domain input of a create.
    pub fn into_create(self) -> TaxInput {
        self.overlay(TaxInput::default())
    }

    /// The domain input of an update: the sent fields over the current tax.
    pub fn into_update(self, current: &Tax) -> TaxInput {
        self.overlay(current.to_input())
    }

    fn overlay(self, mut base: TaxInput) -> TaxInput {
        if let Some(name) = self.name {
            base.name = name;
        }
        if let Some(code) = self.code {
            base.code = code;
        }
        if let Some(rate) = self.rate {
            base.rate = rate;
        }
        if let Some(d) = self.description {
            base.description = d;
        }
        if self.applied_to_organization.is_some() {
            base.applied_to_organization = self.applied_to_organization;
        }
        base
    }
}

/// `TaxObject`.
#[derive(Debug, Serialize)]
pub struct TaxDto {
    lago_id: String,
    name: String,
    code: String,
    description: Option<String>,
    rate: Value,
    applied_to_organization: bool,
    created_at: String,
    add_ons_count: u64,
    customers_count: u64,
    plans_count: u64,
    charges_count: u64,
    commitments_count: u64,
}

/// A percentage as a JSON number: an integer when whole (`20`), else a float (`5.5`).
pub fn rate_number(rate: Decimal) -> Value {
    let rate = rate.normalize();
    if rate.fract().is_zero()
        && let Some(i) = rate.to_i64()
    {
        return Value::Number(Number::from(i));
    }
    rate.to_f64()
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

impl From<&Record<Tax>> for TaxDto {
    fn from(r: &Record<Tax>) -> Self {
        let t = &r.value;
        Self {
            lago_id: r.lago_id.clone(),
            name: t.name().to_owned(),
            code: t.code().to_owned(),
            description: t.description().map(str::to_owned),
            rate: rate_number(t.rate()),
            applied_to_organization: t.applied_to_organization(),
            created_at: timestamp(r.created_at),
            add_ons_count: 0,
            customers_count: 0,
            plans_count: 0,
            charges_count: 0,
            commitments_count: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rate_of(body: Value) -> Option<String> {
        serde_json::from_value::<TaxInputDto>(body)
            .ok()
            .and_then(|dto| dto.rate.flatten())
    }

    #[test]
    fn a_rate_is_read_from_a_decimal_string_or_a_json_number() {
        // Given the documented string form and the number lago-python-client sends
        let cases = [
            (json!({"rate": "20.0"}), Some("20.0"), "decimal string"),
            (
                json!({"rate": 20.5}),
                Some("20.5"),
                "float from lago-python-client",
            ),
            (
                json!({"rate": 12.25}),
                Some("12.25"),
                "float with two decimals",
            ),
            (json!({"rate": 20}), Some("20"), "integer"),
            (json!({"rate": null}), None, "null"),
            (json!({}), None, "absent"),
        ];
        for (body, expected, case) in cases {
            assert_eq!(rate_of(body).as_deref(), expected, "{case}");
        }
    }

    #[test]
    fn a_rate_of_another_json_type_is_refused() {
        for body in [
            json!({"rate": true}),
            json!({"rate": ["20"]}),
            json!({"rate": {}}),
        ] {
            assert!(
                serde_json::from_value::<TaxInputDto>(body.clone()).is_err(),
                "{body}"
            );
        }
    }
}

//! Billable metric definitions: what an event counts for, and how its values are aggregated.

use super::{ValidationErrors, check_code, check_name};

/// How the events of a period become units (Lago's `aggregation_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregationType {
    /// `count_agg`: the number of events.
    Count,
    /// `sum_agg`: the sum of a numeric property.
    Sum,
    /// `max_agg`: the largest value of a numeric property.
    Max,
    /// `unique_count_agg`: the distinct values of a property active at period end.
    UniqueCount,
    /// `latest_agg`: the value of the last event, floored at zero.
    Latest,
    /// `weighted_sum_agg`: the time-weighted average level of a property.
    WeightedSum,
}

impl AggregationType {
    /// Every aggregation type, in Lago's documented order.
    pub const ALL: [AggregationType; 6] = [
        Self::Count,
        Self::Sum,
        Self::Max,
        Self::UniqueCount,
        Self::WeightedSum,
        Self::Latest,
    ];

    /// Lago's wire name (`count_agg`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count_agg",
            Self::Sum => "sum_agg",
            Self::Max => "max_agg",
            Self::UniqueCount => "unique_count_agg",
            Self::Latest => "latest_agg",
            Self::WeightedSum => "weighted_sum_agg",
        }
    }

    /// Parses Lago's wire name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether a metric of this type may be recurring (persisted across periods).
    pub fn allows_recurring(self) -> bool {
        matches!(self, Self::Sum | Self::UniqueCount | Self::WeightedSum)
    }

    /// Whether a pay-in-advance charge may use a metric of this type.
    pub fn allows_pay_in_advance(self) -> bool {
        matches!(self, Self::Count | Self::Sum | Self::UniqueCount)
    }

    /// Whether the type reads a property (`field_name`) of each event.
    pub fn needs_field_name(self) -> bool {
        !matches!(self, Self::Count)
    }
}

/// How aggregated units are rounded before pricing (Lago's `rounding_function`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundingFunction {
    /// Towards positive infinity.
    Ceil,
    /// Towards negative infinity.
    Floor,
    /// Half away from zero.
    Round,
}

impl RoundingFunction {
    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ceil => "ceil",
            Self::Floor => "floor",
            Self::Round => "round",
        }
    }

    /// Parses Lago's wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Ceil, Self::Floor, Self::Round]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// The time unit of a weighted sum (Lago knows only `seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightedInterval {
    /// Values are weighted by the seconds they were held.
    Seconds,
}

impl WeightedInterval {
    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        "seconds"
    }

    /// Parses Lago's wire name.
    pub fn parse(s: &str) -> Option<Self> {
        (s == "seconds").then_some(Self::Seconds)
    }
}

/// A property key a metric can be filtered on, with the values it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricFilter {
    key: String,
    values: Vec<String>,
}

impl MetricFilter {
    /// The event property key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The values the key may take, in the order given.
    pub fn values(&self) -> &[String] {
        &self.values
    }
}

/// What a caller supplies to define (or fully redefine) a billable metric.
#[derive(Debug, Clone, Default)]
pub struct BillableMetricInput {
    /// Display name (required).
    pub name: Option<String>,
    /// Unique code within the organization (required).
    pub code: Option<String>,
    /// Internal description.
    pub description: Option<String>,
    /// `aggregation_type` as sent on the wire (required).
    pub aggregation_type: Option<String>,
    /// The event property aggregated (required except for `count_agg`).
    pub field_name: Option<String>,
    /// Whether usage is carried over from period to period.
    pub recurring: Option<bool>,
    /// `weighted_interval` as sent on the wire.
    pub weighted_interval: Option<String>,
    /// `rounding_function` as sent on the wire.
    pub rounding_function: Option<String>,
    /// Digits kept by the rounding function; negative rounds to tens, hundreds, ...
    pub rounding_precision: Option<i64>,
    /// An expression computing the units from the event (stored, evaluated at ingestion).
    pub expression: Option<String>,
    /// Filter keys and their allowed values.
    pub filters: Option<Vec<(String, Vec<String>)>>,
}

/// A validated billable metric definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillableMetric {
    name: String,
    code: String,
    description: Option<String>,
    aggregation_type: AggregationType,
    field_name: Option<String>,
    recurring: bool,
    weighted_interval: Option<WeightedInterval>,
    rounding_function: Option<RoundingFunction>,
    rounding_precision: Option<i32>,
    expression: Option<String>,
    filters: Vec<MetricFilter>,
}

/// The largest magnitude accepted for `rounding_precision` (a `Decimal` holds 28 digits).
const ROUNDING_PRECISION_MAX: i64 = 28;

impl BillableMetric {
    /// Validates a complete definition, reporting every rejected field at once.
    pub fn new(input: BillableMetricInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = input.name.unwrap_or_default();
        check_name("name", &name, &mut errors);
        let code = input.code.unwrap_or_default();
        check_code("code", &code, &mut errors);

        let aggregation_type = match input.aggregation_type.as_deref() {
            None | Some("") => {
                errors.push("aggregation_type", "value_is_mandatory");
                None
            }
            Some(s) => {
                let parsed = AggregationType::parse(s);
                if parsed.is_none() {
                    errors.push("aggregation_type", "value_is_invalid");
                }
                parsed
            }
        };

        let field_name = input.field_name.filter(|f| !f.trim().is_empty());
        let recurring = input.recurring.unwrap_or(false);
        let mut weighted_interval = None;
        if let Some(agg) = aggregation_type {
            if agg.needs_field_name() && field_name.is_none() {
                errors.push("field_name", "value_is_mandatory");
            }
            if recurring && !agg.allows_recurring() {
                errors.push("recurring", "not_compatible_with_aggregation_type");
            }
            if agg == AggregationType::WeightedSum {
                // Lago knows one interval; an absent one means it.
                match input.weighted_interval.as_deref() {
                    None => weighted_interval = Some(WeightedInterval::Seconds),
                    Some(s) => match WeightedInterval::parse(s) {
                        Some(w) => weighted_interval = Some(w),
                        None => errors.push("weighted_interval", "value_is_invalid"),
                    },
                }
            } else if let Some(s) = input.weighted_interval.as_deref()
                && WeightedInterval::parse(s).is_none()
            {
                errors.push("weighted_interval", "value_is_invalid");
            }
        }

        let rounding_function = match input.rounding_function.as_deref() {
            None => None,
            Some(s) => {
                let parsed = RoundingFunction::parse(s);
                if parsed.is_none() {
                    errors.push("rounding_function", "value_is_invalid");
                }
                parsed
            }
        };
        let rounding_precision = match input.rounding_precision {
            None => None,
            Some(p) if p.abs() <= ROUNDING_PRECISION_MAX => i32::try_from(p).ok(),
            Some(_) => {
                errors.push("rounding_precision", "value_is_invalid");
                None
            }
        };
        // A precision needs a function; an invalid function is already reported as invalid.
        if rounding_precision.is_some() && input.rounding_function.is_none() {
            errors.push("rounding_function", "value_is_mandatory");
        }

        let mut filters = Vec::new();
        for (key, values) in input.filters.unwrap_or_default() {
            if key.trim().is_empty() {
                errors.push("filters", "invalid_key");
                continue;
            }
            if values.is_empty() || values.iter().any(|v| v.is_empty()) {
                errors.push("filters", "invalid_values");
                continue;
            }
            if filters.iter().any(|f: &MetricFilter| f.key == key) {
                errors.push("filters", "duplicated_key");
                continue;
            }
            let mut unique: Vec<String> = Vec::with_capacity(values.len());
            for v in values {
                if !unique.contains(&v) {
                    unique.push(v);
                }
            }
            filters.push(MetricFilter {
                key,
                values: unique,
            });
        }
        // lago-api returns a metric's filters ordered by key (`has_many :filters, -> { order(:key) }`).
        filters.sort_by(|a, b| a.key.cmp(&b.key));

        errors.into_result()?;
        let Some(aggregation_type) = aggregation_type else {
            return Err(ValidationErrors(vec![super::FieldError::new(
                "aggregation_type",
                "value_is_mandatory",
            )]));
        };
        Ok(Self {
            name,
            code,
            description: input.description,
            field_name: if aggregation_type.needs_field_name() {
                field_name
            } else {
                field_name.filter(|_| false)
            },
            aggregation_type,
            recurring,
            weighted_interval,
            rounding_function,
            rounding_precision,
            expression: input.expression.filter(|e| !e.trim().is_empty()),
            filters,
        })
    }

    /// The input that reproduces this metric, for applying a partial update on top.
    pub fn to_input(&self) -> BillableMetricInput {
        BillableMetricInput {
            name: Some(self.name.clone()),
            code: Some(self.code.clone()),
            description: self.description.clone(),
            aggregation_type: Some(self.aggregation_type.as_str().to_owned()),
            field_name: self.field_name.clone(),
            recurring: Some(self.recurring),
            weighted_interval: self.weighted_interval.map(|w| w.as_str().to_owned()),
            rounding_function: self.rounding_function.map(|f| f.as_str().to_owned()),
            rounding_precision: self.rounding_precision.map(i64::from),
            expression: self.expression.clone(),
            filters: Some(
                self.filters
                    .iter()
                    .map(|f| (f.key.clone(), f.values.clone()))
                    .collect(),
            ),
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
    /// Internal description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// The aggregation applied to events.
    pub fn aggregation_type(&self) -> AggregationType {
        self.aggregation_type
    }
    /// The aggregated event property (`None` for `count_agg`).
    pub fn field_name(&self) -> Option<&str> {
        self.field_name.as_deref()
    }
    /// Whether usage carries over from period to period.
    pub fn recurring(&self) -> bool {
        self.recurring
    }
    /// The weighting unit of a weighted sum.
    pub fn weighted_interval(&self) -> Option<WeightedInterval> {
        self.weighted_interval
    }
    /// The rounding applied to aggregated units.
    pub fn rounding_function(&self) -> Option<RoundingFunction> {
        self.rounding_function
    }
    /// The digits kept by the rounding function.
    pub fn rounding_precision(&self) -> Option<i32> {
        self.rounding_precision
    }
    /// The stored unit expression.
    pub fn expression(&self) -> Option<&str> {
        self.expression.as_deref()
    }
    /// Filter keys, ordered by key, and their allowed values in the order given.
    pub fn filters(&self) -> &[MetricFilter] {
        &self.filters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(agg: &str) -> BillableMetricInput {
        BillableMetricInput {
            name: Some("Storage".into()),
            code: Some("storage".into()),
            aggregation_type: Some(agg.into()),
            field_name: Some("gb".into()),
            ..Default::default()
        }
    }

    fn codes(r: Result<BillableMetric, ValidationErrors>) -> Vec<(String, &'static str)> {
        match r {
            Ok(_) => vec![],
            Err(e) => e.0.into_iter().map(|f| (f.field, f.code)).collect(),
        }
    }

    #[test]
    fn every_lago_aggregation_type_is_accepted_with_a_field_name() {
        for agg in AggregationType::ALL {
            let m = BillableMetric::new(input(agg.as_str()));
            assert_eq!(m.map(|m| m.aggregation_type()), Ok(agg), "{}", agg.as_str());
        }
    }

    #[test]
    fn an_unknown_aggregation_type_is_invalid_and_a_missing_one_mandatory() {
        assert_eq!(
            codes(BillableMetric::new(input("custom_agg"))),
            vec![("aggregation_type".into(), "value_is_invalid")]
        );
        let mut i = input("sum_agg");
        i.aggregation_type = None;
        assert_eq!(
            codes(BillableMetric::new(i)),
            vec![("aggregation_type".into(), "value_is_mandatory")]
        );
    }

    #[test]
    fn field_name_is_required_except_for_count() {
        for agg in AggregationType::ALL {
            let mut i = input(agg.as_str());
            i.field_name = None;
            let expected = if agg == AggregationType::Count {
                vec![]
            } else {
                vec![("field_name".into(), "value_is_mandatory")]
            };
            assert_eq!(codes(BillableMetric::new(i)), expected, "{}", agg.as_str());
        }
    }

    #[test]
    fn recurring_is_refused_for_count_max_and_latest() {
        for agg in AggregationType::ALL {
            let mut i = input(agg.as_str());
            i.recurring = Some(true);
            let refused = matches!(
                agg,
                AggregationType::Count | AggregationType::Max | AggregationType::Latest
            );
            assert_eq!(BillableMetric::new(i).is_err(), refused, "{}", agg.as_str());
        }
    }

    #[test]
    fn rounding_options_are_validated() {
        let mut i = input("sum_agg");
        i.rounding_function = Some("truncate".into());
        assert_eq!(
            codes(BillableMetric::new(i)),
            vec![("rounding_function".into(), "value_is_invalid")]
        );
        let mut i = input("sum_agg");
        i.rounding_function = Some("truncate".into());
        i.rounding_precision = Some(2);
        assert_eq!(
            codes(BillableMetric::new(i)),
            vec![("rounding_function".into(), "value_is_invalid")],
            "an invalid function with a precision is reported once"
        );
        let mut i = input("sum_agg");
        i.rounding_precision = Some(2);
        assert_eq!(
            codes(BillableMetric::new(i)),
            vec![("rounding_function".into(), "value_is_mandatory")]
        );
        let mut i = input("sum_agg");
        i.rounding_function = Some("round".into());
        i.rounding_precision = Some(-2);
        assert_eq!(
            BillableMetric::new(i).map(|m| m.rounding_precision()),
            Ok(Some(-2))
        );
    }

    #[test]
    fn weighted_sum_defaults_to_seconds_and_rejects_other_intervals() {
        let m = BillableMetric::new(input("weighted_sum_agg"));
        assert_eq!(
            m.map(|m| m.weighted_interval()),
            Ok(Some(WeightedInterval::Seconds))
        );
        let mut i = input("weighted_sum_agg");
        i.weighted_interval = Some("hours".into());
        assert_eq!(
            codes(BillableMetric::new(i)),
            vec![("weighted_interval".into(), "value_is_invalid")]
        );
    }

    #[test]
    fn filters_need_a_key_values_and_no_duplicate_key() {
        let mut i = input("sum_agg");
        i.filters = Some(vec![
            ("region".into(), vec!["eu".into(), "us".into(), "eu".into()]),
            ("region".into(), vec!["asia".into()]),
            ("".into(), vec!["x".into()]),
            ("cloud".into(), vec![]),
        ]);
        assert_eq!(
            codes(BillableMetric::new(i)),
            vec![
                ("filters".into(), "duplicated_key"),
                ("filters".into(), "invalid_key"),
                ("filters".into(), "invalid_values"),
            ]
        );
        let mut i = input("sum_agg");
        i.filters = Some(vec![(
            "region".into(),
            vec!["eu".into(), "us".into(), "eu".into()],
        )]);
        let m = BillableMetric::new(i);
        assert_eq!(
            m.map(|m| m.filters()[0].values().to_vec()),
            Ok(vec!["eu".to_string(), "us".to_string()])
        );
    }

    #[test]
    fn filters_are_ordered_by_key_as_lago_returns_them() {
        // Given filters sent in no particular key order
        let mut i = input("sum_agg");
        i.filters = Some(vec![
            ("region".into(), vec!["us".into(), "eu".into()]),
            ("cloud".into(), vec!["aws".into()]),
        ]);
        // When the metric is validated
        let keys = BillableMetric::new(i).map(|m| {
            m.filters()
                .iter()
                .map(|f| f.key().to_owned())
                .collect::<Vec<_>>()
        });
        // Then its filters are ordered by key, each keeping its values' order
        assert_eq!(keys, Ok(vec!["cloud".to_string(), "region".to_string()]));
    }
}

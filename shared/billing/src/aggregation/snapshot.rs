//! Plain, storable forms of aggregation states, so the pipeline can persist a pre-aggregated
//! state between batches and the API can restore it to price current usage.
//!
//! A snapshot holds numbers and strings only; the adapter that stores it picks the encoding.
//! Restoring needs the [`Aggregator`] of the same charge and period (the period end of a
//! weighted sum comes from it, not from the snapshot).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{
    AggregationError, AggregationState, Aggregator, EventKey, Operation, StateKind,
    filters::Bucket,
    states::{CountState, LatestState, MaxState, SumState, UniqueCountState, WeightedSumState},
};

/// The last operation seen for one value of a unique count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueValue {
    /// The counted property value.
    pub value: String,
    /// The timestamp of the event that set the operation.
    pub timestamp: DateTime<Utc>,
    /// The tie-breaker of events sharing a timestamp.
    pub sequence: u64,
    /// Whether that operation was an `add` (else a `remove`).
    pub active: bool,
}

impl UniqueValue {
    /// The event key ordering operations on this value.
    pub fn key(&self) -> EventKey {
        EventKey::new(self.timestamp, self.sequence)
    }
}

/// A storable aggregation state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateSnapshot {
    /// `count_agg`.
    Count {
        /// Events folded.
        events_count: u64,
    },
    /// `sum_agg`.
    Sum {
        /// The sum.
        sum: Decimal,
        /// Numeric events folded.
        events_count: u64,
        /// `Σ precise_total_amount_cents` of those events (`dynamic` charges).
        precise_total_amount_cents: Decimal,
    },
    /// `max_agg`.
    Max {
        /// The largest value, if any event was numeric.
        max: Option<Decimal>,
        /// Numeric events folded.
        events_count: u64,
    },
    /// `latest_agg`.
    Latest {
        /// `(timestamp, sequence, value)` of the latest numeric event.
        latest: Option<(DateTime<Utc>, u64, Decimal)>,
        /// Numeric events folded.
        events_count: u64,
    },
    /// `unique_count_agg`: each value's last operation.
    UniqueCount {
        /// One entry per value.
        values: Vec<UniqueValue>,
        /// Events folded.
        events_count: u64,
    },
    /// `weighted_sum_agg`: the area and the net variation.
    WeightedSum {
        /// `Σ delta × seconds held until period end`.
        area: Decimal,
        /// `Σ delta`.
        variation: Decimal,
        /// Numeric events folded.
        events_count: u64,
    },
}

/// The state kind has no snapshot form (the prorated aggregations keep per-event history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("prorated aggregation states are not storable as snapshots")]
pub struct NotStorable;

impl AggregationState {
    /// The storable form of this state.
    pub fn snapshot(&self) -> Result<StateSnapshot, NotStorable> {
        Ok(match &self.kind {
            StateKind::Count(s) => StateSnapshot::Count {
                events_count: s.events_count(),
            },
            StateKind::Sum(s) => StateSnapshot::Sum {
                sum: s.units(),
                events_count: s.events_count(),
                precise_total_amount_cents: s.precise_total_amount_cents(),
            },
            StateKind::Max(s) => StateSnapshot::Max {
                max: s.max_value(),
                events_count: s.events_count(),
            },
            StateKind::Latest(s) => StateSnapshot::Latest {
                latest: s
                    .latest_entry()
                    .map(|(k, v)| (k.timestamp(), k.sequence(), v)),
                events_count: s.events_count(),
            },
            StateKind::UniqueCount(s) => StateSnapshot::UniqueCount {
                values: s
                    .entries()
                    .map(|(value, key, op)| UniqueValue {
                        value: value.to_owned(),
                        timestamp: key.timestamp(),
                        sequence: key.sequence(),
                        active: op == Operation::Add,
                    })
                    .collect(),
                events_count: s.events_count(),
            },
            StateKind::WeightedSum(s) => StateSnapshot::WeightedSum {
                area: s.area(),
                variation: s.variation(),
                events_count: s.events_count(),
            },
            StateKind::ProratedSum(_) | StateKind::ProratedUniqueCount(_) => {
                return Err(NotStorable);
            }
        })
    }
}

impl Aggregator {
    /// Restores a state of this aggregator from its snapshot.
    pub fn restore(&self, snapshot: &StateSnapshot) -> Result<AggregationState, AggregationError> {
        let mut state = self.empty_state();
        let kind = match (snapshot, &state.kind) {
            (StateSnapshot::Count { events_count }, StateKind::Count(_)) => {
                StateKind::Count(CountState::from_parts(*events_count))
            }
            (
                StateSnapshot::Sum {
                    sum,
                    events_count,
                    precise_total_amount_cents,
                },
                StateKind::Sum(_),
            ) => StateKind::Sum(
                SumState::from_parts(*sum, *events_count)
                    .with_precise_total_amount_cents(*precise_total_amount_cents),
            ),
            (StateSnapshot::Max { max, events_count }, StateKind::Max(_)) => {
                StateKind::Max(MaxState::from_parts(*max, *events_count))
            }
            (
                StateSnapshot::Latest {
                    latest,
                    events_count,
                },
                StateKind::Latest(_),
            ) => StateKind::Latest(LatestState::from_parts(
                latest.map(|(t, s, v)| (EventKey::new(t, s), v)),
                *events_count,
            )),
            (
                StateSnapshot::UniqueCount {
                    values,
                    events_count,
                },
                StateKind::UniqueCount(_),
            ) => StateKind::UniqueCount(UniqueCountState::from_parts(
                values.iter().map(|v| {
                    let op = if v.active {
                        Operation::Add
                    } else {
                        Operation::Remove
                    };
                    (v.value.clone(), v.key(), op)
                }),
                *events_count,
            )),
            (
                StateSnapshot::WeightedSum {
                    area,
                    variation,
                    events_count,
                },
                StateKind::WeightedSum(w),
            ) => StateKind::WeightedSum(WeightedSumState::from_parts(
                w.period_end(),
                *area,
                *variation,
                *events_count,
            )),
            _ => return Err(AggregationError::PeriodMismatch),
        };
        state.kind = kind;
        Ok(state)
    }
}

/// A stable name for a bucket: `default` or `filter:<index>`.
pub fn bucket_name(bucket: Bucket) -> String {
    match bucket {
        Bucket::Default => "default".to_owned(),
        Bucket::Filter(i) => format!("filter:{i}"),
    }
}

/// Parses [`bucket_name`]'s output.
pub fn parse_bucket(name: &str) -> Option<Bucket> {
    if name == "default" {
        return Some(Bucket::Default);
    }
    name.strip_prefix("filter:")
        .and_then(|i| i.parse().ok())
        .map(Bucket::Filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::metric::AggregationType;
    use rust_decimal_macros::dec;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap_or_default()
    }

    #[test]
    fn every_storable_state_round_trips_through_its_snapshot() {
        let from = at(1_700_000_000);
        let to = at(1_702_592_000);
        let props: Vec<(String, String)> = vec![("v".into(), "3.5".into())];
        for agg in AggregationType::ALL {
            let Ok(a) = Aggregator::new(agg, Some("v"), false, from, to) else {
                panic!("aggregator for {agg:?}")
            };
            let mut state = a.empty_state();
            for (i, t) in [from, at(1_701_000_000), at(1_701_000_000)]
                .into_iter()
                .enumerate()
            {
                let event = super::super::UsageEvent::new(EventKey::new(t, i as u64), &props);
                assert_eq!(a.fold(&mut state, &event), Ok(()), "{agg:?}");
            }
            let Ok(snapshot) = state.snapshot() else {
                panic!("{agg:?} not storable")
            };
            let restored = a.restore(&snapshot);
            assert_eq!(restored.as_ref(), Ok(&state), "{agg:?}");
            let days = 30;
            assert_eq!(
                restored.and_then(|r| a.result(&r, dec!(0), days)),
                a.result(&state, dec!(0), days),
                "{agg:?}"
            );
        }
    }

    #[test]
    fn a_snapshot_of_another_type_is_refused() {
        let Ok(a) = Aggregator::new(AggregationType::Count, None, false, at(0), at(10)) else {
            panic!("aggregator")
        };
        let snapshot = StateSnapshot::Sum {
            sum: dec!(1),
            events_count: 1,
            precise_total_amount_cents: dec!(0),
        };
        assert_eq!(a.restore(&snapshot), Err(AggregationError::PeriodMismatch));
    }

    #[test]
    fn bucket_names_round_trip() {
        for b in [Bucket::Default, Bucket::Filter(0), Bucket::Filter(12)] {
            assert_eq!(parse_bucket(&bucket_name(b)), Some(b));
        }
        assert_eq!(parse_bucket("filter:x"), None);
    }
}

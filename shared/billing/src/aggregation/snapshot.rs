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
    prorated::{ProratedSumState, ProratedUniqueCountState},
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

/// One recorded numeric value of an event (kept only for charges that price event by event:
/// prorated graduated, percentage free units on a sum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedValue {
    /// The event's timestamp.
    pub timestamp: DateTime<Utc>,
    /// The tie-breaker of events sharing a timestamp.
    pub sequence: u64,
    /// The event's value.
    pub value: Decimal,
}

impl RecordedValue {
    /// The event key ordering the values.
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
    /// A prorated `sum_agg` (SEMANTICS §2.6), in O(1) whatever the number of events: the
    /// prorated units are linear in the events (see [`ProratedSumState`]).
    ProratedSum {
        /// Start of the window the day offsets count from (the state's charges period start);
        /// restored into a later window, the whole state is carried over as persisted units.
        period_from: DateTime<Utc>,
        /// Units carried from before `period_from`.
        persisted: Decimal,
        /// The non-prorated sum of the in-period events.
        sum: Decimal,
        /// `Σ value × (local date(ts) − local date(period_from))` of the in-period events.
        day_offset_weighted: Decimal,
        /// In-period numeric events folded.
        events_count: u64,
    },
    /// A prorated `unique_count_agg` (SEMANTICS §2.6): every operation of every value, since
    /// the billed days of a value depend on its whole add/remove history (same-day removals,
    /// re-adds). Stored as one value item per distinct value holding its operations.
    ProratedUniqueCount {
        /// Start of the window the state was folded in (its charges period start).
        period_from: DateTime<Utc>,
        /// One entry per operation (a value appears once per operation).
        operations: Vec<UniqueValue>,
        /// In-period events folded.
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

/// The state kind has no snapshot form. Every state kind is storable today; the error stays so
/// that a future kind must decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("aggregation state is not storable as a snapshot")]
pub struct NotStorable;

fn operation(active: bool) -> Operation {
    if active {
        Operation::Add
    } else {
        Operation::Remove
    }
}

impl AggregationState {
    /// The values recorded for event-by-event pricing (any order), when the aggregator records
    /// them ([`Aggregator::recording_values`]).
    pub fn recorded_values(&self) -> Option<Vec<RecordedValue>> {
        self.values.as_ref().map(|vs| {
            vs.iter()
                .map(|(k, v)| RecordedValue {
                    timestamp: k.timestamp(),
                    sequence: k.sequence(),
                    value: *v,
                })
                .collect()
        })
    }

    /// The same state with its recorded values replaced (a restored state reads them from
    /// their own items). Ignored when the aggregator does not record values.
    pub fn with_recorded_values(mut self, values: &[RecordedValue]) -> Self {
        if let Some(mine) = &mut self.values {
            *mine = values.iter().map(|v| (v.key(), v.value)).collect();
        }
        self
    }
}

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
            StateKind::ProratedSum(s) => StateSnapshot::ProratedSum {
                period_from: s.window().from_datetime(),
                persisted: s.persisted(),
                sum: s.in_period(),
                day_offset_weighted: s.day_offset_weighted(),
                events_count: s.events_count(),
            },
            StateKind::ProratedUniqueCount(s) => StateSnapshot::ProratedUniqueCount {
                period_from: s.window().from_datetime(),
                operations: s
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
        })
    }
}

impl Aggregator {
    /// Restores a state of this aggregator from its snapshot. A prorated snapshot of an earlier
    /// period (a recurring metric's carried units) is restored as units persisted before this
    /// aggregator's window; one of a later period is refused.
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
                StateSnapshot::ProratedSum {
                    period_from,
                    persisted,
                    sum,
                    day_offset_weighted,
                    events_count,
                },
                StateKind::ProratedSum(s),
            ) => {
                let window = *s.window();
                StateKind::ProratedSum(match carried(*period_from, window.from_datetime())? {
                    false => ProratedSumState::from_parts(
                        window,
                        *persisted,
                        *sum,
                        *day_offset_weighted,
                        *events_count,
                    ),
                    true => {
                        let all = persisted
                            .checked_add(*sum)
                            .ok_or(AggregationError::Overflow)?;
                        ProratedSumState::from_parts(window, all, Decimal::ZERO, Decimal::ZERO, 0)
                    }
                })
            }
            (
                StateSnapshot::ProratedUniqueCount {
                    period_from,
                    operations,
                    events_count,
                },
                StateKind::ProratedUniqueCount(s),
            ) => {
                let window = *s.window();
                // Carried operations all precede the window: they count no event of it.
                let events_count = if carried(*period_from, window.from_datetime())? {
                    0
                } else {
                    *events_count
                };
                StateKind::ProratedUniqueCount(ProratedUniqueCountState::from_parts(
                    window,
                    operations
                        .iter()
                        .map(|v| (v.value.clone(), v.key(), operation(v.active))),
                    events_count,
                ))
            }
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

/// Whether a prorated snapshot of the period starting at `period_from` is carried into a window
/// starting at `window_from` (an earlier period), or is that window's own (compared to the
/// millisecond, as state keys store it); a later period cannot be restored.
fn carried(
    period_from: DateTime<Utc>,
    window_from: DateTime<Utc>,
) -> Result<bool, AggregationError> {
    let (p, w) = (
        period_from.timestamp_millis(),
        window_from.timestamp_millis(),
    );
    match p.cmp(&w) {
        std::cmp::Ordering::Less => Ok(true),
        std::cmp::Ordering::Equal => Ok(false),
        std::cmp::Ordering::Greater => Err(AggregationError::PeriodMismatch),
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

    mod prorated {
        //! Prorated snapshots as the pipeline uses them: each event folded on its own, its
        //! snapshot merged into the stored one, and pricing restoring every stored snapshot of
        //! the window (and, carried over, of earlier windows).
        use super::*;
        use crate::{
            catalog::metric::{BillableMetric, BillableMetricInput},
            usage::ChargeSpec,
        };
        use chrono_tz::Tz;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        fn utc(s: &str) -> DateTime<Utc> {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        }

        /// June 9 – July 8 2022 (30 days), then the spec period July 9 – August 8 (D = 31).
        fn periods() -> [(DateTime<Utc>, DateTime<Utc>, u32); 2] {
            [
                (utc("2022-06-09T00:00:00Z"), utc("2022-07-08T23:59:59Z"), 30),
                (utc("2022-07-09T00:00:00Z"), utc("2022-08-08T23:59:59Z"), 31),
            ]
        }

        fn spec(aggregation_type: &str) -> ChargeSpec {
            let metric = BillableMetric::new(BillableMetricInput {
                name: Some("Seats".into()),
                code: Some("seats".into()),
                aggregation_type: Some(aggregation_type.into()),
                field_name: Some("v".into()),
                recurring: Some(true),
                ..Default::default()
            });
            let Ok(metric) = metric else { panic!("metric") };
            ChargeSpec {
                charge_id: "charge".into(),
                metric,
                filters: vec![],
                pricing_group_keys: vec![],
                filter_group_keys: vec![],
                prorated: true,
                timezone: Tz::UTC,
                value_recording: None,
            }
        }

        /// `(units, full units, events count)` of the spec period after the events went
        /// through stored snapshots one event at a time.
        fn through_snapshots(
            spec: &ChargeSpec,
            events: &[(&str, Vec<(String, String)>)],
        ) -> (Decimal, Option<Decimal>, u64) {
            let mut stored: BTreeMap<usize, StateSnapshot> = BTreeMap::new();
            for (i, (t, props)) in events.iter().enumerate() {
                let t = utc(t);
                let Some(p) = periods().iter().position(|(f, to, _)| *f <= t && t <= *to) else {
                    panic!("event outside the periods")
                };
                let (from, to, d) = periods()[p];
                let Ok(mut usage) = spec.usage(from, to, d) else {
                    panic!("usage")
                };
                let event = super::super::super::UsageEvent::new(EventKey::new(t, i as u64), props);
                assert_eq!(usage.fold(&event), Ok(()));
                for (_, _, delta) in usage.states() {
                    let a = usage.aggregator();
                    let mut state = match stored.get(&p) {
                        Some(snap) => a.restore(snap).unwrap_or_else(|e| panic!("{e}")),
                        None => a.empty_state(),
                    };
                    assert_eq!(state.merge(delta), Ok(()));
                    let Ok(snap) = state.snapshot() else {
                        panic!("not storable")
                    };
                    // Round trip: what is stored restores to the same state.
                    assert_eq!(a.restore(&snap).as_ref(), Ok(&state));
                    stored.insert(p, snap);
                }
            }
            let (from, to, d) = periods()[1];
            let Ok(mut usage) = spec.usage(from, to, d) else {
                panic!("usage")
            };
            for snap in stored.values() {
                let state = usage
                    .aggregator()
                    .restore(snap)
                    .unwrap_or_else(|e| panic!("{e}"));
                let merged = usage.merge_state(
                    crate::aggregation::filters::Bucket::Default,
                    Default::default(),
                    &state,
                );
                assert_eq!(merged, Ok(()));
            }
            let Ok(results) = usage.results(Decimal::ZERO, d) else {
                panic!("results")
            };
            let r = &results[0].result;
            (r.units, r.full_units_number, r.events_count)
        }

        /// Events as `(time, properties)`.
        type Events<'a> = Vec<(&'a str, Vec<(String, String)>)>;

        fn unique(value: &str, op: &str) -> Vec<(String, String)> {
            vec![
                ("v".into(), value.into()),
                ("operation_type".into(), op.into()),
            ]
        }

        fn num(v: &str) -> Vec<(String, String)> {
            vec![("v".into(), v.into())]
        }

        #[test]
        fn semantics_2_6_unique_count_vectors_hold_through_stored_snapshots() {
            let spec = spec("unique_count_agg");
            let cases: Vec<(&str, Events<'_>, Decimal, Decimal)> = vec![
                (
                    "persisted + added on day 11 → 1 + 21/31",
                    vec![
                        ("2022-06-20T10:00:00Z", unique("a", "add")),
                        ("2022-07-19T10:00:00Z", unique("b", "add")),
                    ],
                    dec!(1.67742),
                    dec!(2),
                ),
                (
                    "added on day 16 → 16/31",
                    vec![("2022-07-24T10:00:00Z", unique("a", "add"))],
                    dec!(0.51613),
                    dec!(1),
                ),
                (
                    "persisted, removed on the last day → 31/31",
                    vec![
                        ("2022-06-20T10:00:00Z", unique("a", "add")),
                        ("2022-08-08T10:00:00Z", unique("a", "remove")),
                    ],
                    dec!(1),
                    dec!(0),
                ),
                (
                    "add/remove on 3 separate days → 3/31",
                    vec![
                        ("2022-07-10T01:00:00Z", unique("a", "add")),
                        ("2022-07-10T02:00:00Z", unique("a", "remove")),
                        ("2022-07-15T01:00:00Z", unique("a", "add")),
                        ("2022-07-15T02:00:00Z", unique("a", "remove")),
                        ("2022-07-20T01:00:00Z", unique("a", "add")),
                        ("2022-07-20T02:00:00Z", unique("a", "remove")),
                    ],
                    dec!(0.09678),
                    dec!(0),
                ),
            ];
            for (case, events, units, active) in cases {
                let (u, full, _) = through_snapshots(&spec, &events);
                assert_eq!(u, units, "{case}");
                assert_eq!(full, Some(active), "{case}");
            }
        }

        #[test]
        fn semantics_2_6_sum_vectors_hold_through_stored_snapshots() {
            let spec = spec("sum_agg");
            // The sum analogue of the unique-count vectors: a unit persisted + one added on
            // day 11 → 1 + 21/31; one added on day 16 → 16/31; 10 persisted + 31 on the last
            // day → (10×31 + 31×1)/31 = 11, full 41.
            let cases: Vec<(&str, Events<'_>, Decimal, Decimal, u64)> = vec![
                (
                    "persisted + day 11",
                    vec![
                        ("2022-06-20T10:00:00Z", num("1")),
                        ("2022-07-19T10:00:00Z", num("1")),
                    ],
                    dec!(1.67742),
                    dec!(2),
                    1,
                ),
                (
                    "day 16",
                    vec![("2022-07-24T23:59:59Z", num("1"))],
                    dec!(0.51613),
                    dec!(1),
                    1,
                ),
                (
                    "persisted 10 + 31 on the last day",
                    vec![
                        ("2022-06-09T00:00:00Z", num("10")),
                        ("2022-08-08T23:00:00Z", num("31")),
                    ],
                    dec!(11),
                    dec!(41),
                    1,
                ),
            ];
            for (case, events, units, full_units, count) in cases {
                let (u, full, n) = through_snapshots(&spec, &events);
                assert_eq!(u, units, "{case}");
                assert_eq!(full, Some(full_units), "{case}");
                assert_eq!(n, count, "{case}");
            }
        }

        #[test]
        fn a_prorated_snapshot_of_a_later_period_is_refused() {
            let spec = spec("sum_agg");
            let (from, to, d) = periods()[0];
            let Ok(usage) = spec.usage(from, to, d) else {
                panic!("usage")
            };
            let later = StateSnapshot::ProratedSum {
                period_from: periods()[1].0,
                persisted: dec!(0),
                sum: dec!(1),
                day_offset_weighted: dec!(0),
                events_count: 1,
            };
            assert_eq!(
                usage.aggregator().restore(&later),
                Err(AggregationError::PeriodMismatch)
            );
        }

        proptest! {
            /// Folding events one by one through snapshots, in any split, equals the
            /// definition `ceil5(Σ v × (date(to) − date(ts) + 1) / D + persisted × N / D)`.
            #[test]
            fn prorated_sum_snapshots_merge_to_the_definition(
                events in proptest::collection::vec((0i64..61 * 86_400, -1000i64..1000), 0..30),
                split in 0usize..30,
            ) {
                let spec = spec("sum_agg");
                let (from, to, d) = periods()[1];
                let Ok(usage) = spec.usage(from, to, d) else { panic!("usage") };
                let a = usage.aggregator();
                let start = periods()[0].0;
                let mut parts = [a.empty_state(), a.empty_state()];
                let mut expected_num = Decimal::ZERO;
                let mut full = Decimal::ZERO;
                for (i, (offset, cents)) in events.iter().enumerate() {
                    let t = start + chrono::Duration::seconds(*offset);
                    let v = Decimal::new(*cents, 2);
                    let props = vec![("v".to_owned(), v.to_string())];
                    let e = super::super::super::UsageEvent::new(EventKey::new(t, i as u64), &props);
                    prop_assert_eq!(a.fold(&mut parts[usize::from(i >= split)], &e), Ok(()));
                    full += v;
                    let days = if t < from {
                        31
                    } else {
                        (to.date_naive() - t.date_naive()).num_days() + 1
                    };
                    expected_num += v * Decimal::from(days);
                }
                let restored: Vec<AggregationState> = parts
                    .iter()
                    .map(|p| a.restore(&p.snapshot().unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}")))
                    .collect();
                let mut merged = restored[0].clone();
                prop_assert_eq!(merged.merge(&restored[1]), Ok(()));
                let r = a.result(&merged, Decimal::ZERO, d).unwrap_or_else(|e| panic!("{e}"));
                let expected = (expected_num / Decimal::from(31))
                    .round_dp_with_strategy(5, rust_decimal::RoundingStrategy::ToPositiveInfinity);
                prop_assert_eq!(r.units, expected);
                prop_assert_eq!(r.full_units_number, Some(full));
            }
        }
    }

    #[test]
    fn bucket_names_round_trip() {
        for b in [Bucket::Default, Bucket::Filter(0), Bucket::Filter(12)] {
            assert_eq!(parse_bucket(&bucket_name(b)), Some(b));
        }
        assert_eq!(parse_bucket("filter:x"), None);
    }
}

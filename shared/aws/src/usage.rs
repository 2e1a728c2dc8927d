//! The usage table: pre-aggregated usage, so that reading current usage costs the same with
//! a hundred or ten million events.
//!
//! One **state item** per subscription, charges period, charge, filter bucket and pricing
//! group (`pk = U#<org>#<subscription>`, `sk = <period start ms>#<charge>#<bucket>#<group>`),
//! holding the aggregation snapshot and `applied`: tags of the last events folded into it (by
//! transaction id). The events queue is FIFO per subscription, so a message can only be
//! redelivered (or an event resent) while it is among the last ones processed for its
//! subscription; remembering those makes a redelivery a no-op, item by item, without a write
//! per event.
//!
//! Unique counts keep one **value item** per distinct value (`pk = V#<state item key>`,
//! `sk = <value>`) with its last operation. Writing one is idempotent by construction (the
//! later operation wins), so value items need no message bookkeeping. A *prorated* unique
//! count's value item holds instead the set of the value's operations (`ops`, each
//! `<ts ms>#<sequence>#<a|r>`), added with DynamoDB's `ADD` (a set union: idempotent and
//! commutative), since the billed days depend on the value's whole add/remove history.
//!
//! Charges priced event by event (prorated graduated; percentage free units on a sum) keep
//! one **record item** per event (`pk = R#<state item key>`, `sk = <ts ms>#<sequence>`, the
//! value in `v`), idempotent by key. Pricing reads them in time order, stopping as early as the
//! charge allows ([`RecordRead`]). These configurations cost O(events) in storage and at
//! pricing time; every other state is O(1) (or O(distinct values) for unique counts).

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, KeysAndAttributes},
};
use billing::aggregation::snapshot::{RecordedValue, StateSnapshot, UniqueValue};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::StoreError;

/// How many event tags a state item remembers. The aggregator processes at most ten messages
/// (one event each) per subscription per batch; two batches' worth covers a redelivery of the
/// last batch.
pub const APPLIED_MEMORY: usize = 32;

/// Identifies one state item within a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateKey {
    /// Start of the charges period.
    pub period_from: DateTime<Utc>,
    /// The charge's Lago id.
    pub charge_id: String,
    /// The filter bucket's stable name.
    pub bucket: String,
    /// The pricing group values.
    pub group: Vec<Option<String>>,
}

impl StateKey {
    /// A key; the period start is kept to the millisecond, as stored.
    pub fn new(
        period_from: DateTime<Utc>,
        charge_id: impl Into<String>,
        bucket: impl Into<String>,
        group: Vec<Option<String>>,
    ) -> Self {
        let ms = period_from.timestamp_millis();
        Self {
            period_from: DateTime::from_timestamp_millis(ms).unwrap_or(period_from),
            charge_id: charge_id.into(),
            bucket: bucket.into(),
            group,
        }
    }

    fn sort_key(&self) -> String {
        let group = serde_json::to_string(&self.group).unwrap_or_else(|_| "[]".into());
        format!(
            "{:013}#{}#{}#{}",
            self.period_from.timestamp_millis().max(0),
            self.charge_id,
            self.bucket,
            group
        )
    }

    fn parse(sk: &str) -> Option<Self> {
        let mut parts = sk.splitn(4, '#');
        let period: i64 = parts.next()?.parse().ok()?;
        let charge_id = parts.next()?.to_owned();
        let bucket = parts.next()?.to_owned();
        let group: Vec<Option<String>> = serde_json::from_str(parts.next()?).ok()?;
        Some(Self {
            period_from: DateTime::from_timestamp_millis(period)?,
            charge_id,
            bucket,
            group,
        })
    }
}

/// A state item as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredState {
    /// Its key.
    pub key: StateKey,
    /// End of the charges period.
    pub period_to: DateTime<Utc>,
    /// The aggregation snapshot (a unique count's values live in value items, not here).
    pub snapshot: StateSnapshot,
    /// Tags of the last events folded in, oldest first.
    pub applied: Vec<String>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// The usage table adapter.
#[derive(Debug, Clone)]
pub struct UsageStore {
    client: Client,
    table: String,
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn state_pk(org: &str, sub: &str) -> String {
    format!("U#{org}#{sub}")
}

fn value_pk(org: &str, sub: &str, key: &StateKey) -> String {
    format!("V#{org}#{sub}#{}", key.sort_key())
}

fn record_pk(org: &str, sub: &str, key: &StateKey) -> String {
    format!("R#{org}#{sub}#{}", key.sort_key())
}

/// How much of a state's recorded values pricing needs, in time order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RecordRead {
    /// Every value.
    All,
    /// The first `n` values.
    First(u64),
    /// The values up to and including the first whose running total exceeds this.
    UntilTotalExceeds(Decimal),
}

fn operation_tag(v: &UniqueValue) -> String {
    format!(
        "{:013}#{}#{}",
        v.timestamp.timestamp_millis().max(0),
        v.sequence,
        if v.active { "a" } else { "r" }
    )
}

fn parse_operation_tag(value: &str, tag: &str) -> Option<UniqueValue> {
    let mut parts = tag.splitn(3, '#');
    let ts: i64 = parts.next()?.parse().ok()?;
    let sequence: u64 = parts.next()?.parse().ok()?;
    let active = match parts.next()? {
        "a" => true,
        "r" => false,
        _ => return None,
    };
    Some(UniqueValue {
        value: value.to_owned(),
        timestamp: DateTime::from_timestamp_millis(ts)?,
        sequence,
        active,
    })
}

fn get_n<T: std::str::FromStr>(item: &HashMap<String, AttributeValue>, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn to_item(org: &str, sub: &str, state: &StoredState) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("pk".to_owned(), s(state_pk(org, sub))),
        ("sk".to_owned(), s(state.key.sort_key())),
        ("to".to_owned(), n(state.period_to.timestamp_millis())),
        ("version".to_owned(), n(state.version)),
    ]);
    if !state.applied.is_empty() {
        item.insert(
            "applied".into(),
            AttributeValue::L(state.applied.iter().map(|a| s(a.clone())).collect()),
        );
    }
    let (agg, events_count) = match &state.snapshot {
        StateSnapshot::Count { events_count } => ("count", events_count),
        StateSnapshot::Sum {
            sum,
            events_count,
            precise_total_amount_cents,
        } => {
            item.insert("sum".into(), n(sum));
            if !precise_total_amount_cents.is_zero() {
                item.insert("amt".into(), n(precise_total_amount_cents));
            }
            ("sum", events_count)
        }
        StateSnapshot::Max { max, events_count } => {
            if let Some(m) = max {
                item.insert("max".into(), n(m));
            }
            ("max", events_count)
        }
        StateSnapshot::Latest {
            latest,
            events_count,
        } => {
            if let Some((t, seq, v)) = latest {
                item.insert("lt".into(), n(t.timestamp_millis()));
                item.insert("ls".into(), n(seq));
                item.insert("lv".into(), n(v));
            }
            ("latest", events_count)
        }
        StateSnapshot::UniqueCount { events_count, .. } => ("unique_count", events_count),
        StateSnapshot::ProratedSum {
            persisted,
            sum,
            day_offset_weighted,
            events_count,
            ..
        } => {
            // The period start is the key's: not stored twice.
            item.insert("sum".into(), n(sum));
            item.insert("dow".into(), n(day_offset_weighted));
            if !persisted.is_zero() {
                item.insert("pp".into(), n(persisted));
            }
            ("prorated_sum", events_count)
        }
        StateSnapshot::ProratedUniqueCount { events_count, .. } => {
            ("prorated_unique_count", events_count)
        }
        StateSnapshot::WeightedSum {
            area,
            variation,
            events_count,
        } => {
            item.insert("area".into(), n(area));
            item.insert("var".into(), n(variation));
            ("weighted_sum", events_count)
        }
    };
    item.insert("agg".into(), s(agg));
    item.insert("n".into(), n(events_count));
    item
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Result<StoredState, StoreError> {
    let corrupt = || StoreError::Corrupt("usage state item".into());
    let sk = item
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(corrupt)?;
    let key = StateKey::parse(sk).ok_or_else(corrupt)?;
    let events_count: u64 = get_n(item, "n").ok_or_else(corrupt)?;
    let agg = item
        .get("agg")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(corrupt)?;
    let dec = |name: &str| get_n::<Decimal>(item, name);
    let snapshot = match agg.as_str() {
        "count" => StateSnapshot::Count { events_count },
        "sum" => StateSnapshot::Sum {
            sum: dec("sum").ok_or_else(corrupt)?,
            events_count,
            // Absent when no event carried a price.
            precise_total_amount_cents: dec("amt").unwrap_or_default(),
        },
        "max" => StateSnapshot::Max {
            max: dec("max"),
            events_count,
        },
        "latest" => StateSnapshot::Latest {
            latest: match (
                get_n::<i64>(item, "lt"),
                get_n::<u64>(item, "ls"),
                dec("lv"),
            ) {
                (Some(t), Some(seq), Some(v)) => Some((
                    DateTime::from_timestamp_millis(t).ok_or_else(corrupt)?,
                    seq,
                    v,
                )),
                _ => None,
            },
            events_count,
        },
        "unique_count" => StateSnapshot::UniqueCount {
            values: Vec::new(),
            events_count,
        },
        "prorated_sum" => StateSnapshot::ProratedSum {
            period_from: key.period_from,
            persisted: dec("pp").unwrap_or_default(),
            sum: dec("sum").ok_or_else(corrupt)?,
            day_offset_weighted: dec("dow").ok_or_else(corrupt)?,
            events_count,
        },
        "prorated_unique_count" => StateSnapshot::ProratedUniqueCount {
            period_from: key.period_from,
            operations: Vec::new(),
            events_count,
        },
        "weighted_sum" => StateSnapshot::WeightedSum {
            area: dec("area").ok_or_else(corrupt)?,
            variation: dec("var").ok_or_else(corrupt)?,
            events_count,
        },
        _ => return Err(corrupt()),
    };
    Ok(StoredState {
        key,
        period_to: get_n::<i64>(item, "to")
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(corrupt)?,
        snapshot,
        applied: item
            .get("applied")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|a| a.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        version: get_n(item, "version").ok_or_else(corrupt)?,
    })
}

impl UsageStore {
    /// A store over `table`.
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::with_client(Client::new(sdk), table)
    }

    /// A store with a given client (tests inject faults through its config).
    pub fn with_client(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Reads state items by key (strongly consistent); absent keys are absent from the map.
    pub async fn states(
        &self,
        org: &str,
        sub: &str,
        keys: &[StateKey],
    ) -> Result<HashMap<StateKey, StoredState>, StoreError> {
        let mut out = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let request_keys = chunk
                .iter()
                .map(|k| {
                    HashMap::from([
                        ("pk".to_owned(), s(state_pk(org, sub))),
                        ("sk".to_owned(), s(k.sort_key())),
                    ])
                })
                .collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(request_keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?,
            );
            for _ in 0..=chunk.len() {
                let Some(request) = pending.take() else { break };
                let response = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await?;
                for item in response
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    let state = from_item(&item)?;
                    out.insert(state.key.clone(), state);
                }
                pending = response
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
            }
        }
        Ok(out)
    }

    /// Writes a state item over the version it was read at (`None`: it must not exist yet).
    /// `Conflict` if another writer got there first.
    pub async fn put_state(
        &self,
        org: &str,
        sub: &str,
        state: &StoredState,
        read_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(org, sub, state)));
        let request = match read_version {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(v) => request
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(v)),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records each value's operation unless a later one is already stored (idempotent).
    pub async fn put_unique_values(
        &self,
        org: &str,
        sub: &str,
        key: &StateKey,
        values: &[UniqueValue],
    ) -> Result<(), StoreError> {
        let pk = value_pk(org, sub, key);
        for v in values {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(pk.clone()))
                .item("sk", s(v.value.clone()))
                .item("ts", n(v.timestamp.timestamp_millis()))
                .item("seq", n(v.sequence))
                .item("on", AttributeValue::Bool(v.active))
                .condition_expression(
                    "attribute_not_exists(pk) OR ts < :ts OR (ts = :ts AND seq < :seq)",
                )
                .expression_attribute_values(":ts", n(v.timestamp.timestamp_millis()))
                .expression_attribute_values(":seq", n(v.sequence))
                .send()
                .await;
            match result {
                Ok(_) => {}
                // A later (or the same) operation is already recorded: nothing to do.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Adds operations to the value items of a prorated unique count (a set union per value:
    /// writing the same operation twice is a no-op).
    pub async fn put_unique_operations(
        &self,
        org: &str,
        sub: &str,
        key: &StateKey,
        operations: &[UniqueValue],
    ) -> Result<(), StoreError> {
        let pk = value_pk(org, sub, key);
        let mut by_value: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for op in operations {
            by_value
                .entry(op.value.as_str())
                .or_default()
                .push(operation_tag(op));
        }
        for (value, tags) in by_value {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(pk.clone()))
                .key("sk", s(value))
                .update_expression("ADD ops :ops")
                .expression_attribute_values(":ops", AttributeValue::Ss(tags))
                .send()
                .await?;
        }
        Ok(())
    }

    /// Every operation of every value of a prorated unique-count state.
    pub async fn unique_operations(
        &self,
        org: &str,
        sub: &str,
        key: &StateKey,
    ) -> Result<Vec<UniqueValue>, StoreError> {
        let corrupt = || StoreError::Corrupt("unique operations item".into());
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(value_pk(org, sub, key)))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                let value = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(corrupt)?;
                let Some(tags) = item.get("ops").and_then(|v| v.as_ss().ok()) else {
                    continue;
                };
                for tag in tags {
                    out.push(parse_operation_tag(value, tag).ok_or_else(corrupt)?);
                }
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    /// Records events' values for event-by-event pricing (one item per event, keyed by its
    /// position in time: rewriting one is a no-op).
    pub async fn put_recorded_values(
        &self,
        org: &str,
        sub: &str,
        key: &StateKey,
        values: &[RecordedValue],
    ) -> Result<(), StoreError> {
        let pk = record_pk(org, sub, key);
        for v in values {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(pk.clone()))
                .item(
                    "sk",
                    s(format!(
                        "{:013}#{:020}",
                        v.timestamp.timestamp_millis().max(0),
                        v.sequence
                    )),
                )
                .item("v", n(v.value))
                .send()
                .await?;
        }
        Ok(())
    }

    /// The recorded values of a state in time order, as far as `read` needs.
    pub async fn recorded_values(
        &self,
        org: &str,
        sub: &str,
        key: &StateKey,
        read: RecordRead,
    ) -> Result<Vec<RecordedValue>, StoreError> {
        let corrupt = || StoreError::Corrupt("recorded value item".into());
        let mut out = Vec::new();
        let mut total = Decimal::ZERO;
        let mut start = None;
        loop {
            let page_limit = match read {
                RecordRead::First(n) => {
                    let left = n.saturating_sub(out.len() as u64);
                    if left == 0 {
                        return Ok(out);
                    }
                    Some(i32::try_from(left.min(1000)).unwrap_or(1000))
                }
                _ => None,
            };
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(record_pk(org, sub, key)))
                .consistent_read(true)
                .set_limit(page_limit)
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                let sk = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(corrupt)?;
                let (ts, seq) = sk.split_once('#').ok_or_else(corrupt)?;
                let value: Decimal = get_n(&item, "v").ok_or_else(corrupt)?;
                out.push(RecordedValue {
                    timestamp: ts
                        .parse()
                        .ok()
                        .and_then(DateTime::from_timestamp_millis)
                        .ok_or_else(corrupt)?,
                    sequence: seq.parse().map_err(|_| corrupt())?,
                    value,
                });
                total += value;
                let done = match read {
                    RecordRead::All => false,
                    RecordRead::First(n) => out.len() as u64 >= n,
                    RecordRead::UntilTotalExceeds(f) => total > f,
                };
                if done {
                    return Ok(out);
                }
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    /// Every state item of a subscription whose period starts at or before `upto`.
    pub async fn states_upto(
        &self,
        org: &str,
        sub: &str,
        upto: DateTime<Utc>,
    ) -> Result<Vec<StoredState>, StoreError> {
        let upper = format!("{:013}#~", upto.timestamp_millis().max(0));
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk <= :upper")
                .expression_attribute_values(":pk", s(state_pk(org, sub)))
                .expression_attribute_values(":upper", s(upper.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item(&item)?);
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    /// Every value item of a unique-count state.
    pub async fn unique_values(
        &self,
        org: &str,
        sub: &str,
        key: &StateKey,
    ) -> Result<Vec<UniqueValue>, StoreError> {
        let corrupt = || StoreError::Corrupt("unique value item".into());
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(value_pk(org, sub, key)))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                out.push(UniqueValue {
                    value: item
                        .get("sk")
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .ok_or_else(corrupt)?,
                    timestamp: get_n::<i64>(&item, "ts")
                        .and_then(DateTime::from_timestamp_millis)
                        .ok_or_else(corrupt)?,
                    sequence: get_n(&item, "seq").ok_or_else(corrupt)?,
                    active: item
                        .get("on")
                        .and_then(|v| v.as_bool().ok())
                        .copied()
                        .ok_or_else(corrupt)?,
                });
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }
}

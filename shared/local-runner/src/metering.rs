//! Counting what AWS would bill: an SDK interceptor that records every call by service and
//! operation, and the DynamoDB request units each one consumes, computed from item sizes as
//! DynamoDB bills them (writes per started KB, reads per started 4 KB, halved for eventually
//! consistent reads, doubled in transactions). The emulator's own capacity figures are not
//! usable (it always answers 1.0), so the benchmark counts for itself.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::{
        interceptors::{
            Intercept,
            context::{
                BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
            },
        },
        orchestrator::Metadata,
        runtime_components::RuntimeComponents,
    },
};
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::Value;

/// Totals recorded so far.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Usage {
    /// Calls by `(service, operation)`.
    pub calls: BTreeMap<(String, String), u64>,
    /// DynamoDB write request units.
    pub write_units: f64,
    /// DynamoDB read request units.
    pub read_units: f64,
}

impl Usage {
    /// Calls to one service.
    pub fn calls_to(&self, service: &str) -> u64 {
        self.calls
            .iter()
            .filter(|((s, _), _)| s.eq_ignore_ascii_case(service))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The shared meter; clone it into every client's config.
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<Mutex<Usage>>);

#[derive(Debug, Clone)]
struct PendingRead {
    consistent: bool,
    operation: String,
}

impl Storable for PendingRead {
    type Storer = StoreReplace<Self>;
}

impl Meter {
    /// A snapshot of the totals.
    pub fn usage(&self) -> Usage {
        self.0.lock().map(|u| u.clone()).unwrap_or_default()
    }

    /// Starts counting from zero.
    pub fn reset(&self) {
        if let Ok(mut u) = self.0.lock() {
            *u = Usage::default();
        }
    }

    fn add(&self, f: impl FnOnce(&mut Usage)) {
        if let Ok(mut u) = self.0.lock() {
            f(&mut u);
        }
    }
}

/// The DynamoDB size of an attribute value in its wire JSON form.
fn value_size(v: &Value) -> usize {
    let Value::Object(typed) = v else { return 0 };
    let Some((kind, inner)) = typed.iter().next() else {
        return 0;
    };
    match (kind.as_str(), inner) {
        ("S", Value::String(s)) => s.len(),
        ("N", Value::String(n)) => n.trim_start_matches('-').len() / 2 + 1,
        ("B", Value::String(b)) => b.len() * 3 / 4,
        ("BOOL" | "NULL", _) => 1,
        ("SS" | "BS", Value::Array(a)) => a.iter().map(|s| s.as_str().map_or(0, str::len)).sum(),
        ("NS", Value::Array(a)) => a
            .iter()
            .map(|s| s.as_str().map_or(0, str::len) / 2 + 1)
            .sum(),
        ("L", Value::Array(a)) => 3 + a.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        ("M", Value::Object(m)) => {
            3 + m
                .iter()
                .map(|(k, e)| 1 + k.len() + value_size(e))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// The DynamoDB size of an item: attribute names plus values.
pub fn item_size(item: &Value) -> usize {
    match item {
        Value::Object(m) => m.iter().map(|(k, v)| k.len() + value_size(v)).sum(),
        _ => 0,
    }
}

fn write_units(item: &Value) -> f64 {
    item_size(item).div_ceil(1024).max(1) as f64
}

fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

fn operation(cfg: &ConfigBag) -> (String, String) {
    cfg.load::<Metadata>()
        .map(|m| (m.service().to_owned(), m.name().to_owned()))
        .unwrap_or_default()
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "Meter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, op) = operation(cfg);
        let body: Value = context
            .request()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let is_dynamo = service.to_ascii_lowercase().contains("dynamo");
        let writes = if is_dynamo {
            match op.as_str() {
                "PutItem" => write_units(&body["Item"]),
                "UpdateItem" | "DeleteItem" => 1.0,
                "BatchWriteItem" => body["RequestItems"]
                    .as_object()
                    .map(|t| {
                        t.values()
                            .flat_map(|reqs| reqs.as_array().cloned().unwrap_or_default())
                            .map(|r| write_units(&r["PutRequest"]["Item"]))
                            .sum()
                    })
                    .unwrap_or(0.0),
                "TransactWriteItems" => body["TransactItems"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .map(|i| 2.0 * i.get("Put").map_or(1.0, |p| write_units(&p["Item"])))
                            .sum()
                    })
                    .unwrap_or(0.0),
                _ => 0.0,
            }
        } else {
            0.0
        };
        if is_dynamo && matches!(op.as_str(), "GetItem" | "Query" | "BatchGetItem" | "Scan") {
            let consistent = body["ConsistentRead"].as_bool().unwrap_or(false)
                || body["RequestItems"]
                    .as_object()
                    .and_then(|t| t.values().next())
                    .and_then(|k| k["ConsistentRead"].as_bool())
                    .unwrap_or(false);
            cfg.interceptor_state().store_put(PendingRead {
                consistent,
                operation: op.clone(),
            });
        }
        self.add(|u| {
            *u.calls.entry((service, op)).or_default() += 1;
            u.write_units += writes;
        });
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(pending) = cfg.load::<PendingRead>().cloned() else {
            return Ok(());
        };
        let body: Value = context
            .response()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let units = match pending.operation.as_str() {
            "GetItem" => read_units(item_size(&body["Item"]), pending.consistent),
            "Query" | "Scan" => {
                let bytes: usize = body["Items"]
                    .as_array()
                    .map(|items| items.iter().map(item_size).sum())
                    .unwrap_or(0);
                read_units(bytes, pending.consistent)
            }
            "BatchGetItem" => body["Responses"]
                .as_object()
                .map(|t| {
                    t.values()
                        .flat_map(|items| items.as_array().cloned().unwrap_or_default())
                        .map(|i| read_units(item_size(&i), pending.consistent))
                        .sum()
                })
                .unwrap_or(0.0),
            _ => 0.0,
        };
        self.add(|u| u.read_units += units);
        Ok(())
    }
}

//! The routes of a catalog record addressed by its `code` (billable metrics, taxes): create,
//! list, show, partial update (a code change included) and delete, written once.
//!
//! A resource module implements [`CodedRecord`] (its root keys, its DTOs, how a body becomes a
//! validated record) and its handlers call these functions; everything else (optimistic
//! concurrency, the rename transaction, the Lago envelopes) is the same for every such record.

use axum::response::Response;
use billing::catalog::{Record, ValidationErrors, organization::Organization};
use billing_aws::{StoreError, dynamo::Kind};
use lago::{
    ApiError,
    http::{self, Paging},
};
use serde::{Serialize, de::DeserializeOwned};

use super::{CONFLICT_RETRIES, store_error};
use crate::Deps;

/// A catalog record that the API addresses by `code`.
pub trait CodedRecord: Kind + Clone + Send + Sync + 'static {
    /// The root key of a body and of a response (`billable_metric`); also the resource of
    /// its 404 (`billable_metric_not_found`).
    const ROOT: &'static str;
    /// The root key of a list (`billable_metrics`).
    const PLURAL: &'static str;
    /// The object under the root key of a create or an update.
    type Input: DeserializeOwned;
    /// The object returned for a stored record.
    type Output: Serialize + for<'a> From<&'a Record<Self>>;

    /// A new record from a create's input.
    fn create(input: Self::Input) -> Result<Self, ValidationErrors>;

    /// This record with an update's sent fields over it.
    fn update(&self, input: Self::Input) -> Result<Self, ValidationErrors>;
}

/// `POST /<plural>`: `422 value_already_exist` on a taken code.
pub async fn create<T: CodedRecord>(
    deps: &Deps,
    org: &Organization,
    body: &[u8],
) -> Result<Response, ApiError> {
    let input: T::Input = http::root_dto(body, T::ROOT)?;
    let value = T::create(input)?;
    let now = (deps.clock)();
    let record = Record {
        lago_id: (deps.ids)(),
        created_at: now,
        updated_at: now,
        sequential_id: None,
        version: 1,
        value,
    };
    deps.store
        .create(&org.id, &record)
        .await
        .map_err(|e| store_error(T::ROOT, e))?;
    Ok(http::ok(T::ROOT, T::Output::from(&record)))
}

/// `GET /<plural>`: one page and Lago's `meta`.
pub async fn list<T: CodedRecord>(
    deps: &Deps,
    org: &Organization,
    query: &[(String, String)],
) -> Result<Response, ApiError> {
    let paging = Paging::from_query(query)?;
    let (records, total) = deps
        .store
        .list::<T>(&org.id, paging.page, paging.per_page)
        .await
        .map_err(|e| store_error(T::ROOT, e))?;
    let items: Vec<T::Output> = records.iter().map(T::Output::from).collect();
    Ok(http::list(T::PLURAL, items, paging, total))
}

/// `GET /<plural>/{code}`.
pub async fn show<T: CodedRecord>(
    deps: &Deps,
    org: &Organization,
    code: &str,
) -> Result<Response, ApiError> {
    let record = deps
        .store
        .get::<T>(&org.id, code)
        .await
        .map_err(|e| store_error(T::ROOT, e))?;
    Ok(http::ok(T::ROOT, T::Output::from(&record)))
}

/// `PUT /<plural>/{code}`: the sent fields over the current record, re-read and re-applied
/// when another writer got there first. A new `code` moves the record (the old code is then
/// free); a taken one is `422 value_already_exist`.
pub async fn update<T: CodedRecord>(
    deps: &Deps,
    org: &Organization,
    code: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let object = http::root_object(http::parse_body(body)?, T::ROOT)?;
    for _ in 0..CONFLICT_RETRIES {
        let current = deps
            .store
            .get::<T>(&org.id, code)
            .await
            .map_err(|e| store_error(T::ROOT, e))?;
        let input: T::Input = http::from_object(object.clone())?;
        let value = current.value.update(input)?;
        let record = Record {
            updated_at: (deps.clock)(),
            version: current.version + 1,
            value,
            ..current
        };
        match deps.store.replace(&org.id, code, &record).await {
            Ok(()) => return Ok(http::ok(T::ROOT, T::Output::from(&record))),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(store_error(T::ROOT, e)),
        }
    }
    Err(ApiError::Unavailable)
}

/// `DELETE /<plural>/{code}`: answers the deleted record.
pub async fn destroy<T: CodedRecord>(
    deps: &Deps,
    org: &Organization,
    code: &str,
) -> Result<Response, ApiError> {
    let record = deps
        .store
        .delete::<T>(&org.id, code)
        .await
        .map_err(|e| store_error(T::ROOT, e))?;
    Ok(http::ok(T::ROOT, T::Output::from(&record)))
}

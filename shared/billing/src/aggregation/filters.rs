//! Charge filters: which filter (or the default bucket) an event is billed by, with Lago's
//! most-specific-wins semantics (SEMANTICS §1.3).
//!
//! For each filter F, Lago builds a *matching* clause (F's own key/values) and a list of
//! *ignore* clauses, one per *child* filter (a filter whose values intersect F's on every key of
//! F). An event belongs to F when it matches F and no ignore clause. The default bucket's
//! children are all filters, so it gets exactly the events no filter claims.

use std::collections::{BTreeMap, BTreeSet};

use super::EventProperties;

/// The wire value that stands for "every value the metric allows for this key".
pub const ALL_FILTER_VALUES: &str = "__ALL_FILTER_VALUES__";

/// The values a charge filter accepts for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterValues {
    /// An explicit list.
    Values(Vec<String>),
    /// `__ALL_FILTER_VALUES__`: every value of the metric filter.
    All,
}

impl FilterValues {
    /// Reads a wire list: a list made only of `__ALL_FILTER_VALUES__` means all values.
    pub fn from_wire(values: Vec<String>) -> Self {
        if !values.is_empty() && values.iter().all(|v| v == ALL_FILTER_VALUES) {
            Self::All
        } else {
            Self::Values(values)
        }
    }
}

/// What can be wrong with a set of charge filters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A filter uses a key the billable metric does not declare.
    #[error("filter key {0:?} is not a filter of the billable metric")]
    UnknownKey(String),
    /// A filter has no key at all.
    #[error("a charge filter needs at least one key")]
    Empty,
}

/// Where an event is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bucket {
    /// The charge filter at this index (in creation order).
    Filter(usize),
    /// No filter claimed the event: the charge's own properties price it.
    Default,
}

type Clause = BTreeMap<String, BTreeSet<String>>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct ResolvedFilter {
    matching: Clause,
    all_keys: BTreeSet<String>,
    ignore: Vec<Clause>,
}

/// The charge's filters, resolved once into matching and ignore clauses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSet {
    filters: Vec<ResolvedFilter>,
    default_ignore: Vec<Clause>,
}

fn clause_matches(clause: &Clause, event: &dyn EventProperties) -> bool {
    clause.iter().all(|(k, values)| {
        // A missing property is compared as the empty string.
        values.contains(event.property(k).unwrap_or(""))
    })
}

impl FilterSet {
    /// Resolves charge filters, given in creation order (older first: among identical filters
    /// the oldest keeps the events), against the metric's filter keys and allowed values.
    pub fn new(
        metric_filters: &[(String, Vec<String>)],
        charge_filters: &[BTreeMap<String, FilterValues>],
    ) -> Result<Self, FilterError> {
        let mut expanded: Vec<Clause> = Vec::with_capacity(charge_filters.len());
        let mut all_keys: Vec<BTreeSet<String>> = Vec::with_capacity(charge_filters.len());
        for filter in charge_filters {
            if filter.is_empty() {
                return Err(FilterError::Empty);
            }
            let mut clause = Clause::new();
            let mut alls = BTreeSet::new();
            for (key, values) in filter {
                let Some((_, allowed)) = metric_filters.iter().find(|(k, _)| k == key) else {
                    return Err(FilterError::UnknownKey(key.clone()));
                };
                let set = match values {
                    FilterValues::All => {
                        alls.insert(key.clone());
                        allowed.iter().cloned().collect()
                    }
                    FilterValues::Values(v) => v.iter().cloned().collect(),
                };
                clause.insert(key.clone(), set);
            }
            expanded.push(clause);
            all_keys.push(alls);
        }

        let filters = expanded
            .iter()
            .enumerate()
            .map(|(i, f)| ResolvedFilter {
                matching: f.clone(),
                all_keys: all_keys[i].clone(),
                ignore: Self::ignore_clauses(i, f, &all_keys[i], &expanded),
            })
            .collect();
        Ok(Self {
            filters,
            default_ignore: expanded,
        })
    }

    /// The ignore clauses of filter `index` (F) from its children.
    fn ignore_clauses(
        index: usize,
        f: &Clause,
        f_all: &BTreeSet<String>,
        all: &[Clause],
    ) -> Vec<Clause> {
        let mut out = Vec::new();
        for (j, c) in all.iter().enumerate() {
            if j == index {
                continue;
            }
            // A child intersects F on every key of F (it may have more keys).
            let is_child = f.iter().all(|(k, fv)| {
                c.get(k)
                    .is_some_and(|cv| cv.intersection(fv).next().is_some())
            });
            if !is_child {
                continue;
            }
            let same_keys = c.len() == f.len() && c.keys().all(|k| f.contains_key(k));
            if !same_keys {
                out.push(c.clone());
                continue;
            }
            if c == f {
                // Identical filters: the oldest keeps the events. A newer twin is not an
                // ignore clause of F; an older twin is, so F gets nothing.
                if j < index {
                    out.push(c.clone());
                }
                continue;
            }
            let subset = c
                .iter()
                .all(|(k, cv)| f.get(k).is_some_and(|fv| cv.is_subset(fv)));
            if subset {
                out.push(c.clone());
                continue;
            }
            // Otherwise only C's values outside F's can exclude, except on F's "all" keys.
            let refined = c
                .iter()
                .map(|(k, cv)| {
                    let values = if f_all.contains(k) {
                        cv.clone()
                    } else {
                        let fv = f.get(k).cloned().unwrap_or_default();
                        cv.difference(&fv).cloned().collect()
                    };
                    (k.clone(), values)
                })
                .collect();
            out.push(refined);
        }
        out
    }

    /// The buckets of an in-arrears event: every filter that matches it and none of its
    /// ignore clauses, or the default bucket when its values match no filter at all.
    ///
    /// Usually one bucket. Lago evaluates each filter independently, so two filters on
    /// unrelated keys (`{region: eu}` and `{cloud: aws}`) both bill an event carrying both
    /// values, and an event excluded from every filter it matches is billed by none; this
    /// reproduces both.
    pub fn buckets_of(&self, event: &dyn EventProperties) -> Vec<Bucket> {
        let mut out: Vec<Bucket> = self
            .filters
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                clause_matches(&f.matching, event)
                    && !f.ignore.iter().any(|c| clause_matches(c, event))
            })
            .map(|(i, _)| Bucket::Filter(i))
            .collect();
        if !self.default_ignore.iter().any(|c| clause_matches(c, event)) {
            out.push(Bucket::Default);
        }
        out
    }

    /// The bucket of a pay-in-advance event: the matching filter with the most keys (ties to
    /// the oldest), else the default bucket.
    pub fn pay_in_advance_bucket_of(&self, event: &dyn EventProperties) -> Bucket {
        let mut best: Option<(usize, usize)> = None;
        for (i, f) in self.filters.iter().enumerate() {
            if clause_matches(&f.matching, event) && best.is_none_or(|(_, n)| f.matching.len() > n)
            {
                best = Some((i, f.matching.len()));
            }
        }
        best.map_or(Bucket::Default, |(i, _)| Bucket::Filter(i))
    }

    /// Number of filters (buckets besides the default).
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Whether the charge has no filters.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Whether filter `index` used `__ALL_FILTER_VALUES__` on `key`.
    pub fn uses_all_values(&self, index: usize, key: &str) -> bool {
        self.filters
            .get(index)
            .is_some_and(|f| f.all_keys.contains(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pairs: &[(&str, &[&str])]) -> BTreeMap<String, FilterValues> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    FilterValues::from_wire(v.iter().map(|s| (*s).to_owned()).collect()),
                )
            })
            .collect()
    }

    fn metric() -> Vec<(String, Vec<String>)> {
        vec![
            ("region".into(), vec!["eu".into(), "us".into()]),
            ("cloud".into(), vec!["aws".into(), "gcp".into()]),
        ]
    }

    #[test]
    fn the_most_specific_filter_wins_and_the_default_takes_the_rest() {
        let set = FilterSet::new(
            &metric(),
            &[
                filter(&[("region", &["eu"])]),
                filter(&[("region", &["eu"]), ("cloud", &["aws"])]),
            ],
        );
        let Ok(set) = set else { panic!("filters") };
        type Case<'a> = (&'a [(&'a str, &'a str)], Vec<Bucket>);
        let cases: [Case<'_>; 4] = [
            (&[("region", "eu")], vec![Bucket::Filter(0)]),
            (
                &[("region", "eu"), ("cloud", "aws")],
                vec![Bucket::Filter(1)],
            ),
            (
                &[("region", "eu"), ("cloud", "gcp")],
                vec![Bucket::Filter(0)],
            ),
            (&[("region", "us")], vec![Bucket::Default]),
        ];
        for (props, expected) in cases {
            let map: BTreeMap<String, String> = props
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            assert_eq!(set.buckets_of(&map), expected, "{props:?}");
        }
        // Pay in advance: the matching filter with the most keys.
        assert_eq!(
            set.pay_in_advance_bucket_of(&[("region", "eu"), ("cloud", "aws")]),
            Bucket::Filter(1)
        );
    }

    #[test]
    fn among_identical_filters_the_oldest_keeps_the_events() {
        let set = FilterSet::new(
            &metric(),
            &[
                filter(&[("region", &["eu"])]),
                filter(&[("region", &["eu"])]),
            ],
        );
        let Ok(set) = set else { panic!("filters") };
        assert_eq!(set.buckets_of(&[("region", "eu")]), vec![Bucket::Filter(0)]);
    }

    #[test]
    fn filters_on_unrelated_keys_both_bill_an_event_carrying_both() {
        // Lago evaluates each filter on its own: neither is a child of the other.
        let set = FilterSet::new(
            &metric(),
            &[
                filter(&[("region", &["eu"])]),
                filter(&[("cloud", &["aws"])]),
            ],
        );
        let Ok(set) = set else { panic!("filters") };
        assert_eq!(
            set.buckets_of(&[("region", "eu"), ("cloud", "aws")]),
            vec![Bucket::Filter(0), Bucket::Filter(1)]
        );
    }

    #[test]
    fn a_key_the_metric_does_not_declare_is_refused() {
        let set = FilterSet::new(&metric(), &[filter(&[("country", &["fr"])])]);
        assert_eq!(set, Err(FilterError::UnknownKey("country".into())));
    }
}

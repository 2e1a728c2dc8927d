//! Request-side glue shared by every route: the bearer token, root-key bodies with typed
//! errors, paging parameters and the list envelope.

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, header::AUTHORIZATION};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value, json};

use crate::ApiError;

/// The API key of `Authorization: Bearer <key>`, if present.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let mut parts = value.split_whitespace();
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && parts.next().is_none())
        .then_some(token)
}

/// Parses a JSON body: `400` if it is not JSON.
///
/// Like Rails, which lago-api runs on, an empty body is no parameters and a JSON document that
/// is not an object (`[..]`, `42`, `null`) is kept aside (Rails wraps it in `_json`): both
/// parse to an empty object, so the caller answers Lago's missing-root 400.
pub fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.len() > crate::error::BODY_LIMIT_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Ok(Map::new()),
        Err(_) => Err(ApiError::BadRequest(
            "BadRequest: the request body is not valid JSON".into(),
        )),
    }
}

/// Takes the object under `root` (`{"customer": {...}}`): `400` if absent, null or empty.
pub fn root_object(
    mut body: Map<String, Value>,
    root: &str,
) -> Result<Map<String, Value>, ApiError> {
    match body.remove(root) {
        Some(Value::Object(map)) if !map.is_empty() => Ok(map),
        _ => Err(ApiError::missing_root(root)),
    }
}

/// Deserializes a root object into a DTO; a field of the wrong type is a 422 naming the
/// root object's field that holds it (`filters` for `filters[0].values`), as Lago keys
/// `error_details` by the fields of the resource.
pub fn from_object<T: DeserializeOwned>(object: Map<String, Value>) -> Result<T, ApiError> {
    let value = Value::Object(object);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e
            .path()
            .iter()
            .find_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "base".to_owned());
        ApiError::invalid(&field, "value_is_invalid")
    })
}

/// `body -> root -> DTO` in one step.
pub fn root_dto<T: DeserializeOwned>(bytes: &[u8], root: &str) -> Result<T, ApiError> {
    from_object(root_object(parse_body(bytes)?, root)?)
}

/// The largest `per_page` served; larger requests are clamped (R19).
pub const PER_PAGE_MAX: usize = 1000;
/// Lago's default page size.
pub const PER_PAGE_DEFAULT: usize = 100;

/// `page` and `per_page` from the query string, 1-based, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// The page asked for (1-based).
    pub page: usize,
    /// Items per page.
    pub per_page: usize,
}

impl Paging {
    /// Reads `page` and `per_page`; non-numeric or zero values are a 422 on that field.
    pub fn from_query(query: &[(String, String)]) -> Result<Self, ApiError> {
        let read = |name: &str, default: usize| -> Result<usize, ApiError> {
            match query.iter().find(|(k, _)| k == name) {
                None => Ok(default),
                Some((_, v)) => match v.parse::<usize>() {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => Err(ApiError::invalid(name, "value_is_invalid")),
                },
            }
        };
        Ok(Self {
            page: read("page", 1)?,
            per_page: read("per_page", PER_PAGE_DEFAULT)?.min(PER_PAGE_MAX),
        })
    }

    /// Lago's `meta` for a page of a list of `total` items.
    pub fn meta(&self, total: usize) -> Value {
        if total == 0 {
            return json!({
                "current_page": 0, "next_page": null, "prev_page": null,
                "total_pages": 0, "total_count": 0,
            });
        }
        let total_pages = total.div_ceil(self.per_page);
        json!({
            "current_page": self.page,
            "next_page": (self.page < total_pages).then_some(self.page + 1),
            "prev_page": (self.page > 1).then(|| self.page - 1),
            "total_pages": total_pages,
            "total_count": total,
        })
    }
}

/// A 200 with `{root: value}`.
pub fn ok<T: Serialize>(root: &str, value: T) -> Response {
    Json(json!({ root: value })).into_response()
}

/// A 200 with `{plural: [...], "meta": {...}}`.
pub fn list<T: Serialize>(plural: &str, items: Vec<T>, paging: Paging, total: usize) -> Response {
    Json(json!({ plural: items, "meta": paging.meta(total) })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_follows_lago_for_empty_middle_and_last_pages() {
        let p = |page, per_page| Paging { page, per_page };
        assert_eq!(
            p(1, 20).meta(0),
            json!({"current_page": 0, "next_page": null, "prev_page": null, "total_pages": 0, "total_count": 0})
        );
        assert_eq!(
            p(2, 2).meta(5),
            json!({"current_page": 2, "next_page": 3, "prev_page": 1, "total_pages": 3, "total_count": 5})
        );
        assert_eq!(
            p(3, 2).meta(5),
            json!({"current_page": 3, "next_page": null, "prev_page": 2, "total_pages": 3, "total_count": 5})
        );
    }

    #[test]
    fn paging_rejects_zero_and_text_and_clamps_per_page() {
        let q = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert!(Paging::from_query(&q("page", "0")).is_err());
        assert!(Paging::from_query(&q("per_page", "abc")).is_err());
        assert_eq!(
            Paging::from_query(&q("per_page", "100000")).map(|p| p.per_page),
            Ok(PER_PAGE_MAX)
        );
    }

    #[test]
    fn bearer_token_needs_the_scheme_and_one_token() {
        let h = |v: &str| {
            let mut map = HeaderMap::new();
            if let Ok(v) = v.parse() {
                map.insert(AUTHORIZATION, v);
            }
            map
        };
        assert_eq!(bearer_token(&h("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&h("Basic abc")), None);
        assert_eq!(bearer_token(&h("Bearer")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn a_missing_or_empty_root_key_is_lagos_400() {
        for body in [
            r#"{}"#,
            r#"{"customer": null}"#,
            r#"{"customer": {}}"#,
            r#"{"tax": {"a": 1}}"#,
        ] {
            let r = parse_body(body.as_bytes()).and_then(|b| root_object(b, "customer"));
            assert_eq!(r, Err(ApiError::missing_root("customer")), "{body}");
        }
        assert!(matches!(
            parse_body(b"{not json"),
            Err(ApiError::BadRequest(_))
        ));
        for body in ["", " \n", "[1]", "42", "null", "\"customer\""] {
            let r = parse_body(body.as_bytes()).and_then(|b| root_object(b, "customer"));
            assert_eq!(r, Err(ApiError::missing_root("customer")), "{body:?}");
        }
    }
}

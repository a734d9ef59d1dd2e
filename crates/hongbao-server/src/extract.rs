//! What every request goes through before its handler, answered in the
//! API's error shape when it fails (axum's own rejections are plain text):
//! the head's sizes, the query parameters, the path, the body.

use std::error::Error as _;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hongbao_wxpay::InvalidField;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::listener::BodyTimedOut;

/// The longest path and query answered (hyper itself answers a bare 414
/// only from 64 KiB).
pub const MAX_URI: usize = 8 * 1024;

/// The most header bytes answered (hyper itself answers a bare 431 only
/// from about 400 KiB).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The most header fields answered (hyper itself answers a bare 431 above
/// 100).
pub const MAX_HEADER_FIELDS: usize = 64;

/// The largest body a path takes.
pub fn body_limit(path: &str) -> usize {
    if path == "/v1/campaigns" {
        crate::campaigns::MAX_UPLOAD
    } else {
        crate::routes::MAX_BODY
    }
}

/// Refuses a request by its head alone: a path and query, or headers, too
/// large; a `Content-Length` over the path's limit (so that a client is
/// answered 413 at once instead of sending a body that would be thrown
/// away).
pub async fn check_head(request: Request, next: Next) -> Response {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri > MAX_URI {
        return ApiError::UriTooLong(MAX_URI).into_response();
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if bytes > MAX_HEADER_BYTES || headers.len() > MAX_HEADER_FIELDS {
        return ApiError::HeadersTooLarge {
            bytes: MAX_HEADER_BYTES,
            fields: MAX_HEADER_FIELDS,
        }
        .into_response();
    }
    let limit = body_limit(request.uri().path());
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::BodyTooLarge(limit).into_response();
    }
    next.run(request).await
}

/// Answers a path that exists with a method it does not take (axum adds
/// the `Allow` header).
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The query parameters an endpoint takes.
pub trait QueryNames {
    /// Every name; any other is refused.
    const NAMES: &'static [&'static str];
}

/// Query parameters, each known and given at most once; otherwise 400
/// naming the parameter. `T`'s fields are strings, read by the handler
/// (so that a bad value names its parameter too).
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: QueryNames + DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        parse_query::<T>(query).map(Params)
    }
}

fn bad_parameter(name: &str, message: String, zh: String) -> ApiError {
    ApiError::BadField(InvalidField::new(name.to_owned(), message, zh))
}

/// Reads `query` into `T`, refusing unknown and repeated names.
pub fn parse_query<T: QueryNames + DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|e| {
        bad_parameter(
            "query",
            format!("cannot be read: {e}"),
            format!("无法解析：{e}"),
        )
    })?;
    let mut map = Map::new();
    for (name, value) in pairs {
        if !T::NAMES.contains(&name.as_str()) {
            let known = if T::NAMES.is_empty() {
                "this endpoint takes none".to_owned()
            } else {
                format!("the parameters are {}", T::NAMES.join(", "))
            };
            let zh_known = if T::NAMES.is_empty() {
                "此接口不接受任何查询参数".to_owned()
            } else {
                format!("可用参数为 {}", T::NAMES.join(", "))
            };
            return Err(bad_parameter(
                &name,
                format!("is not a query parameter here; {known}"),
                format!("不是此接口的查询参数；{zh_known}"),
            ));
        }
        if map.contains_key(&name) {
            return Err(bad_parameter(
                &name,
                "is given more than once; give it once".into(),
                "出现了多次，只能给出一次".into(),
            ));
        }
        map.insert(name, Value::String(value));
    }
    serde_json::from_value(Value::Object(map))
        .map_err(|e| ApiError::Internal(format!("query parameters do not fit their type: {e}")))
}

/// No query parameters at all.
#[derive(Debug, serde::Deserialize)]
pub struct NoParams {}

impl QueryNames for NoParams {
    const NAMES: &'static [&'static str] = &[];
}

/// A single path segment (`{id}`, `{name}`), percent-decoded.
#[derive(Debug)]
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(segment)| PathParam(segment))
            .map_err(|e| {
                bad_parameter(
                    "path",
                    format!("cannot be read: {}", e.body_text()),
                    "路径无法解析（须为 UTF-8 的百分号编码）".into(),
                )
            })
    }
}

/// The request body, whole: 413 over the path's limit, 408 when it does
/// not arrive in time, in the API's shape.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = body_limit(request.uri().path());
        match Bytes::from_request(request, state).await {
            Ok(bytes) if bytes.len() > limit => Err(ApiError::BodyTooLarge(limit)),
            Ok(bytes) => Ok(RawBody(bytes)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::BodyTooLarge(limit))
            }
            Err(e) => {
                let mut source = e.source();
                while let Some(cause) = source {
                    if let Some(timeout) = cause.downcast_ref::<BodyTimedOut>() {
                        return Err(ApiError::BodyTimeout(timeout.seconds));
                    }
                    source = cause.source();
                }
                Err(ApiError::InvalidJson(e.body_text()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Two {
        a: Option<String>,
        b: Option<String>,
    }

    impl QueryNames for Two {
        const NAMES: &'static [&'static str] = &["a", "b"];
    }

    fn field(e: ApiError) -> String {
        match e {
            ApiError::BadField(f) => f.field.into_owned(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let two: Two = parse_query("a=1&b=%E7%BA%A2").unwrap();
        assert_eq!(
            (two.a.as_deref(), two.b.as_deref()),
            (Some("1"), Some("红"))
        );
        let none: Two = parse_query("").unwrap();
        assert!(none.a.is_none() && none.b.is_none());
        assert_eq!(
            field(parse_query::<Two>("a=1&openid=x").unwrap_err()),
            "openid"
        );
        assert_eq!(field(parse_query::<Two>("a=1&a=2").unwrap_err()), "a");
        assert_eq!(field(parse_query::<NoParams>("x=1").unwrap_err()), "x");
    }
}

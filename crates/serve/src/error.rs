//! Errors of the service (answered as one-line JSON with an HTTP status) and
//! of its store.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use thiserror::Error;

/// Everything the store layer can fail with.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The object store failed.
    #[error("store: {0}")]
    Store(#[from] object_store::Error),
    /// A stored record is not valid JSON of its kind.
    #[error("store: bad record {path}: {msg}")]
    Record {
        /// Its path.
        path: String,
        /// What is wrong.
        msg: String,
    },
    /// The store location cannot be opened.
    #[error("store: {0}")]
    Open(String),
}

/// An error answered to a request: a status and a one-line message, sent as
/// `{"error": "..."}`.
#[derive(Debug, Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// One line saying what is wrong.
    pub message: String,
    /// Seconds to wait before retrying (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status` and `message` (newlines are flattened).
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Self {
            status,
            message: message.replace(['\n', '\r'], " "),
            retry_after: None,
        }
    }
    /// 400.
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    /// 401.
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, m)
    }
    /// 404.
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    /// 409.
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, m)
    }
    /// 413.
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, m)
    }
    /// 429 with `Retry-After`.
    pub fn busy(m: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, m);
        e.retry_after = Some(retry_after);
        e
    }
    /// 500 (the message is logged; the client sees it too, it holds no
    /// secrets: store paths and engine errors only).
    pub fn internal(m: impl Into<String>) -> Self {
        let e = Self::new(StatusCode::INTERNAL_SERVER_ERROR, m);
        tracing::error!("{}", e.message);
        e
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        let mut r = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

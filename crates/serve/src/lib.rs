//! The Residue service: `residue serve` and `residue client`.
//!
//! One server serves one compiled model. A client fetches the plan and the
//! keys it needs, uploads its evaluation keys once (streamed into the
//! store and validated as they arrive; a secret key is refused), gets a key
//! id and a secret bearer token, then submits encrypted inputs against the
//! key id and polls the job until its encrypted result is ready.
//!
//! ```text
//! client ── POST /v1/keys ─────────► validate while streaming ─► store keys/<id>
//!        ── POST /v1/keys/<id>/jobs ► validate input ─► store jobs/<id> ─► queue
//!                                     workers (bounded) ─► runtime::server::infer
//!        ── GET /v1/jobs/<id> ──────► state, step, bootstraps done of planned
//!        ── GET /v1/jobs/<id>/result ► encrypted logits
//! ```
//!
//! - [`store`]: keys and jobs in an `object_store` (a local directory by
//!   default); servers on one store share keys and jobs.
//! - [`jobs`]: the queue, the worker pool, restarts and takeovers.
//! - [`keys`]: upload validation and the key cache.
//! - [`api`]: the routes; [`client`]: the HTTP client.

#![warn(missing_docs)]

pub mod api;
pub mod client;
pub mod error;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod store;

pub use error::{ApiError, StoreError};
pub use jobs::{App, Config};
pub use model::ServedModel;
pub use store::Store;

/// Serves `app` on `listener` until `shutdown` resolves: starts the
/// workers (re-queuing this worker's unfinished jobs first), then answers
/// requests.
pub async fn serve(
    app: std::sync::Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    app.start().await.map_err(std::io::Error::other)?;
    axum::serve(listener, api::router(app))
        .with_graceful_shutdown(shutdown)
        .await
}

//! The HTTP API (axum).
//!
//! | method | path | auth | body | answer |
//! |---|---|---|---|---|
//! | GET | `/health` | | | `{"status":"ok",...}` |
//! | GET | `/metrics` | | | Prometheus text |
//! | GET | `/v1/models` | | | every served model's [`ServerInfo`] |
//! | GET | `/v1/info[?model=NAME]` | | | [`ServerInfo`] |
//! | GET | `/v1/plan[?model=NAME]` | | | the plan (JSON) |
//! | POST | `/v1/keys[?model=NAME]` | | eval keys (+ bootstrapping keys) | `201` [`KeyCreated`] |
//! | GET | `/v1/keys/{key}` | token | | [`KeyInfo`] |
//! | POST | `/v1/keys/{key}/jobs` | token | encrypted input | `202` [`JobCreated`] |
//! | GET | `/v1/jobs/{job}` | token | | [`JobStatus`] |
//! | GET | `/v1/jobs/{job}/result` | token | | encrypted result |
//! | DELETE | `/v1/keys/{key}` | token | | `204`: keys gone (running jobs finish) |
//! | DELETE | `/v1/jobs/{job}` | token | | `204`: input and result gone |
//!
//! `model` may be left out when the server serves one model. Keys are for
//! one model (its rotations); jobs run the model of their keys.
//!
//! The token is the one the key upload returned, sent as
//! `Authorization: Bearer <token>`. A key or job that exists under another
//! token answers `404`, as one that does not exist. Errors are one-line
//! JSON, `{"error": "..."}`, with a 4xx status for anything the request got
//! wrong: also those the framework gives itself (a query string or path
//! that does not deserialize, `405` with `Allow` for a method a path does
//! not have, a timeout's `408`), which [`router`] rewrites.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures::StreamExt;
use object_store::WriteMultipart;
use serde::{Deserialize, Serialize};
use tower_http::timeout::TimeoutLayer;

use crate::error::ApiError;
use crate::jobs::{App, JobMeta, JobState, JobStatus, KeyMeta, same, token_hash};
use crate::keys::{ChanReader, Loaded, parse_keys};
use crate::model::{ServedModel, ServerInfo};
use crate::store::{new_id, now_unix, paths, valid_id};

/// `?model=NAME`.
#[derive(Debug, Deserialize)]
pub struct Pick {
    /// A served model's name.
    pub model: Option<String>,
}

fn pick(app: &App, p: &Pick) -> Res<Arc<ServedModel>> {
    app.model_by_name(p.model.as_deref())
        .map_err(ApiError::not_found)
}

/// Answer of a key upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyCreated {
    /// The key id (submit jobs against it).
    pub key_id: String,
    /// The bearer token for this key and its jobs; shown once, stored only
    /// as a hash.
    pub token: String,
    /// Bytes stored.
    pub bytes: u64,
}

/// A key set as its owner sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Key id.
    pub key_id: String,
    /// Parameter set.
    pub params: String,
    /// Bytes stored.
    pub bytes: u64,
    /// When uploaded.
    pub created_unix: f64,
}

/// Answer of a job submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobCreated {
    /// The job id.
    pub job_id: String,
}

type Res<T> = Result<T, ApiError>;

/// The router over `app`.
pub fn router(app: Arc<App>) -> Router {
    let timeout = |d| TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, d);
    let upload = Router::new()
        .route("/v1/keys", post(upload_keys))
        .layer(timeout(app.cfg.upload_timeout));
    let rest = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .route("/v1/info", get(info))
        .route("/v1/plan", get(plan))
        .route("/v1/keys/{key}", get(key_info).delete(delete_key))
        .route("/v1/keys/{key}/jobs", post(submit))
        .route("/v1/jobs/{job}", get(job_status).delete(delete_job))
        .route("/v1/jobs/{job}/result", get(job_result))
        .layer(timeout(app.cfg.request_timeout));
    upload
        .merge(rest)
        .fallback(|| async { ApiError::not_found("no such endpoint (see /v1/info)") })
        .layer(middleware::from_fn_with_state(app.clone(), count))
        .layer(middleware::from_fn(json_errors))
        .with_state(app)
}

/// Most bytes of an error answer's body [`json_errors`] reads back.
const MAX_ERROR_BODY: usize = 4096;

/// Makes every error answer the one-line JSON error: those axum and tower
/// produce themselves (a query string or path that does not deserialize,
/// `405` for a method a path does not have, a timeout's `408`, a body
/// limit's `413`) come as plain text or with no body; their status and
/// headers (`Allow`, `Retry-After`) are kept and the text, or the status's
/// reason, becomes `{"error": "..."}`. Answers that are JSON already (every
/// [`ApiError`]) pass as they are.
async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let r = next.run(req).await;
    let status = r.status();
    let is_json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return r;
    }
    let (parts, body) = r.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let allow = parts
        .headers
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let shown: String = path.chars().take(200).collect();
    let message = if status == StatusCode::METHOD_NOT_ALLOWED {
        format!(
            "{method} is not allowed on {shown}{}",
            allow
                .map(|a| format!(" (allowed: {a})"))
                .unwrap_or_else(|| " (the Allow header lists what is)".into())
        )
    } else if !text.is_empty() {
        text
    } else if status == StatusCode::REQUEST_TIMEOUT {
        "the request ran past its time limit".to_string()
    } else {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    };
    let mut out = ApiError::new(status, message).into_response();
    for h in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&h) {
            out.headers_mut().insert(h, v.clone());
        }
    }
    out
}

async fn count(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "other".into());
    let r = next.run(req).await;
    app.metrics.request(&method, &route, r.status().as_u16());
    r
}

async fn health(State(app): State<Arc<App>>) -> impl IntoResponse {
    let models: Vec<_> = app
        .models
        .iter()
        .map(|m| serde_json::json!({"model": m.name, "plan_hash": m.plan_hash, "params": m.params.name()}))
        .collect();
    axum::Json(serde_json::json!({
        "status": "ok",
        "worker": app.cfg.worker_id,
        "models": models,
        "queued": app.queued(),
        "running": app.metrics.jobs_running.load(Ordering::Relaxed),
        "workers": app.cfg.workers,
    }))
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(app.cache.held(), app.cache.len()),
    )
}

async fn models(State(app): State<Arc<App>>) -> impl IntoResponse {
    let v: Vec<ServerInfo> = app
        .models
        .iter()
        .map(|m| m.info(app.cfg.max_key_bytes))
        .collect();
    axum::Json(v)
}

async fn info(State(app): State<Arc<App>>, Query(p): Query<Pick>) -> Res<axum::Json<ServerInfo>> {
    Ok(axum::Json(pick(&app, &p)?.info(app.cfg.max_key_bytes)))
}

async fn plan(State(app): State<Arc<App>>, Query(p): Query<Pick>) -> Res<Response> {
    let m = pick(&app, &p)?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        m.plan_json.clone(),
    )
        .into_response())
}

fn bearer(headers: &HeaderMap) -> Res<String> {
    let v = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>`"))?;
    let s = v
        .to_str()
        .ok()
        .and_then(|s| s.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header is not `Bearer <token>`")
        })?;
    Ok(token_hash(s))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The key record for `id` if the token owns it (else 404, as for a key
/// that does not exist).
async fn owned_key(app: &App, id: &str, headers: &HeaderMap) -> Res<KeyMeta> {
    let th = bearer(headers)?;
    if !valid_id(id) {
        return Err(ApiError::not_found("no such key"));
    }
    match app.store.get_json::<KeyMeta>(&paths::key_meta(id)).await? {
        Some(m) if same(&m.token_sha256, &th) => Ok(m),
        _ => Err(ApiError::not_found("no such key for this token")),
    }
}

async fn owned_job(app: &App, id: &str, headers: &HeaderMap) -> Res<JobMeta> {
    let th = bearer(headers)?;
    if !valid_id(id) {
        return Err(ApiError::not_found("no such job"));
    }
    match app.store.get_json::<JobMeta>(&paths::job_meta(id)).await? {
        Some(m) if same(&m.token_sha256, &th) => Ok(m),
        _ => Err(ApiError::not_found("no such job for this token")),
    }
}

async fn upload_keys(
    State(app): State<Arc<App>>,
    Query(p): Query<Pick>,
    headers: HeaderMap,
    body: Body,
) -> Res<Response> {
    let r = match pick(&app, &p) {
        Ok(model) => upload_keys_inner(&app, model, &headers, body).await,
        Err(e) => {
            drain(body.into_data_stream()).await;
            Err(e)
        }
    };
    if r.is_err() {
        app.metrics
            .key_uploads_refused
            .fetch_add(1, Ordering::Relaxed);
    }
    r
}

async fn upload_keys_inner(
    app: &Arc<App>,
    model: Arc<ServedModel>,
    headers: &HeaderMap,
    body: Body,
) -> Res<Response> {
    let max = app.cfg.max_key_bytes;
    if let Some(n) = content_length(headers)
        && n > max
    {
        if n <= DRAIN_LIMIT {
            drain(body.into_data_stream()).await;
        }
        return Err(ApiError::too_large(format!(
            "a key upload of {n} bytes: at most {max}"
        )));
    }
    let id = new_id();
    let token = new_id() + &new_id();
    // A refused upload leaves nothing in the store (no blob, no staged
    // part, no empty `keys/<id>/` folder), nor does one cut short by its
    // time limit or by the client going away (the handler is dropped).
    let mut discard = Discard::new(&app.store, paths::key_dir(&id));
    let (backend, total) = match store_keys(app, model, &id, &token, body).await {
        Ok(r) => {
            discard.keep();
            r
        }
        Err(e) => {
            discard.now().await;
            return Err(e);
        }
    };
    app.cache.insert(
        &id,
        Arc::new(Loaded {
            backend,
            bytes: total,
        }),
    );
    app.metrics.key_uploads.fetch_add(1, Ordering::Relaxed);
    app.metrics
        .key_bytes_uploaded
        .fetch_add(total, Ordering::Relaxed);
    tracing::info!("keys {id}: {total} bytes accepted");
    Ok((
        StatusCode::CREATED,
        axum::Json(KeyCreated {
            key_id: id,
            token,
            bytes: total,
        }),
    )
        .into_response())
}

/// Removes a key upload's folder unless kept: at once with
/// [`Discard::now`], or from a task if dropped armed (the request was
/// cancelled).
struct Discard {
    store: Option<crate::Store>,
    dir: String,
}

impl Discard {
    fn new(store: &crate::Store, dir: String) -> Self {
        Self {
            store: Some(store.clone()),
            dir,
        }
    }

    /// The upload is stored: nothing to remove.
    fn keep(&mut self) {
        self.store = None;
    }

    /// Removes the folder now.
    async fn now(&mut self) {
        if let Some(s) = self.store.take() {
            s.remove_all(&self.dir).await;
        }
    }
}

impl Drop for Discard {
    fn drop(&mut self) {
        if let Some(s) = self.store.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let dir = std::mem::take(&mut self.dir);
            rt.spawn(async move {
                // After the dropped upload's own cleanup of its staged part.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                s.remove_all(&dir).await;
            });
        }
    }
}

/// Streams a key upload into `keys/<id>/keys.bin` while validating it and
/// writes its record: the engine's keys and the bytes stored. On an error
/// the caller removes what is left.
async fn store_keys(
    app: &Arc<App>,
    model: Arc<ServedModel>,
    id: &str,
    token: &str,
    body: Body,
) -> Res<(runtime::he::CkksBackend, u64)> {
    let max = app.cfg.max_key_bytes;
    let upload = app
        .store
        .object_store()
        .put_multipart(&paths::key_blob(id))
        .await
        .map_err(|e| ApiError::internal(format!("store: {e}")))?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
    let (tx, mut reader) = ChanReader::new(8);
    let plan_hash = model.plan_hash.clone();
    let params_name = model.params.name().to_string();
    let storage = app.cfg.storage.unwrap_or_else(|| {
        runtime::server::default_storage(&model.params, model.prep.plan.params.slots)
    });
    let parser = tokio::task::spawn_blocking(move || {
        let keys = parse_keys(&mut reader, &model.params, &model.needs)?;
        let backend = runtime::server::backend_shared(
            &model.params,
            &model.prep,
            keys.0,
            keys.1,
            storage,
            &model.transforms,
        )
        .map_err(|e| e.to_string())?;
        Ok::<_, String>(backend)
    });
    let mut total = 0u64;
    let mut failure = None;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let c = match chunk {
            Ok(c) => c,
            Err(e) => {
                failure = Some(ApiError::bad_request(format!(
                    "the body could not be read (truncated?): {e}"
                )));
                break;
            }
        };
        total += c.len() as u64;
        if total > max {
            failure = Some(ApiError::too_large(format!(
                "a key upload of more than {max} bytes"
            )));
            break;
        }
        if let Err(e) = w.wait_for_capacity(4).await {
            failure = Some(ApiError::internal(format!("store: {e}")));
            break;
        }
        w.put(c.clone());
        if tx.send(Ok(c)).await.is_err() {
            // The parser stopped (its error says why): read the rest of a
            // moderate body so that the client gets the answer.
            drain(&mut stream).await;
            break;
        }
    }
    if failure.is_some() {
        let _ = tx.send(Err(std::io::Error::other("upload stopped"))).await;
    }
    drop(tx);
    let parsed = match parser.await {
        Ok(p) => p,
        Err(e) => {
            let _ = w.abort().await;
            return Err(ApiError::internal(format!("key validation: {e}")));
        }
    };
    let backend = match (failure, parsed) {
        (Some(f), _) => {
            let _ = w.abort().await;
            return Err(f);
        }
        (None, Err(m)) => {
            let _ = w.abort().await;
            return Err(ApiError::bad_request(format!("keys refused: {m}")));
        }
        (None, Ok(b)) => b,
    };
    // The parser stopped at the end of what it needs; anything after is
    // refused above (the parser reads to the end), so `total` is the size.
    w.finish()
        .await
        .map_err(|e| ApiError::internal(format!("store: {e}")))?;
    let meta = KeyMeta {
        key_id: id.to_string(),
        token_sha256: token_hash(token),
        params: params_name,
        plan_hash,
        bytes: total,
        created_unix: now_unix(),
    };
    app.store.put_json(&paths::key_meta(id), &meta).await?;
    Ok((backend, total))
}

async fn key_info(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Res<axum::Json<KeyInfo>> {
    let m = owned_key(&app, &key, &headers).await?;
    Ok(axum::Json(KeyInfo {
        key_id: m.key_id,
        params: m.params,
        bytes: m.bytes,
        created_unix: m.created_unix,
    }))
}

/// Bytes of a refused body still read (and dropped) before answering, so
/// that a client still sending gets the answer instead of a reset
/// connection; a longer body is cut off.
pub const DRAIN_LIMIT: u64 = 64 << 20;

async fn drain<S, E>(mut stream: S)
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut n = 0u64;
    while let Some(Ok(c)) = stream.next().await {
        n += c.len() as u64;
        if n > DRAIN_LIMIT {
            break;
        }
    }
}

/// Reads a whole body of at most `max` bytes.
async fn read_limited(headers: &HeaderMap, body: Body, max: u64, what: &str) -> Res<Bytes> {
    let mut stream = body.into_data_stream();
    if let Some(n) = content_length(headers)
        && n > max
    {
        if n <= DRAIN_LIMIT {
            drain(&mut stream).await;
        }
        return Err(ApiError::too_large(format!(
            "{what} of {n} bytes: at most {max}"
        )));
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(c) = stream.next().await {
        let c = c.map_err(|e| {
            ApiError::bad_request(format!("the body could not be read (truncated?): {e}"))
        })?;
        if (buf.len() + c.len()) as u64 > max {
            drain(&mut stream).await;
            return Err(ApiError::too_large(format!(
                "{what} of more than {max} bytes"
            )));
        }
        buf.extend_from_slice(&c);
    }
    Ok(buf.freeze())
}

/// Whether a job may be submitted against `key` now: owner, plan, room.
async fn admit(app: &App, key: &str, headers: &HeaderMap) -> Res<(KeyMeta, Arc<ServedModel>)> {
    let km = owned_key(app, key, headers).await?;
    let Some(model) = app.model_by_hash(&km.plan_hash) else {
        return Err(ApiError::conflict(
            "these keys are for a model this server does not serve (any more): upload keys for one it does",
        ));
    };
    if app.cfg.workers > 0 && !app.has_room() {
        app.metrics
            .jobs_rejected_busy
            .fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::busy(
            format!("{} jobs queued: try again later", app.queued()),
            2,
        ));
    }
    Ok((km, model))
}

async fn submit(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Res<Response> {
    let (km, model) = match admit(&app, &key, &headers).await {
        Ok(k) => k,
        Err(e) => {
            // Read (and drop) a moderate body so the client gets the answer.
            drain(body.into_data_stream()).await;
            return Err(e);
        }
    };
    let input = read_limited(&headers, body, model.max_input_bytes, "an input").await?;
    let check = input.clone();
    let m2 = model.clone();
    tokio::task::spawn_blocking(move || {
        let t = runtime::files::EncryptedTensor::read_from(&mut check.as_ref(), &m2.params)
            .map_err(|e| e.to_string())?;
        if t.meta.kind != runtime::files::TensorKind::Input {
            return Err("a result, not an encrypted input".to_string());
        }
        if t.meta.plan_hash != m2.plan_hash {
            return Err("encrypted for another plan (fetch /v1/plan)".to_string());
        }
        if t.meta.layout != m2.plan.nodes[0].layout_out || t.meta.factor != m2.prep.factors[0] {
            return Err("layout or value scale differs from the plan's".to_string());
        }
        Ok(())
    })
    .await
    .map_err(|e| ApiError::internal(format!("input check: {e}")))?
    .map_err(|m| ApiError::bad_request(format!("input refused: {m}")))?;
    let job_id = app
        .accept(&model, &km.key_id, &km.token_sha256, input)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(JobCreated { job_id })).into_response())
}

async fn job_status(
    State(app): State<Arc<App>>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> Res<axum::Json<JobStatus>> {
    let m = owned_job(&app, &job, &headers).await?;
    Ok(axum::Json(JobStatus::from(&m)))
}

async fn job_result(
    State(app): State<Arc<App>>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> Res<Response> {
    let m = owned_job(&app, &job, &headers).await?;
    match m.state {
        JobState::Done => {}
        JobState::Failed => {
            return Err(ApiError::conflict(format!(
                "the job failed: {}",
                m.error.unwrap_or_default()
            )));
        }
        s => {
            return Err(ApiError::conflict(format!(
                "the job is {}: no result yet",
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            )));
        }
    }
    let b = app
        .store
        .get_bytes(&paths::job_output(&job))
        .await?
        .ok_or_else(|| ApiError::internal("the job is done but its result is gone"))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], b).into_response())
}

async fn delete_key(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Res<StatusCode> {
    let m = owned_key(&app, &key, &headers).await?;
    // The record first: from then on the key does not exist for anyone.
    app.store.delete(&paths::key_meta(&m.key_id)).await?;
    app.store.delete(&paths::key_blob(&m.key_id)).await?;
    app.store.remove_empty_dir(&paths::key_dir(&m.key_id)).await;
    app.cache.remove(&m.key_id);
    tracing::info!("keys {}: deleted by their owner", m.key_id);
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_job(
    State(app): State<Arc<App>>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> Res<StatusCode> {
    let m = owned_job(&app, &job, &headers).await?;
    if !m.state.is_final() {
        return Err(ApiError::conflict(
            "the job is not finished: delete it once it is done or failed",
        ));
    }
    app.store.delete(&paths::job_meta(&m.job_id)).await?;
    app.store.delete(&paths::job_input(&m.job_id)).await?;
    app.store.delete(&paths::job_output(&m.job_id)).await?;
    for n in 1..=m.attempts {
        app.store.delete(&paths::job_claim(&m.job_id, n)).await?;
    }
    app.store.remove_empty_dir(&paths::job_dir(&m.job_id)).await;
    Ok(StatusCode::NO_CONTENT)
}

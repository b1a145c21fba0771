//! Jobs: records in the store, a bounded local queue, a pool of workers
//! running at most `workers` inferences at once, and the scan that takes
//! over jobs whose worker stopped.
//!
//! A job is accepted only once its input and its record are in the store.
//! Each attempt at running it is claimed by one worker through
//! `jobs/<id>/claim-<n>`, created atomically (create-if-absent), so two
//! servers never both take the same attempt. Workers write a heartbeat
//! every poll interval. A job whose record is not final and whose worker is
//! (a) this worker id in an earlier process (a restart after a crash or a
//! SIGKILL), (b) a worker whose heartbeat is older than the lease, or
//! (c) nobody (accepted by a server with no workers) is taken over by the
//! next scan, up to `max_attempts` attempts; after that it is marked failed
//! with the reason. Nothing accepted is silently lost.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::error::StoreError;
use crate::keys::{ChanReader, KeyCache, Loaded, parse_keys};
use crate::metrics::Metrics;
use crate::model::ServedModel;
use crate::store::{Store, now_unix, paths};

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, waiting for a worker.
    Queued,
    /// Running.
    Running,
    /// Finished: the result can be fetched.
    Done,
    /// Failed: `error` says why.
    Failed,
}

impl JobState {
    /// Done or failed.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

/// Progress of a running job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    /// Index of the plan step running.
    pub step: usize,
    /// Steps in the plan.
    pub steps: usize,
    /// Name of the step running.
    pub step_name: String,
    /// Ciphertext bootstraps done.
    pub bootstraps_done: u64,
    /// Ciphertext bootstraps the plan places.
    pub bootstraps_planned: u64,
    /// Seconds since the inference started.
    pub elapsed_seconds: f64,
}

/// What a finished inference did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobStats {
    /// Seconds of encrypted compute.
    pub seconds: f64,
    /// Seconds loading keys and input.
    pub load_seconds: f64,
    /// Seconds between acceptance and the start of the attempt that finished.
    pub queue_seconds: f64,
    /// Ciphertext bootstraps.
    pub bootstraps: u64,
    /// Rotations.
    pub rotations: u64,
}

/// A job's record (`jobs/<id>/meta.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobMeta {
    /// Job id.
    pub job_id: String,
    /// The key id it runs with.
    pub key_id: String,
    /// SHA-256 of the owner's token (hex).
    pub token_sha256: String,
    /// The plan it was submitted for.
    pub plan_hash: String,
    /// State.
    pub state: JobState,
    /// Why it failed.
    pub error: Option<String>,
    /// Attempts claimed so far.
    pub attempts: u32,
    /// Worker id of the latest claim.
    pub worker: Option<String>,
    /// Process instance of the latest claim.
    pub instance: Option<String>,
    /// When it was accepted.
    pub created_unix: f64,
    /// When the record was last written.
    pub updated_unix: f64,
    /// When the latest attempt started running.
    pub started_unix: Option<f64>,
    /// When it finished or failed.
    pub finished_unix: Option<f64>,
    /// Progress of the latest attempt.
    pub progress: JobProgress,
    /// What the finished inference did.
    pub stats: Option<JobStats>,
}

/// A job as its owner sees it (`GET /v1/jobs/<id>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobStatus {
    /// Job id.
    pub job_id: String,
    /// Key id.
    pub key_id: String,
    /// State.
    pub state: JobState,
    /// Why it failed.
    pub error: Option<String>,
    /// Attempts claimed so far (more than one after a worker stopped).
    pub attempts: u32,
    /// Worker running (or that ran) it.
    pub worker: Option<String>,
    /// Progress.
    pub progress: JobProgress,
    /// Stats when done.
    pub stats: Option<JobStats>,
    /// When it was accepted.
    pub created_unix: f64,
    /// When it finished.
    pub finished_unix: Option<f64>,
}

impl From<&JobMeta> for JobStatus {
    fn from(m: &JobMeta) -> Self {
        Self {
            job_id: m.job_id.clone(),
            key_id: m.key_id.clone(),
            state: m.state,
            error: m.error.clone(),
            attempts: m.attempts,
            worker: m.worker.clone(),
            progress: m.progress.clone(),
            stats: m.stats.clone(),
            created_unix: m.created_unix,
            finished_unix: m.finished_unix,
        }
    }
}

/// An uploaded key set's record (`keys/<id>/meta.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyMeta {
    /// Key id.
    pub key_id: String,
    /// SHA-256 of the owner's token (hex).
    pub token_sha256: String,
    /// Parameter set.
    pub params: String,
    /// The plan they were validated against.
    pub plan_hash: String,
    /// Bytes uploaded.
    pub bytes: u64,
    /// When.
    pub created_unix: f64,
}

#[derive(Serialize, Deserialize)]
struct Heartbeat {
    worker: String,
    instance: String,
    unix: f64,
}

/// Service settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Inferences run at once (0: accept jobs, run none; another server
    /// on the same store runs them).
    pub workers: usize,
    /// Jobs waiting in this server's queue at most (`429` beyond).
    pub queue: usize,
    /// Bytes of evaluation keys kept in memory.
    pub key_cache_bytes: u64,
    /// Most bytes of one key upload.
    pub max_key_bytes: u64,
    /// This worker's id (stable across restarts: a restarted worker takes
    /// its unfinished jobs back at once).
    pub worker_id: String,
    /// A worker whose heartbeat is older than this has stopped.
    pub lease: Duration,
    /// Heartbeat and scan interval.
    pub poll: Duration,
    /// Attempts at a job before it is failed.
    pub max_attempts: u32,
    /// Time limit of a request other than a key upload.
    pub request_timeout: Duration,
    /// Time limit of a key upload.
    pub upload_timeout: Duration,
    /// How bootstrapping's diagonals are held (`None`, the default: per
    /// model, `runtime::server::default_storage`; see
    /// `runtime::server::backend_with_storage`). One copy per served model.
    pub storage: Option<runtime::server::DiagonalStorage>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            workers: 1,
            queue: 16,
            key_cache_bytes: 4 << 30,
            max_key_bytes: 64 << 30,
            worker_id: "worker".into(),
            lease: Duration::from_secs(15),
            poll: Duration::from_secs(1),
            max_attempts: 3,
            request_timeout: Duration::from_secs(60),
            upload_timeout: Duration::from_secs(3600),
            storage: None,
        }
    }
}

/// Keeps only `[A-Za-z0-9._-]` of a worker id (it becomes a path).
pub fn sanitize_worker_id(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if t.is_empty() { "worker".into() } else { t }
}

/// SHA-256 of a token, hex.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::store::hex(&Sha256::digest(token.as_bytes()))
}

/// Compares two strings in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The service's state: model, store, queue, workers, cache, metrics.
pub struct App {
    /// The served models (distinct names and plans).
    pub models: Vec<Arc<ServedModel>>,
    /// Keys and jobs.
    pub store: Store,
    /// Settings.
    pub cfg: Config,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Loaded keys.
    pub cache: KeyCache,
    /// This process (a random id: tells a restart from the process before).
    pub instance: String,
    queue: Mutex<VecDeque<String>>,
    notify: Notify,
    /// Jobs this process holds (queued or running).
    held: Mutex<HashSet<String>>,
    /// Jobs known final (skipped by scans).
    finished: Mutex<HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl App {
    /// The service over `models` and `store`. Names and plans must be
    /// distinct, and there must be at least one model.
    pub fn new(
        models: Vec<ServedModel>,
        store: Store,
        mut cfg: Config,
    ) -> Result<Arc<Self>, String> {
        if models.is_empty() {
            return Err("no model to serve".into());
        }
        for (i, a) in models.iter().enumerate() {
            for b in &models[..i] {
                if a.name == b.name {
                    return Err(format!("two models named `{}`", a.name));
                }
                if a.plan_hash == b.plan_hash {
                    return Err(format!(
                        "models `{}` and `{}` have the same plan",
                        a.name, b.name
                    ));
                }
            }
        }
        cfg.worker_id = sanitize_worker_id(&cfg.worker_id);
        Ok(Arc::new(Self {
            models: models.into_iter().map(Arc::new).collect(),
            store,
            cache: KeyCache::new(cfg.key_cache_bytes),
            cfg,
            metrics: Arc::new(Metrics::default()),
            instance: crate::store::new_id(),
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            held: Mutex::new(HashSet::new()),
            finished: Mutex::new(HashSet::new()),
        }))
    }

    /// The served model whose plan hashes to `plan_hash`.
    pub fn model_by_hash(&self, plan_hash: &str) -> Option<Arc<ServedModel>> {
        self.models
            .iter()
            .find(|m| m.plan_hash == plan_hash)
            .cloned()
    }

    /// The served model named `name`, or the only one when `name` is
    /// `None`.
    pub fn model_by_name(&self, name: Option<&str>) -> Result<Arc<ServedModel>, String> {
        match name {
            Some(n) => self
                .models
                .iter()
                .find(|m| m.name == n)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "no model named `{}` here (see /v1/models)",
                        n.escape_debug()
                    )
                }),
            None if self.models.len() == 1 => Ok(self.models[0].clone()),
            None => Err(format!(
                "{} models are served: name one with ?model=NAME (see /v1/models)",
                self.models.len()
            )),
        }
    }

    /// Jobs waiting in this server's queue.
    pub fn queued(&self) -> usize {
        lock(&self.queue).len()
    }

    /// Whether the local queue can take another job.
    pub fn has_room(&self) -> bool {
        self.cfg.workers > 0 && self.queued() < self.cfg.queue
    }

    fn enqueue(&self, id: &str) {
        lock(&self.held).insert(id.to_string());
        lock(&self.queue).push_back(id.to_string());
        self.metrics.jobs_queued.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// Starts the workers and the heartbeat/scan loop (the scan runs once
    /// before this returns, so a restarted server has re-queued its jobs).
    pub async fn start(self: &Arc<Self>) -> Result<(), StoreError> {
        self.heartbeat().await?;
        self.scan().await?;
        for _ in 0..self.cfg.workers {
            let app = self.clone();
            tokio::spawn(async move { app.worker_loop().await });
        }
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(app.cfg.poll).await;
                if let Err(e) = app.heartbeat().await {
                    tracing::warn!("heartbeat: {e}");
                }
                if let Err(e) = app.scan().await {
                    tracing::warn!("scan: {e}");
                }
            }
        });
        Ok(())
    }

    async fn heartbeat(&self) -> Result<(), StoreError> {
        let hb = Heartbeat {
            worker: self.cfg.worker_id.clone(),
            instance: self.instance.clone(),
            unix: now_unix(),
        };
        self.store
            .put_json(&paths::worker(&self.cfg.worker_id), &hb)
            .await
    }

    /// Accepts a job whose input is validated: writes input and record,
    /// claims the first attempt (if this server runs jobs) and queues it.
    pub async fn accept(
        &self,
        model: &ServedModel,
        key_id: &str,
        token_sha256: &str,
        input: Bytes,
    ) -> Result<String, StoreError> {
        let id = crate::store::new_id();
        self.store.put_bytes(&paths::job_input(&id), input).await?;
        let now = now_unix();
        let mut meta = JobMeta {
            job_id: id.clone(),
            key_id: key_id.to_string(),
            token_sha256: token_sha256.to_string(),
            plan_hash: model.plan_hash.clone(),
            state: JobState::Queued,
            error: None,
            attempts: 0,
            worker: None,
            instance: None,
            created_unix: now,
            updated_unix: now,
            started_unix: None,
            finished_unix: None,
            progress: JobProgress {
                steps: model.plan.nodes.len(),
                bootstraps_planned: model.plan.bootstraps,
                ..Default::default()
            },
            stats: None,
        };
        let run_here = self.cfg.workers > 0;
        if run_here {
            self.store
                .create(
                    &paths::job_claim(&id, 1),
                    Bytes::from(self.cfg.worker_id.clone()),
                )
                .await?;
            meta.attempts = 1;
            meta.worker = Some(self.cfg.worker_id.clone());
            meta.instance = Some(self.instance.clone());
        }
        self.store.put_json(&paths::job_meta(&id), &meta).await?;
        self.metrics.jobs_accepted.fetch_add(1, Ordering::Relaxed);
        if run_here {
            self.enqueue(&id);
        }
        Ok(id)
    }

    /// One pass over the store's unfinished jobs, taking over those whose
    /// worker stopped (see the module docs).
    pub async fn scan(&self) -> Result<(), StoreError> {
        if self.cfg.workers == 0 {
            return Ok(());
        }
        let ids = self.store.list_ids("jobs").await?;
        for id in ids {
            if lock(&self.finished).contains(&id) || lock(&self.held).contains(&id) {
                continue;
            }
            let Some(meta) = self
                .store
                .get_json::<JobMeta>(&paths::job_meta(&id))
                .await?
            else {
                continue;
            };
            if meta.state.is_final() {
                lock(&self.finished).insert(id);
                continue;
            }
            if self.model_by_hash(&meta.plan_hash).is_none() {
                continue; // a model not served here: its servers run it
            }
            let take = match meta.worker.as_deref() {
                None => self.has_room(),
                Some(w) if w == self.cfg.worker_id => {
                    meta.instance.as_deref() != Some(self.instance.as_str())
                }
                Some(w) => match self.store.get_json::<Heartbeat>(&paths::worker(w)).await {
                    Ok(Some(hb)) => now_unix() - hb.unix > self.cfg.lease.as_secs_f64(),
                    Ok(None) | Err(_) => {
                        now_unix() - meta.updated_unix > self.cfg.lease.as_secs_f64()
                    }
                },
            };
            if take {
                self.take_over(meta).await?;
            }
        }
        Ok(())
    }

    async fn take_over(&self, mut meta: JobMeta) -> Result<(), StoreError> {
        let n = meta.attempts + 1;
        let claim = paths::job_claim(&meta.job_id, n);
        if !self
            .store
            .create(&claim, Bytes::from(self.cfg.worker_id.clone()))
            .await?
        {
            return Ok(()); // another worker took this attempt
        }
        let prev = meta.worker.clone();
        meta.attempts = n;
        meta.worker = Some(self.cfg.worker_id.clone());
        meta.instance = Some(self.instance.clone());
        meta.updated_unix = now_unix();
        if n > self.cfg.max_attempts {
            meta.state = JobState::Failed;
            meta.error = Some(format!(
                "the worker running it stopped (killed or crashed) {} time(s); not retried",
                n - 1
            ));
            meta.finished_unix = Some(now_unix());
            self.store
                .put_json(&paths::job_meta(&meta.job_id), &meta)
                .await?;
            self.metrics.jobs_failed.fetch_add(1, Ordering::Relaxed);
            lock(&self.finished).insert(meta.job_id);
            return Ok(());
        }
        meta.state = JobState::Queued;
        self.store
            .put_json(&paths::job_meta(&meta.job_id), &meta)
            .await?;
        if prev.is_some() {
            tracing::warn!(
                "job {}: taking over from {} (attempt {n})",
                meta.job_id,
                prev.unwrap_or_default()
            );
            self.metrics.jobs_recovered.fetch_add(1, Ordering::Relaxed);
        }
        self.enqueue(&meta.job_id);
        Ok(())
    }

    async fn next_job(&self) -> String {
        loop {
            if let Some(j) = lock(&self.queue).pop_front() {
                return j;
            }
            self.notify.notified().await;
        }
    }

    async fn worker_loop(self: Arc<Self>) {
        loop {
            let id = self.next_job().await;
            self.metrics.jobs_queued.fetch_sub(1, Ordering::Relaxed);
            self.metrics.jobs_running.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.run_job(&id).await {
                tracing::error!("job {id}: {e}");
            }
            self.metrics.jobs_running.fetch_sub(1, Ordering::Relaxed);
            lock(&self.held).remove(&id);
        }
    }

    /// The backend for a key id: from the cache, else streamed from the
    /// store, validated again and cached.
    pub async fn load_key(&self, key_id: &str) -> Result<Arc<Loaded>, String> {
        if let Some(l) = self.cache.get(key_id) {
            return Ok(l);
        }
        let meta: KeyMeta = self
            .store
            .get_json(&paths::key_meta(key_id))
            .await
            .map_err(|e| e.to_string())?
            .ok_or("its keys are gone from the store")?;
        let model = self
            .model_by_hash(&meta.plan_hash)
            .ok_or("its keys are for a model not served here")?;
        let mut stream = self
            .store
            .get_stream(&paths::key_blob(key_id))
            .await
            .map_err(|e| e.to_string())?
            .ok_or("its keys are gone from the store")?;
        let (tx, mut reader) = ChanReader::new(4);
        let pump = tokio::spawn(async move {
            use futures::StreamExt;
            while let Some(c) = stream.next().await {
                let c = c.map_err(std::io::Error::other);
                let stop = c.is_err();
                if tx.send(c).await.is_err() || stop {
                    break;
                }
            }
        });
        let storage = self.cfg.storage.unwrap_or_else(|| {
            runtime::server::default_storage(&model.params, model.prep.plan.params.slots)
        });
        let loaded = tokio::task::spawn_blocking(move || -> Result<Loaded, String> {
            let (eval, boot) = parse_keys(&mut reader, &model.params, &model.needs)?;
            let backend = runtime::server::backend_shared(
                &model.params,
                &model.prep,
                eval,
                boot,
                storage,
                &model.transforms,
            )
            .map_err(|e| e.to_string())?;
            Ok(Loaded {
                backend,
                bytes: meta.bytes,
            })
        })
        .await
        .map_err(|e| format!("loading keys: {e}"))??;
        let _ = pump.await;
        self.metrics.key_loads.fetch_add(1, Ordering::Relaxed);
        let loaded = Arc::new(loaded);
        self.cache.insert(key_id, loaded.clone());
        Ok(loaded)
    }

    async fn run_job(&self, id: &str) -> Result<(), StoreError> {
        let Some(mut meta) = self.store.get_json::<JobMeta>(&paths::job_meta(id)).await? else {
            return Ok(());
        };
        if meta.state.is_final() || meta.instance.as_deref() != Some(self.instance.as_str()) {
            return Ok(());
        }
        let started = now_unix();
        meta.state = JobState::Running;
        meta.started_unix = Some(started);
        meta.updated_unix = started;
        meta.progress.step = 0;
        meta.progress.bootstraps_done = 0;
        self.store.put_json(&paths::job_meta(id), &meta).await?;
        let t0 = Instant::now();
        let result = self.infer(id, &mut meta).await;
        let now = now_unix();
        meta.updated_unix = now;
        meta.finished_unix = Some(now);
        match result {
            Ok((output, mut stats)) => {
                stats.queue_seconds = (started - meta.created_unix).max(0.0);
                self.store.put_bytes(&paths::job_output(id), output).await?;
                meta.state = JobState::Done;
                meta.progress.step = meta.progress.steps;
                meta.progress.bootstraps_done = stats.bootstraps;
                self.metrics.inference_seconds(stats.seconds);
                self.metrics.jobs_done.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "job {id}: done in {:.2} s ({} bootstraps)",
                    t0.elapsed().as_secs_f64(),
                    stats.bootstraps
                );
                meta.stats = Some(stats);
            }
            Err(e) => {
                tracing::warn!("job {id}: failed: {e}");
                meta.state = JobState::Failed;
                meta.error = Some(e);
                self.metrics.jobs_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.store.put_json(&paths::job_meta(id), &meta).await?;
        lock(&self.finished).insert(id.to_string());
        Ok(())
    }

    /// Runs one job's inference; its progress is written to its record
    /// every poll interval while it runs.
    async fn infer(&self, id: &str, meta: &mut JobMeta) -> Result<(Bytes, JobStats), String> {
        let t0 = Instant::now();
        let loaded = self.load_key(&meta.key_id).await?;
        let input = self
            .store
            .get_bytes(&paths::job_input(id))
            .await
            .map_err(|e| e.to_string())?
            .ok_or("its input is gone from the store")?;
        let load_seconds = t0.elapsed().as_secs_f64();
        let model = self
            .model_by_hash(&meta.plan_hash)
            .ok_or("its model is not served here")?;
        let progress = Arc::new(Mutex::new(meta.progress.clone()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flusher = {
            let (progress, stop, store) = (progress.clone(), stop.clone(), self.store.clone());
            let mut m = meta.clone();
            let poll = self.cfg.poll.min(Duration::from_millis(500));
            tokio::spawn(async move {
                let mut last = m.progress.clone();
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(poll).await;
                    let p = lock(&progress).clone();
                    if p != last && !stop.load(Ordering::Relaxed) {
                        m.progress = p.clone();
                        m.updated_unix = now_unix();
                        if let Err(e) = store.put_json(&paths::job_meta(&m.job_id), &m).await {
                            tracing::warn!("job {}: progress: {e}", m.job_id);
                        }
                        last = p;
                    }
                }
            })
        };
        let prog = progress.clone();
        // Bootstraps are counted as they happen (the metric moves during a
        // long inference).
        let metrics = self.metrics.clone();
        let counted = std::sync::atomic::AtomicU64::new(0);
        let r = tokio::task::spawn_blocking(move || -> Result<(Bytes, JobStats), String> {
            let x = runtime::files::EncryptedTensor::read_from(&mut input.as_ref(), &model.params)
                .map_err(|e| format!("input: {e}"))?;
            let (out, stats) = runtime::server::infer(&loaded.backend, &model.prep, &x, &|p| {
                let mut g = lock(&prog);
                g.step = p.step;
                g.steps = p.steps;
                if g.step_name != p.name {
                    g.step_name = p.name.to_string();
                }
                g.bootstraps_done = p.bootstraps_done;
                g.bootstraps_planned = p.bootstraps_planned;
                g.elapsed_seconds = p.elapsed;
                let before = counted.swap(p.bootstraps_done, Ordering::Relaxed);
                if p.bootstraps_done > before {
                    metrics
                        .bootstraps
                        .fetch_add(p.bootstraps_done - before, Ordering::Relaxed);
                }
            })
            .map_err(|e| e.to_string())?;
            let mut buf = Vec::new();
            out.write_to(&model.params, &mut buf)
                .map_err(|e| format!("writing the result: {e}"))?;
            Ok((
                Bytes::from(buf),
                JobStats {
                    seconds: stats.total_seconds,
                    load_seconds,
                    queue_seconds: 0.0,
                    bootstraps: stats.bootstraps,
                    rotations: stats.rotations,
                },
            ))
        })
        .await
        .unwrap_or_else(|e| Err(format!("inference panicked: {e}")));
        stop.store(true, Ordering::Relaxed);
        let _ = flusher.await;
        meta.progress = lock(&progress).clone();
        r
    }
}

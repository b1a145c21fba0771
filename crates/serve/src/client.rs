//! The HTTP client of the service (blocking; what `residue client` and the
//! load test use). Plain HTTP: put the service behind a TLS-terminating
//! proxy on any network you do not trust, and build the client with the
//! `tls` feature to reach it over `https://`.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use thiserror::Error;

use crate::api::{JobCreated, KeyCreated, KeyInfo};
use crate::jobs::JobStatus;
use crate::model::ServerInfo;

/// What a client call can fail with.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("{what}: server answered {status}: {message}")]
    Http {
        /// What was asked.
        what: String,
        /// HTTP status.
        status: u16,
        /// The server's one-line error.
        message: String,
        /// `Retry-After` seconds, if sent.
        retry_after: Option<u64>,
    },
    /// The server could not be reached or the connection failed.
    #[error("{what}: {msg}")]
    Transport {
        /// What was asked.
        what: String,
        /// What failed.
        msg: String,
    },
    /// The answer is not what the API defines.
    #[error("{what}: unexpected answer: {msg}")]
    Protocol {
        /// What was asked.
        what: String,
        /// What is wrong.
        msg: String,
    },
    /// A local file could not be read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A local key file is missing, unreadable or not the key it should
    /// be (nothing of it was sent).
    #[error("{path}: {msg}")]
    KeyFile {
        /// The file.
        path: String,
        /// What is wrong.
        msg: String,
    },
}

impl ClientError {
    /// The HTTP status, if the server answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// How long [`Client::wait`] keeps trying while the server cannot be
/// reached.
pub const RECONNECT_GRACE: Duration = Duration::from_secs(300);

/// Most bytes of a plan or a result the client reads.
pub const MAX_ANSWER_BYTES: u64 = 256 << 20;

/// `path?model=NAME` (the name percent-encoded).
fn pick(path: &str, model: Option<&str>) -> String {
    match model {
        None => path.to_string(),
        Some(m) => {
            let enc: String = m
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{path}?model={enc}")
        }
    }
}

/// A client of one server.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

type Res<T> = Result<T, ClientError>;

impl Client {
    /// A client of the server at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent,
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }

    fn answer(
        what: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        ok: &[u16],
    ) -> Res<Vec<u8>> {
        let mut r = r.map_err(|e| ClientError::Transport {
            what: what.into(),
            msg: e.to_string(),
        })?;
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok());
        let body = r
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| ClientError::Transport {
                what: what.into(),
                msg: format!("reading the answer: {e}"),
            })?;
        if ok.contains(&status) {
            return Ok(body);
        }
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
        Err(ClientError::Http {
            what: what.into(),
            status,
            message,
            retry_after,
        })
    }

    fn json<T: serde::de::DeserializeOwned>(what: &str, b: &[u8]) -> Res<T> {
        serde_json::from_slice(b).map_err(|e| ClientError::Protocol {
            what: what.into(),
            msg: e.to_string(),
        })
    }

    fn get(&self, what: &str, path: &str, token: Option<&str>) -> Res<Vec<u8>> {
        let mut rq = self.agent.get(self.url(path));
        if let Some(t) = token {
            rq = rq.header("Authorization", format!("Bearer {t}"));
        }
        Self::answer(what, rq.call(), &[200])
    }

    /// `GET /health`.
    pub fn health(&self) -> Res<serde_json::Value> {
        Self::json("health", &self.get("health", "/health", None)?)
    }

    /// `GET /metrics` (Prometheus text).
    pub fn metrics(&self) -> Res<String> {
        Ok(String::from_utf8_lossy(&self.get("metrics", "/metrics", None)?).into_owned())
    }

    /// `GET /v1/models`: every served model.
    pub fn models(&self) -> Res<Vec<ServerInfo>> {
        Self::json("models", &self.get("models", "/v1/models", None)?)
    }

    /// `GET /v1/info`: the only model (an error if the server serves
    /// several: use [`Client::info_of`]).
    pub fn info(&self) -> Res<ServerInfo> {
        self.info_of(None)
    }

    /// `GET /v1/info?model=NAME` (`None`: the only model).
    pub fn info_of(&self, model: Option<&str>) -> Res<ServerInfo> {
        Self::json("info", &self.get("info", &pick("/v1/info", model), None)?)
    }

    /// `GET /v1/plan`: the only model's plan (JSON).
    pub fn plan(&self) -> Res<String> {
        self.plan_of(None)
    }

    /// `GET /v1/plan?model=NAME`: a plan's JSON.
    pub fn plan_of(&self, model: Option<&str>) -> Res<String> {
        String::from_utf8(self.get("plan", &pick("/v1/plan", model), None)?).map_err(|e| {
            ClientError::Protocol {
                what: "plan".into(),
                msg: e.to_string(),
            }
        })
    }

    /// `POST /v1/keys` with a raw body (streamed from `body`) for the only
    /// model.
    pub fn upload_keys_from(&self, body: impl Read + 'static) -> Res<KeyCreated> {
        self.upload_keys_from_for(None, body)
    }

    /// `POST /v1/keys?model=NAME` with a raw body (streamed from `body`).
    pub fn upload_keys_from_for(
        &self,
        model: Option<&str>,
        body: impl Read + 'static,
    ) -> Res<KeyCreated> {
        let r = self
            .agent
            .post(self.url(&pick("/v1/keys", model)))
            .content_type("application/octet-stream")
            .send(ureq::SendBody::from_owned_reader(body));
        Self::json("key upload", &Self::answer("key upload", r, &[201])?)
    }

    /// Uploads a key directory's evaluation keys (`eval/eval.keys`, then
    /// `eval/bootstrap.keys` if present), streamed from disk. `secret.key`
    /// is never read, and each file's header is checked before a byte is
    /// sent: a file that is not the key it is named for (a secret key
    /// copied there, an empty or foreign file) is refused here
    /// ([`ClientError::KeyFile`]), not sent to the server.
    pub fn upload_keys(&self, key_dir: &Path) -> Res<KeyCreated> {
        self.upload_keys_for(None, key_dir)
    }

    /// As [`Client::upload_keys`], for the model named `model`.
    pub fn upload_keys_for(&self, model: Option<&str>, key_dir: &Path) -> Res<KeyCreated> {
        use ckks::serialize::ObjectKind as K;
        let eval_path = key_dir.join("eval").join("eval.keys");
        let boot_path = key_dir.join("eval").join("bootstrap.keys");
        let (eval, _) = open_key_file(&eval_path, &[K::EvaluationKeys, K::EvaluationKeysCompact])?;
        let body: Box<dyn Read> = if boot_path.exists() {
            let (boot, _) = open_key_file(&boot_path, &[K::BootstrapKeys])?;
            Box::new(std::io::BufReader::new(eval).chain(std::io::BufReader::new(boot)))
        } else {
            Box::new(std::io::BufReader::new(eval))
        };
        self.upload_keys_from_for(model, body)
    }

    /// `GET /v1/keys/{id}`.
    pub fn key(&self, key_id: &str, token: &str) -> Res<KeyInfo> {
        Self::json(
            "key",
            &self.get("key", &format!("/v1/keys/{key_id}"), Some(token))?,
        )
    }

    /// `POST /v1/keys/{id}/jobs`: submits an encrypted input.
    pub fn submit(&self, key_id: &str, token: &str, input: &[u8]) -> Res<String> {
        let r = self
            .agent
            .post(self.url(&format!("/v1/keys/{key_id}/jobs")))
            .header("Authorization", format!("Bearer {token}"))
            .content_type("application/octet-stream")
            .send(input);
        let c: JobCreated = Self::json("submit", &Self::answer("submit", r, &[202])?)?;
        Ok(c.job_id)
    }

    /// Submits, waiting and retrying while the server answers 429 (at most
    /// `patience` in all).
    pub fn submit_patiently(
        &self,
        key_id: &str,
        token: &str,
        input: &[u8],
        patience: Duration,
    ) -> Res<String> {
        let t0 = std::time::Instant::now();
        loop {
            match self.submit(key_id, token, input) {
                Err(ClientError::Http {
                    status: 429,
                    retry_after,
                    ..
                }) if t0.elapsed() < patience => {
                    let wait = Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 30));
                    std::thread::sleep(wait.min(patience.saturating_sub(t0.elapsed())));
                }
                r => return r,
            }
        }
    }

    /// `GET /v1/jobs/{id}`.
    pub fn job(&self, job_id: &str, token: &str) -> Res<JobStatus> {
        Self::json(
            "job status",
            &self.get("job status", &format!("/v1/jobs/{job_id}"), Some(token))?,
        )
    }

    /// `GET /v1/jobs/{id}/result`: the encrypted result's bytes.
    pub fn result(&self, job_id: &str, token: &str) -> Res<Vec<u8>> {
        self.get("result", &format!("/v1/jobs/{job_id}/result"), Some(token))
    }

    fn delete(&self, what: &str, path: &str, token: &str) -> Res<()> {
        let r = self
            .agent
            .delete(self.url(path))
            .header("Authorization", format!("Bearer {token}"))
            .call();
        Self::answer(what, r, &[204]).map(|_| ())
    }

    /// `DELETE /v1/keys/{id}`: the server forgets the keys.
    pub fn delete_key(&self, key_id: &str, token: &str) -> Res<()> {
        self.delete("delete key", &format!("/v1/keys/{key_id}"), token)
    }

    /// `DELETE /v1/jobs/{id}`: the server forgets a finished job's input
    /// and result.
    pub fn delete_job(&self, job_id: &str, token: &str) -> Res<()> {
        self.delete("delete job", &format!("/v1/jobs/{job_id}"), token)
    }

    /// Polls a job every `every` until it is done or failed (`on_status`
    /// sees each answer), at most `timeout`.
    pub fn wait(
        &self,
        job_id: &str,
        token: &str,
        every: Duration,
        timeout: Duration,
        mut on_status: impl FnMut(&JobStatus),
    ) -> Res<JobStatus> {
        let t0 = std::time::Instant::now();
        let mut down_since: Option<std::time::Instant> = None;
        loop {
            // A server restarting (or a worker behind a load balancer
            // going away) is waited out for a while: the job is in the
            // store and carries on.
            let s = match self.job(job_id, token) {
                Err(ClientError::Transport { .. })
                    if down_since
                        .get_or_insert_with(std::time::Instant::now)
                        .elapsed()
                        < RECONNECT_GRACE.min(timeout) =>
                {
                    std::thread::sleep(every.max(Duration::from_millis(500)));
                    continue;
                }
                r => r?,
            };
            down_since = None;
            on_status(&s);
            if s.state.is_final() {
                return Ok(s);
            }
            if t0.elapsed() > timeout {
                return Err(ClientError::Protocol {
                    what: "job".into(),
                    msg: format!("not finished after {:.0} s", timeout.as_secs_f64()),
                });
            }
            std::thread::sleep(every);
        }
    }
}

/// Opens a key file whose header must be of one of `kinds`: the file
/// (positioned at its start) and its header. Only the header is read.
///
/// Errors ([`ClientError::KeyFile`], naming the file): missing or
/// unreadable, not a `ckks` object, or an object of another kind.
pub fn open_key_file(
    path: &Path,
    kinds: &[ckks::serialize::ObjectKind],
) -> Res<(std::fs::File, ckks::serialize::Header)> {
    use std::io::{Seek, SeekFrom};
    let err = |msg: String| ClientError::KeyFile {
        path: path.display().to_string(),
        msg,
    };
    let mut f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    // magic, version, kind, parameter id, name length, name (at most 64)
    let mut head = Vec::with_capacity(80);
    (&mut f)
        .take(16 + ckks::serialize::MAX_NAME_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| err(e.to_string()))?;
    let h = ckks::serialize::peek_header(&head).map_err(|e| err(e.to_string()))?;
    if !kinds.contains(&h.kind) {
        return Err(err(format!(
            "holds a {}, where the {} belongs: not sent",
            h.kind,
            kinds.first().map_or("key", |k| k.name())
        )));
    }
    f.seek(SeekFrom::Start(0)).map_err(|e| err(e.to_string()))?;
    Ok((f, h))
}

//! The key and job store: records (JSON) and blobs (the project's binary
//! format) in an `object_store`, a local directory by default.
//!
//! Layout (every id is 32 lowercase hex digits, checked before it becomes a
//! path):
//!
//! ```text
//! keys/<key>/meta.json     KeyMeta: owner token hash, parameter set, size
//! keys/<key>/keys.bin      evaluation keys, then bootstrapping keys
//! jobs/<job>/meta.json     JobMeta: state, progress, error, attempts, worker
//! jobs/<job>/input.bin     the encrypted input
//! jobs/<job>/output.bin    the encrypted result (when done)
//! jobs/<job>/claim-<n>     which worker runs attempt n (created once, atomically)
//! workers/<id>.json        a worker's heartbeat
//! ```
//!
//! Records are written whole (a put replaces an object atomically); blobs
//! are written by multipart upload, visible only once complete; a key or
//! job exists once its `meta.json` does, which is written last.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

/// A store of keys and jobs.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    desc: String,
    /// The directory of a local store (whose objects' folders stay behind
    /// when the objects are deleted).
    local_root: Option<std::path::PathBuf>,
}

/// Whether `s` is a valid id (32 lowercase hex digits).
pub fn valid_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A fresh random id (128 bits, hex).
pub fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex(&b)
}

/// Lowercase hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Store {
    /// Opens a store: a local directory (created if missing). An
    /// `s3://bucket/prefix` URL needs the `s3` feature.
    pub fn open(spec: &str) -> Result<Self, StoreError> {
        if spec.contains("://") && !spec.starts_with("file://") {
            return Self::open_url(spec);
        }
        let dir = spec.strip_prefix("file://").unwrap_or(spec);
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Open(format!("cannot create {dir}: {e}")))?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| StoreError::Open(format!("{dir}: {e}")))?;
        Ok(Self {
            inner: Arc::new(fs),
            desc: format!("directory {dir}"),
            local_root: Some(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.into())),
        })
    }

    #[cfg(feature = "s3")]
    fn open_url(spec: &str) -> Result<Self, StoreError> {
        let url = url::Url::parse(spec).map_err(|e| StoreError::Open(format!("{spec}: {e}")))?;
        let (store, prefix) = object_store::parse_url_opts(
            &url,
            std::env::vars().map(|(k, v)| (k.to_lowercase(), v)),
        )
        .map_err(|e| StoreError::Open(format!("{spec}: {e}")))?;
        let inner: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            Arc::from(store)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
        };
        Ok(Self {
            inner,
            desc: spec.to_string(),
            local_root: None,
        })
    }

    #[cfg(not(feature = "s3"))]
    fn open_url(spec: &str) -> Result<Self, StoreError> {
        Err(StoreError::Open(format!(
            "{spec}: only local directories in this build (for object-store URLs rebuild with `cargo build --release -p residue-cli --features s3`)"
        )))
    }

    /// An in-memory store (tests).
    pub fn memory() -> Self {
        Self {
            inner: Arc::new(object_store::memory::InMemory::new()),
            desc: "memory".into(),
            local_root: None,
        }
    }

    /// What this store is (for logs).
    pub fn describe(&self) -> &str {
        &self.desc
    }

    /// The underlying object store.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// Writes a JSON record (replacing it).
    pub async fn put_json<T: Serialize>(&self, path: &Path, v: &T) -> Result<(), StoreError> {
        let b = serde_json::to_vec(v).map_err(|e| StoreError::Record {
            path: path.to_string(),
            msg: e.to_string(),
        })?;
        self.inner.put(path, PutPayload::from(b)).await?;
        Ok(())
    }

    /// Creates an object only if it does not exist: `Ok(true)` if this call
    /// created it, `Ok(false)` if it was there already.
    pub async fn create(&self, path: &Path, b: Bytes) -> Result<bool, StoreError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self.inner.put_opts(path, PutPayload::from(b), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a JSON record; `None` if it does not exist.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &Path,
    ) -> Result<Option<T>, StoreError> {
        match self.get_bytes(path).await? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StoreError::Record {
                    path: path.to_string(),
                    msg: e.to_string(),
                }),
        }
    }

    /// Reads a small object whole; `None` if it does not exist.
    pub async fn get_bytes(&self, path: &Path) -> Result<Option<Bytes>, StoreError> {
        match self.inner.get(path).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a small object whole.
    pub async fn put_bytes(&self, path: &Path, b: Bytes) -> Result<(), StoreError> {
        self.inner.put(path, PutPayload::from(b)).await?;
        Ok(())
    }

    /// Size of an object; `None` if it does not exist.
    pub async fn size(&self, path: &Path) -> Result<Option<u64>, StoreError> {
        match self.inner.head(path).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The ids directly under `prefix` (`jobs`, `keys`): the first path
    /// segment after it that is a valid id.
    pub async fn list_ids(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let p = Path::from(prefix);
        let r = self.inner.list_with_delimiter(Some(&p)).await?;
        Ok(r.common_prefixes
            .iter()
            .filter_map(|c| c.filename().map(str::to_string))
            .filter(|s| valid_id(s))
            .collect())
    }

    /// Streams an object's bytes; `None` if it does not exist.
    pub async fn get_stream(
        &self,
        path: &Path,
    ) -> Result<Option<futures::stream::BoxStream<'static, Result<Bytes, StoreError>>>, StoreError>
    {
        match self.inner.get(path).await {
            Ok(r) => Ok(Some(
                r.into_stream().map(|x| x.map_err(StoreError::from)).boxed(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the folder `dir` (`keys/<id>`, `jobs/<id>`: one record's,
    /// never a shared one) of a local store once its objects are gone: the
    /// file system keeps an empty directory where an object store keeps
    /// nothing. A folder that still holds anything, or none, is left as
    /// it is.
    pub async fn remove_empty_dir(&self, dir: &str) {
        if let Some(root) = &self.local_root {
            let _ = tokio::fs::remove_dir(root.join(dir)).await;
        }
    }

    /// Removes everything under `dir` (one record's folder, `keys/<id>`,
    /// that nobody else writes to): its objects and, in a local store, the
    /// folder itself with any staged part of an unfinished upload.
    pub async fn remove_all(&self, dir: &str) {
        let p = Path::from(dir);
        let mut found: Vec<Path> = Vec::new();
        let mut list = self.inner.list(Some(&p));
        while let Some(Ok(m)) = list.next().await {
            found.push(m.location);
        }
        for o in found {
            let _ = self.delete(&o).await;
        }
        if let Some(root) = &self.local_root {
            let _ = tokio::fs::remove_dir_all(root.join(dir)).await;
        }
    }

    /// Deletes an object (missing is fine).
    pub async fn delete(&self, path: &Path) -> Result<(), StoreError> {
        match self.inner.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Paths of the layout.
pub mod paths {
    use object_store::path::Path;

    /// `keys/<id>`: the folder of a key set's objects.
    pub fn key_dir(id: &str) -> String {
        format!("keys/{id}")
    }
    /// `jobs/<id>`: the folder of a job's objects.
    pub fn job_dir(id: &str) -> String {
        format!("jobs/{id}")
    }
    /// `keys/<id>/meta.json`.
    pub fn key_meta(id: &str) -> Path {
        Path::from(format!("keys/{id}/meta.json"))
    }
    /// `keys/<id>/keys.bin`.
    pub fn key_blob(id: &str) -> Path {
        Path::from(format!("keys/{id}/keys.bin"))
    }
    /// `jobs/<id>/meta.json`.
    pub fn job_meta(id: &str) -> Path {
        Path::from(format!("jobs/{id}/meta.json"))
    }
    /// `jobs/<id>/input.bin`.
    pub fn job_input(id: &str) -> Path {
        Path::from(format!("jobs/{id}/input.bin"))
    }
    /// `jobs/<id>/output.bin`.
    pub fn job_output(id: &str) -> Path {
        Path::from(format!("jobs/{id}/output.bin"))
    }
    /// `jobs/<id>/claim-<n>`.
    pub fn job_claim(id: &str, attempt: u32) -> Path {
        Path::from(format!("jobs/{id}/claim-{attempt}"))
    }
    /// `workers/<id>.json` (the worker id is sanitized by the caller).
    pub fn worker(id: &str) -> Path {
        Path::from(format!("workers/{id}.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_create_once_and_list() {
        let s = Store::memory();
        let id = new_id();
        assert!(valid_id(&id));
        assert!(!valid_id("../../etc/passwd"));
        assert!(!valid_id(&id.to_uppercase()));
        s.put_json(&paths::job_meta(&id), &serde_json::json!({"a": 1}))
            .await
            .unwrap();
        let v: serde_json::Value = s.get_json(&paths::job_meta(&id)).await.unwrap().unwrap();
        assert_eq!(v["a"], 1);
        assert!(
            s.create(&paths::job_claim(&id, 1), Bytes::from("w1"))
                .await
                .unwrap()
        );
        assert!(
            !s.create(&paths::job_claim(&id, 1), Bytes::from("w2"))
                .await
                .unwrap()
        );
        assert_eq!(s.list_ids("jobs").await.unwrap(), vec![id.clone()]);
        assert!(
            s.get_json::<serde_json::Value>(&paths::key_meta(&id))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_discarded_upload_and_deleted_records_leave_no_folders() {
        let dir = std::env::temp_dir().join(format!("residue-store-test-{}", new_id()));
        let s = Store::open(&dir.display().to_string()).unwrap();
        // An upload cut short: a staged part in keys/<id>/.
        let id = new_id();
        let mut up = s
            .object_store()
            .put_multipart(&paths::key_blob(&id))
            .await
            .unwrap();
        up.put_part(PutPayload::from(vec![1u8; 100])).await.unwrap();
        assert!(dir.join(paths::key_dir(&id)).exists());
        s.remove_all(&paths::key_dir(&id)).await;
        assert!(!dir.join(paths::key_dir(&id)).exists());
        drop(up);
        assert!(s.list_ids("keys").await.unwrap().is_empty());
        // A finished record, deleted object by object, then its folder.
        let id = new_id();
        s.put_json(&paths::job_meta(&id), &serde_json::json!({}))
            .await
            .unwrap();
        s.delete(&paths::job_meta(&id)).await.unwrap();
        assert!(dir.join(paths::job_dir(&id)).exists());
        s.remove_empty_dir(&paths::job_dir(&id)).await;
        assert!(!dir.join(paths::job_dir(&id)).exists());
        // A folder that still holds something stays.
        s.put_json(&paths::job_meta(&id), &serde_json::json!({}))
            .await
            .unwrap();
        s.remove_empty_dir(&paths::job_dir(&id)).await;
        assert_eq!(s.list_ids("jobs").await.unwrap(), vec![id]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

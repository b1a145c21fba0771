//! The encrypted-tensor file: the ciphertexts of one input or output with
//! what reading them needs (layout, value scale, level) and the hash of the
//! plan they belong to, so a server refuses an input made for another plan
//! and a client knows how to read a result.
//!
//! Layout: magic `RSDT`, format version (u16 LE: [`VERSION`] for a batched
//! tensor, [`VERSION_UNBATCHED`] for one image, both read), kind (u8: 1 input,
//! 2 output), metadata length (u32 LE, at most [`MAX_META`]) and metadata
//! (JSON), ciphertext count (u32 LE, at most [`crate::prepare::MAX_CTS`]),
//! then per ciphertext its length (u64 LE, at most the size of a
//! ciphertext at the set's top level) and its `ckks::Wire` bytes.

use std::io::{Read, Write};
use std::sync::Arc;

use ckks::{Ciphertext, Params, Wire};
use compiler::layout::Layout;
use serde::{Deserialize, Serialize};

use crate::error::{Result, RuntimeError};
use crate::prepare::MAX_CTS;

/// File magic.
pub const MAGIC: [u8; 4] = *b"RSDT";
/// Format version of batched tensors (`layout.batch > 1`; the metadata
/// then records the batch in its layout and the images it holds). Older
/// builds refuse these files.
pub const VERSION: u16 = 2;
/// Format version of unbatched tensors (the same bytes as before batching).
pub const VERSION_UNBATCHED: u16 = 1;

fn one() -> usize {
    1
}

fn is_one(b: &usize) -> bool {
    *b == 1
}
/// Most bytes of metadata.
pub const MAX_META: usize = 1 << 16;

/// Input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorKind {
    /// An encrypted input, for the server.
    Input,
    /// An encrypted result, for the client.
    Output,
}

/// What an encrypted tensor is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorMeta {
    /// Input or output.
    pub kind: TensorKind,
    /// Hex SHA-256 of the plan ([`crate::prepare::plan_hash`]).
    pub plan_hash: String,
    /// Parameter set name.
    pub params: String,
    /// How the values sit in the slots.
    pub layout: Layout,
    /// Slots hold `value / factor`.
    pub factor: f64,
    /// How many of the `layout.batch` interleaved images are real (the
    /// first ones; the rest are zero). Not written when 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub images: usize,
    /// The key pair it was encrypted under ([`crate::client::key_id`]);
    /// a result carries its input's. Absent in files written before key
    /// ids, and where the encrypting side did not know it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

impl TensorMeta {
    /// Images per ciphertext of its layout.
    pub fn batch(&self) -> usize {
        self.layout.batch
    }
}

/// An encrypted tensor: metadata and ciphertexts.
pub struct EncryptedTensor {
    /// What it is.
    pub meta: TensorMeta,
    /// Its ciphertexts (`meta.layout.cts()` of them).
    pub cts: Vec<Ciphertext>,
}

fn fmt_err(m: impl Into<String>) -> RuntimeError {
    RuntimeError::Format(m.into())
}

impl EncryptedTensor {
    /// Writes the tensor.
    pub fn write_to<W: Write>(&self, params: &Params, w: &mut W) -> Result<()> {
        let meta = serde_json::to_vec(&self.meta).map_err(|e| fmt_err(e.to_string()))?;
        let version = if self.meta.layout.batch > 1 || self.meta.images > 1 {
            VERSION
        } else {
            VERSION_UNBATCHED
        };
        w.write_all(&MAGIC)?;
        w.write_all(&version.to_le_bytes())?;
        w.write_all(&[match self.meta.kind {
            TensorKind::Input => 1,
            TensorKind::Output => 2,
        }])?;
        w.write_all(&(meta.len() as u32).to_le_bytes())?;
        w.write_all(&meta)?;
        w.write_all(&(self.cts.len() as u32).to_le_bytes())?;
        for c in &self.cts {
            let b = c.to_bytes(params)?;
            w.write_all(&(b.len() as u64).to_le_bytes())?;
            w.write_all(&b)?;
        }
        Ok(())
    }

    /// Reads and validates a tensor for `params`: magic, version, kind,
    /// metadata (parameter set, layout within the set's slots, ciphertext
    /// count), every ciphertext (sizes checked before allocation).
    pub fn read_from<R: Read>(r: &mut R, params: &Arc<Params>) -> Result<Self> {
        let mut head = [0u8; 11];
        r.read_exact(&mut head)
            .map_err(|_| fmt_err("not an encrypted tensor: file too short"))?;
        if head[..4] != MAGIC {
            return Err(fmt_err("not an encrypted tensor (bad magic)"));
        }
        let version = u16::from_le_bytes([head[4], head[5]]);
        if version != VERSION && version != VERSION_UNBATCHED {
            return Err(fmt_err(format!(
                "encrypted tensor version {version}, expected {VERSION_UNBATCHED} or {VERSION}"
            )));
        }
        let kind = match head[6] {
            1 => TensorKind::Input,
            2 => TensorKind::Output,
            k => return Err(fmt_err(format!("unknown tensor kind {k}"))),
        };
        let mlen = u32::from_le_bytes([head[7], head[8], head[9], head[10]]) as usize;
        if mlen > MAX_META {
            return Err(fmt_err(format!(
                "metadata of {mlen} bytes (at most {MAX_META})"
            )));
        }
        let mut meta = vec![0u8; mlen];
        r.read_exact(&mut meta)
            .map_err(|_| fmt_err("truncated metadata"))?;
        let meta: TensorMeta =
            serde_json::from_slice(&meta).map_err(|e| fmt_err(format!("bad metadata: {e}")))?;
        if meta.kind != kind {
            return Err(fmt_err("metadata kind differs from the header's"));
        }
        if let Some(k) = &meta.key_id {
            crate::client::check_key_id(k).map_err(|e| fmt_err(format!("metadata: {e}")))?;
        }
        if meta.params != params.name() {
            return Err(fmt_err(format!(
                "tensor is for parameter set `{}`, not `{}`",
                meta.params.escape_debug(),
                params.name()
            )));
        }
        let l = &meta.layout;
        if !l.slots.is_power_of_two()
            || l.slots > params.max_slots()
            || l.base_h == 0
            || l.base_w == 0
            || l.gap == 0
            || l.batch == 0
            || !l.batch.is_power_of_two()
            || l.batch > l.slots
            || l.base_h.saturating_mul(l.base_w) > l.slots / l.batch
            || !(meta.factor.is_finite() && meta.factor > 0.0)
        {
            return Err(fmt_err(
                "metadata layout or factor invalid for this parameter set",
            ));
        }
        if meta.images == 0 || meta.images > l.batch {
            return Err(fmt_err(format!(
                "metadata claims {} images in a batch of {}",
                meta.images, l.batch
            )));
        }
        if version == VERSION_UNBATCHED && l.batch != 1 {
            return Err(fmt_err(format!(
                "a version-{VERSION_UNBATCHED} tensor cannot hold a batch"
            )));
        }
        let want = l.channels.div_ceil(l.channels_per_ct().max(1)).max(1);
        let mut cnt = [0u8; 4];
        r.read_exact(&mut cnt)
            .map_err(|_| fmt_err("truncated: no ciphertext count"))?;
        let count = u32::from_le_bytes(cnt) as usize;
        if count != want || count > MAX_CTS {
            return Err(fmt_err(format!(
                "{count} ciphertexts, the layout needs {want}"
            )));
        }
        let max_len = ckks::serialize::ciphertext_size(params, params.max_level(), 2) as u64;
        let mut cts = Vec::with_capacity(count);
        for i in 0..count {
            let mut lb = [0u8; 8];
            r.read_exact(&mut lb)
                .map_err(|_| fmt_err(format!("truncated before ciphertext {i}")))?;
            let len = u64::from_le_bytes(lb);
            if len > max_len {
                return Err(fmt_err(format!(
                    "ciphertext {i} claims {len} bytes (at most {max_len})"
                )));
            }
            let mut buf = vec![0u8; len as usize];
            r.read_exact(&mut buf)
                .map_err(|_| fmt_err(format!("truncated ciphertext {i}")))?;
            let ct = Ciphertext::from_bytes(&buf, params)
                .map_err(|e| fmt_err(format!("ciphertext {i}: {e}")))?;
            if ct.slots() != l.slots {
                return Err(fmt_err(format!(
                    "ciphertext {i} has {} slots, its layout {}",
                    ct.slots(),
                    l.slots
                )));
            }
            cts.push(ct);
        }
        let mut extra = [0u8; 1];
        if r.read(&mut extra)? != 0 {
            return Err(fmt_err("trailing bytes after the last ciphertext"));
        }
        Ok(Self { meta, cts })
    }

    /// Writes to a file.
    pub fn save(&self, params: &Params, path: &std::path::Path) -> Result<()> {
        let f = std::fs::File::create(path)?;
        let mut w = std::io::BufWriter::new(f);
        self.write_to(params, &mut w)?;
        w.flush()?;
        Ok(())
    }

    /// Reads from a file.
    pub fn load(params: &Arc<Params>, path: &std::path::Path) -> Result<Self> {
        let f = std::fs::File::open(path)?;
        Self::read_from(&mut std::io::BufReader::new(f), params)
    }
}

//! The server's side: inference on an encrypted input with evaluation keys
//! only.

use std::sync::Arc;

use ckks::bootstrap::{BootstrapKeys, BootstrapTransforms, Bootstrapper};
pub use ckks::linear::DiagonalStorage;
use ckks::{EvaluationKeys, Evaluator, Params};

use crate::error::{Result, RuntimeError};
use crate::exec::{Progress, RunStats, execute};
use crate::files::{EncryptedTensor, TensorKind, TensorMeta};
use crate::he::CkksBackend;
use crate::prepare::{Prepared, plan_hash};

/// How an inference server holds bootstrapping's DFT diagonals for plans
/// bootstrapping more than N/8 slots ([`default_storage`]): as integer
/// coefficients. At `n16-boot` (full slots) that is
/// about 2.4 GiB less than NTT form, and a whole CIFAR-shaped ResNet-20
/// inference measured no slower (79.2 s against 79.4 s on two threads;
/// one full-slot bootstrap alone is about 6% slower: docs/benchmarks.md).
pub const DEFAULT_STORAGE: DiagonalStorage = DiagonalStorage::Coefficients;

/// How an inference server holds bootstrapping's diagonals for a plan
/// packing `slots` slots, unless told otherwise: NTT form when the
/// bootstrap refreshes at most N/8 slots, [`DEFAULT_STORAGE`] above.
/// Measured at `n16-boot`, two threads (docs/benchmarks.md, session 12):
/// Dirac + shared-source 20 (8192 slots) 58.2 s in NTT form against 64.4 s
/// as coefficients (14.3 against 12.1 GiB); the CIFAR-shaped ResNet-20
/// (16384 slots) 79.4 against 79.2 s (13.5 against 11.2 GiB).
pub fn default_storage(params: &Params, slots: usize) -> DiagonalStorage {
    if slots <= params.max_slots() / 4 {
        DiagonalStorage::Ntt
    } else {
        DEFAULT_STORAGE
    }
}

/// Builds the CKKS backend from evaluation keys (and bootstrapping keys if
/// the plan bootstraps), bootstrapping's diagonals held as
/// [`default_storage`] says for the plan.
pub fn backend(
    params: &Arc<Params>,
    prep: &Prepared,
    eval: EvaluationKeys,
    boot: Option<BootstrapKeys>,
) -> Result<CkksBackend> {
    let storage = default_storage(params, prep.plan.params.slots);
    backend_with_storage(params, prep, eval, boot, storage)
}

/// [`backend`], with bootstrapping's CoeffsToSlots and SlotsToCoeffs
/// diagonals held as `storage` says ([`DiagonalStorage::Coefficients`]:
/// gigabytes less at N = 2^16, each diagonal expanded at every bootstrap;
/// bit-identical results).
pub fn backend_with_storage(
    params: &Arc<Params>,
    prep: &Prepared,
    eval: EvaluationKeys,
    boot: Option<BootstrapKeys>,
    storage: DiagonalStorage,
) -> Result<CkksBackend> {
    build(params, prep, eval, boot, storage, None)
}

/// Bootstrapping's encoded diagonals for one plan, made with the first
/// client's backend and shared by the backends of every later client's
/// keys ([`backend_shared`]): a server's cached clients then hold their
/// keys, not a copy of the diagonals each (2.5-2.8 GiB in NTT form at
/// `n16-boot`).
#[derive(Default)]
pub struct SharedTransforms(std::sync::Mutex<Option<BootstrapTransforms>>);

impl SharedTransforms {
    /// Bytes of diagonals held (0 before the first backend).
    pub fn bytes(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |t| t.size_bytes())
    }
}

/// [`backend_with_storage`], taking bootstrapping's diagonals from `shared`
/// (or making them there, the first time; a different `storage` than the
/// shared one makes its own). Results are the same as unshared.
pub fn backend_shared(
    params: &Arc<Params>,
    prep: &Prepared,
    eval: EvaluationKeys,
    boot: Option<BootstrapKeys>,
    storage: DiagonalStorage,
    shared: &SharedTransforms,
) -> Result<CkksBackend> {
    build(params, prep, eval, boot, storage, Some(shared))
}

fn build(
    params: &Arc<Params>,
    prep: &Prepared,
    eval: EvaluationKeys,
    boot: Option<BootstrapKeys>,
    storage: DiagonalStorage,
    shared: Option<&SharedTransforms>,
) -> Result<CkksBackend> {
    let needs_boot = prep.plan.nodes.iter().any(|n| n.bootstrap);
    let evaluator = Evaluator::new(params.clone(), Arc::new(eval))?;
    let b = if needs_boot {
        let keys = boot.ok_or_else(|| {
            RuntimeError::Format("the plan bootstraps but no bootstrapping keys were given".into())
        })?;
        let cfg = crate::prepare::bootstrap_config(params, prep.plan.params.slots)?;
        let fresh = |keys| Bootstrapper::with_storage(params.clone(), cfg.clone(), keys, storage);
        Some(match shared {
            None => fresh(keys)?,
            Some(s) => {
                // Held while the first one encodes: two clients at once do
                // not encode twice.
                let mut slot = s.0.lock().unwrap_or_else(|e| e.into_inner());
                match slot.as_ref() {
                    Some(t)
                        if t.storage() == storage
                            && t.slots() == cfg.slots
                            && t.params_id() == params.id =>
                    {
                        Bootstrapper::from_transforms(t, keys)?
                    }
                    _ => {
                        let b = fresh(keys)?;
                        *slot = Some(b.transforms());
                        b
                    }
                }
            }
        })
    } else {
        None
    };
    Ok(CkksBackend::new(evaluator, b, prep.plan.params.slots))
}

/// Runs the plan on an encrypted input; checks that the input was made for
/// this plan.
pub fn infer(
    backend: &CkksBackend,
    prep: &Prepared,
    input: &EncryptedTensor,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<(EncryptedTensor, RunStats)> {
    let params = backend.params();
    if input.meta.kind != TensorKind::Input {
        return Err(RuntimeError::Format(
            "this is a result, not an encrypted input".into(),
        ));
    }
    let want = prep.plan.batch();
    if input.meta.layout.batch != want {
        return Err(RuntimeError::Format(format!(
            "the input holds a batch of {} image(s), the plan packs {want}",
            input.meta.layout.batch
        )));
    }
    let h = plan_hash(&prep.plan);
    if input.meta.plan_hash != h {
        return Err(RuntimeError::Format(format!(
            "the input was encrypted for another plan ({}…, this plan is {}…)",
            input
                .meta
                .plan_hash
                .get(..12)
                .unwrap_or(&input.meta.plan_hash),
            &h[..12]
        )));
    }
    if input.meta.layout != prep.plan.nodes[0].layout_out || input.meta.factor != prep.factors[0] {
        return Err(RuntimeError::Format(
            "the input's layout or scale differs from the plan's".into(),
        ));
    }
    let (out, stats) = execute(backend, prep, input.cts.clone(), progress)?;
    let last = prep.plan.nodes.last().expect("non-empty plan");
    Ok((
        EncryptedTensor {
            meta: TensorMeta {
                kind: TensorKind::Output,
                plan_hash: h,
                params: params.name().to_string(),
                layout: last.layout_out,
                factor: *prep.factors.last().expect("factors"),
                images: input.meta.images,
                key_id: input.meta.key_id.clone(),
            },
            cts: out,
        },
        stats,
    ))
}

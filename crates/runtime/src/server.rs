//! The server's side: inference on an encrypted input with evaluation keys
//! only.

use std::sync::Arc;

use ckks::bootstrap::{BootstrapKeys, Bootstrapper};
use ckks::linear::DiagonalStorage;
use ckks::{EvaluationKeys, Evaluator, Params};

use crate::error::{Result, RuntimeError};
use crate::exec::{Progress, RunStats, execute};
use crate::files::{EncryptedTensor, TensorKind, TensorMeta};
use crate::he::CkksBackend;
use crate::prepare::{Prepared, plan_hash};

/// Builds the CKKS backend from evaluation keys (and bootstrapping keys if
/// the plan bootstraps), bootstrapping's diagonals in NTT form.
pub fn backend(
    params: &Arc<Params>,
    prep: &Prepared,
    eval: EvaluationKeys,
    boot: Option<BootstrapKeys>,
) -> Result<CkksBackend> {
    backend_with_storage(params, prep, eval, boot, DiagonalStorage::Ntt)
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
    let needs_boot = prep.plan.nodes.iter().any(|n| n.bootstrap);
    let evaluator = Evaluator::new(params.clone(), Arc::new(eval))?;
    let b = if needs_boot {
        let keys = boot.ok_or_else(|| {
            RuntimeError::Format("the plan bootstraps but no bootstrapping keys were given".into())
        })?;
        let cfg = crate::prepare::bootstrap_config(params, prep.plan.params.slots)?;
        Some(Bootstrapper::with_storage(
            params.clone(),
            cfg,
            keys,
            storage,
        )?)
    } else {
        None
    };
    Ok(CkksBackend::new(evaluator, b, prep.plan.params.slots))
}

/// Bootstrapping's diagonal storage for a server that asks for low memory
/// (`--low-memory`: integer coefficients) or not (NTT form).
pub fn storage(low_memory: bool) -> DiagonalStorage {
    if low_memory {
        DiagonalStorage::Coefficients
    } else {
        DiagonalStorage::Ntt
    }
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

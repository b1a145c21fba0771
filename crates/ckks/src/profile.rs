//! Opt-in kernel profile: time and calls spent in each key-switching and
//! ring kernel, summed over threads (so, CPU time while the threads are
//! busy; with one thread, wall time).
//!
//! Off by default; when off, a span costs one relaxed atomic load. Counters
//! are inclusive and nest: [`Kernel::Ntt`] time spent inside ModUp counts in
//! both [`Kernel::ModUp`] and [`Kernel::Ntt`]. `residue bench ckks --ops
//! bootstrap --profile` resets the counters before each bootstrap stage
//! (ModRaise, CoeffsToSlots, EvalMod, SlotsToCoeffs) and reads them after.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// A profiled kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Key switching's ModUp: the digit decomposition extended to Q_l*P
    /// (its INTT, basis conversions and NTTs).
    ModUp,
    /// Key switching's inner product of the digits with the key (Q_l*P, NTT form).
    InnerProduct,
    /// Key switching's ModDown: division by P (its INTT, conversion, NTT).
    ModDown,
    /// Automorphisms X -> X^g as NTT-domain permutations.
    Automorphism,
    /// Ciphertext-ciphertext tensor product (before relinearization).
    Tensor,
    /// Rescale by the last prime (its INTT, NTTs and the division).
    Rescale,
    /// Plaintext-ciphertext products (diagonals in linear transforms, masks).
    PlainMul,
    /// Forward NTTs of one limb, wherever they run.
    Ntt,
    /// Inverse NTTs of one limb, wherever they run.
    Intt,
    /// Exact RNS basis conversions (inside ModUp and ModDown).
    BasisConversion,
}

impl Kernel {
    /// Every kernel, in report order.
    pub const ALL: [Kernel; 10] = [
        Kernel::ModUp,
        Kernel::InnerProduct,
        Kernel::ModDown,
        Kernel::Automorphism,
        Kernel::Tensor,
        Kernel::Rescale,
        Kernel::PlainMul,
        Kernel::Ntt,
        Kernel::Intt,
        Kernel::BasisConversion,
    ];

    /// Stable name for reports (JSON field names).
    pub fn name(self) -> &'static str {
        match self {
            Kernel::ModUp => "mod_up",
            Kernel::InnerProduct => "inner_product",
            Kernel::ModDown => "mod_down",
            Kernel::Automorphism => "automorphism",
            Kernel::Tensor => "tensor",
            Kernel::Rescale => "rescale",
            Kernel::PlainMul => "plain_mul",
            Kernel::Ntt => "ntt",
            Kernel::Intt => "intt",
            Kernel::BasisConversion => "basis_conversion",
        }
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; 10] = [const { AtomicU64::new(0) }; 10];
static CALLS: [AtomicU64; 10] = [const { AtomicU64::new(0) }; 10];

/// Turns the profile on or off for the whole process.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether spans are being recorded.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Zeroes every counter.
pub fn reset() {
    for (n, c) in NANOS.iter().zip(&CALLS) {
        n.store(0, Ordering::Relaxed);
        c.store(0, Ordering::Relaxed);
    }
}

/// (kernel, milliseconds summed over threads, calls) for every kernel since
/// the last [`reset`].
pub fn snapshot() -> Vec<(Kernel, f64, u64)> {
    Kernel::ALL
        .iter()
        .map(|&k| {
            let i = k as usize;
            (
                k,
                NANOS[i].load(Ordering::Relaxed) as f64 / 1e6,
                CALLS[i].load(Ordering::Relaxed),
            )
        })
        .collect()
}

/// Records the time from its creation to its drop under `kernel` (when the
/// profile is on).
pub(crate) struct Span {
    kernel: Kernel,
    start: Option<Instant>,
}

/// Starts a span for `kernel`.
#[inline]
pub(crate) fn span(kernel: Kernel) -> Span {
    Span {
        kernel,
        start: enabled().then(Instant::now),
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(s) = self.start {
            let i = self.kernel as usize;
            NANOS[i].fetch_add(s.elapsed().as_nanos() as u64, Ordering::Relaxed);
            CALLS[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_count_only_when_enabled() {
        // Counters are process-wide: look only at a kernel no other test
        // in this module records.
        let calls = |k: Kernel| snapshot().iter().find(|s| s.0 == k).map(|s| s.2);
        let before = calls(Kernel::Tensor).unwrap();
        drop(span(Kernel::Tensor));
        if !enabled() {
            assert_eq!(calls(Kernel::Tensor).unwrap(), before);
        }
        set_enabled(true);
        drop(span(Kernel::Tensor));
        assert!(calls(Kernel::Tensor).unwrap() > before);
        set_enabled(false);
    }
}

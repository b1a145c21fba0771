//! What the sparse-slot bootstrap's CoeffsToSlots and SlotsToCoeffs
//! transforms cost, counted from their plans (no keys): for every packed
//! slot count, at most what the full-slot ones cost (issue 11).

mod common;
use ckks::bootstrap::{self, BootstrapConfig, Bootstrapper, TransformCost};
use ckks::*;
use common::{precision_bits, values};
use std::sync::Arc;

/// Key switches times the Q limbs they run on, and diagonal bytes, of the
/// transforms of one stage (`"c2s"` or `"s2c"`).
fn stage_cost(costs: &[TransformCost], stage: &str) -> (usize, usize) {
    costs
        .iter()
        .filter(|c| c.stage == stage)
        .fold((0, 0), |(k, b), c| {
            (k + c.key_switches() * (c.level + 1), b + c.bytes)
        })
}

/// Bytes of the Galois keys keygen makes for `cfg`.
fn key_bytes(p: &Params, cfg: &BootstrapConfig) -> usize {
    bootstrap::galois_levels(p, cfg)
        .iter()
        .map(|&(_, l)| 2 * p.dnum_at(l) * (l + 1 + p.p.len()) * p.n * 8)
        .sum()
}

/// For every packed sparse slot count of the N = 2^12 test set and of
/// n16-boot (plans only: no keys, no encoding), CoeffsToSlots and
/// SlotsToCoeffs each make no more key switches weighted by level and hold
/// no more diagonal bytes than at full slots, the CoeffsToSlots stage
/// stays within the full-slot one with the trace and the packing rotation
/// counted, and the Galois keys take no more memory. Before the stage
/// groups were chosen per slot count ([`bootstrap::dft_groups`]), the
/// 16384-slot SlotsToCoeffs of n16-boot made 23 + 14 + 7 key switches
/// (weighted 544) on 2.96 GB of diagonals in all, against 14 + 14 + 11
/// (471) and 2.73 GB at full slots.
#[test]
fn sparse_transforms_cost_no_more_than_full_slot() {
    for name in ["insecure-boot-n12", "n16-boot"] {
        let p = Params::named(name).unwrap();
        let full = bootstrap::config_for(&p).unwrap();
        let max = p.max_slots();
        let fc = bootstrap::transform_costs(&p, &full);
        let (fc2s, fs2c) = (stage_cost(&fc, "c2s"), stage_cost(&fc, "s2c"));
        let extra = |cfg: &BootstrapConfig| -> usize {
            bootstrap::other_key_switches(&p, cfg)
                .iter()
                .map(|&(_, l)| l + 1)
                .sum()
        };
        let fkeys = key_bytes(&p, &full);
        eprintln!("{name} full: c2s {fc2s:?} s2c {fs2c:?}, keys {fkeys}");
        let mut slots = max / 2;
        while slots >= bootstrap::min_slots(&full) {
            let cfg = full.clone().with_slots(slots, max);
            let c = bootstrap::transform_costs(&p, &cfg);
            for t in &c {
                eprintln!(
                    "  {slots}: {} level {} {} stages, {} diagonals, {} babies + {} giants, {} bytes",
                    t.stage, t.level, t.stages, t.diagonals, t.babies, t.giants, t.bytes
                );
            }
            let (c2s, s2c) = (stage_cost(&c, "c2s"), stage_cost(&c, "s2c"));
            let keys = key_bytes(&p, &cfg);
            eprintln!("{name} {slots}: c2s {c2s:?} s2c {s2c:?}, keys {keys}");
            assert!(
                c2s.0 <= fc2s.0 && c2s.1 <= fc2s.1,
                "{name} {slots}: c2s {c2s:?} vs {fc2s:?}"
            );
            assert!(
                s2c.0 <= fs2c.0 && s2c.1 <= fs2c.1,
                "{name} {slots}: s2c {s2c:?} vs {fs2c:?}"
            );
            assert!(
                c2s.0 + extra(&cfg) <= fc2s.0 + extra(&full),
                "{name} {slots}: CoeffsToSlots with trace and packing"
            );
            assert!(keys <= fkeys, "{name} {slots}: keys {keys} vs {fkeys}");
            slots /= 2;
        }
    }
}

/// The counted bytes are what a bootstrapper encodes (CoeffsToSlots, and
/// SlotsToCoeffs once used), and a 1024-slot bootstrap of the N = 2^12 set
/// (packed, with groups [`bootstrap::dft_groups`] chose) keeps 19 bits and
/// lands at `levels_after`.
#[test]
fn counted_bytes_are_what_the_bootstrapper_encodes() {
    let p = Params::named("insecure-boot-n12").unwrap();
    let max = p.max_slots();
    for slots in [max, max / 2] {
        let cfg = bootstrap::config_for(&p).unwrap().with_slots(slots, max);
        let counted: usize = bootstrap::transform_costs(&p, &cfg)
            .iter()
            .map(|c| c.bytes)
            .sum();
        let mut kg = KeyGenerator::with_seed(p.clone(), [5u8; 32]);
        let sk = kg.secret_key();
        let keys = kg.bootstrap_keys(&sk, &cfg, &[]);
        let boot = Bootstrapper::new(p.clone(), cfg, keys.boot).unwrap();
        let eval = Evaluator::new(p.clone(), Arc::new(keys.eval)).unwrap();
        let enc = Encoder::new(p.clone());
        let z = values(slots, 7);
        let pt = enc.encode(&z, 0, p.default_scale(), slots).unwrap();
        let ct = Encryptor::new(p.clone()).encrypt_sk(&sk, &pt).unwrap();
        let out = boot.bootstrap(&eval, &ct).unwrap();
        assert_eq!(boot.transform_bytes(), counted, "{slots} slots");
        assert_eq!((out.slots(), out.level()), (slots, boot.levels_after()));
        let got = enc.decode(&Decryptor::new(&sk).decrypt(&out).unwrap());
        let bits = precision_bits(&got, &z);
        eprintln!("{slots} slots: {bits:.1} bits, {counted} diagonal bytes");
        assert!(bits > 19.0, "{slots} slots: {bits} bits");
    }
}

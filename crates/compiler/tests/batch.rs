//! Batching: `B` images interleaved in every ciphertext cost what one image
//! costs in `slots / B` slots (same diagonals, rotation steps times `B`),
//! and the compile option picks and records the batch.

use std::collections::BTreeSet;

use compiler::CompileError;
use compiler::layout::{Layout, conv_taps, linear_diagonals, signed_step};
use compiler::lower::{lower, lower_batched};
use compiler::params::ParamSet;
use compiler::plan::{Batch, CompileOptions, CompiledPlan, PLAN_VERSION, compile};
use nn::zoo::{ZooConfig, build_random};

fn net(name: &str) -> nn::Graph {
    let mut cfg = ZooConfig::from_name(name, 1, [8, 8], 10).unwrap();
    cfg.width = 0.25;
    build_random(&cfg, 5).unwrap()
}

#[test]
fn batched_lowering_costs_what_one_image_costs() {
    let w = (0.1, 1.0);
    for name in ["resnet8", "dirac-shared8"] {
        let g = net(name);
        let p = lower(&g, 1 << 15, w).unwrap().slots_needed();
        let one = lower(&g, p, w).unwrap();
        for b in [2usize, 4, 8] {
            let many = lower_batched(&g, p * b, b, w).unwrap();
            assert_eq!(many.batch(), b);
            assert_eq!(many.slots_needed(), p * b);
            assert_eq!(one.level, many.level, "{name}");
            for (l1, lb) in one.layers.iter().zip(&many.layers) {
                assert_eq!(l1.cost.counts, lb.cost.counts, "{name} {}", l1.name);
                assert_eq!(l1.cost.depth, lb.cost.depth);
                let scaled: BTreeSet<i64> = l1
                    .cost
                    .rotation_steps
                    .iter()
                    .map(|&s| signed_step(s * b as i64, p * b))
                    .collect();
                assert_eq!(scaled, lb.cost.rotation_steps, "{name} {}", l1.name);
                assert_eq!(lb.layout_out.batch, b);
                assert_eq!(lb.layout_out.block(), p);
            }
        }
    }
}

#[test]
fn batched_diagonals_repeat_each_value_per_image() {
    let lin1 = Layout::image(3, 6, 6, 256).unwrap();
    let lout1 = lin1.strided(4, 3, 3, 2).unwrap();
    let taps: Vec<_> = conv_taps(4, 3, 3, 3, 1, 1, |_, _, _, _| true)
        .into_iter()
        .enumerate()
        .map(|(k, t)| (t, (k as f64 * 0.37).sin()))
        .collect();
    let b = 4usize;
    let linb = Layout::image(3, 6, 6, 256 * b)
        .unwrap()
        .with_batch(b)
        .unwrap();
    let loutb = linb.strided(4, 3, 3, 2).unwrap();
    let d1 = linear_diagonals(&lin1, &lout1, 2, &taps);
    let db = linear_diagonals(&linb, &loutb, 2, &taps);
    assert_eq!(d1.len(), db.len());
    for (x, y) in d1.iter().zip(&db) {
        assert_eq!(y.offset, x.offset * b as i64);
        for (s, v) in x.values.iter().enumerate() {
            for img in 0..b {
                assert_eq!(y.values[s * b + img], *v);
            }
        }
    }
    // Image `b` sits at `slot + b`.
    assert_eq!(linb.slot_of(3, 2, 1, 4), (0, linb.slot(2, 1, 4).1 + 3));
    assert_eq!(linb.slot(2, 1, 4).1, lin1.slot(2, 1, 4).1 * b as i64);
    // Blocks too small for the grid, or a batch that is not a power of two.
    assert!(lin1.with_batch(8).is_err());
    assert!(lin1.with_batch(3).is_err());
    assert!(lin1.with_batch(0).is_err());
}

#[test]
fn the_batch_option_is_chosen_recorded_and_checked() {
    let sets = ParamSet::defaults();
    let g = net("dirac-shared8");
    let opts = CompileOptions {
        attribute_skips: false,
        ..CompileOptions::default()
    };
    let (p1, r1) = compile(&g, &sets, &opts).unwrap();
    // Unbatched plans are written as before: version 2, no batch field.
    assert_eq!(p1.version, 2);
    assert_eq!(p1.batch(), 1);
    assert!(!p1.to_json().contains("batch"));
    assert_eq!(r1.batch, 1);

    let auto = CompileOptions {
        batch: Batch::Auto,
        ..opts.clone()
    };
    let (pa, ra) = compile(&g, &sets, &auto).unwrap();
    let slots = sets[0].slots();
    let need = lower(&nn::transform::fold_all(&g).unwrap(), slots, (0.1, 1.0))
        .unwrap()
        .slots_needed();
    assert_eq!(pa.batch(), slots / need);
    assert!(pa.batch() > 1);
    assert_eq!(pa.version, PLAN_VERSION);
    assert_eq!(pa.params.slots, slots);
    assert_eq!(ra.batch, pa.batch());
    assert!(
        (ra.estimated_seconds_per_image * pa.batch() as f64 - ra.estimated_seconds).abs() < 1e-9
    );
    assert!(ra.to_text().contains("per image amortized"));
    // Same bootstraps as one image (rotations are those of one image in
    // `slots / B` slots: `batched_lowering_costs_what_one_image_costs`).
    assert_eq!(ra.bootstraps, r1.bootstraps);
    assert!(pa.galois_steps.iter().all(|s| s % pa.batch() as i64 == 0));
    for n in &pa.nodes {
        assert_eq!(n.layout_in.batch, pa.batch());
        assert_eq!(n.layout_out.batch, pa.batch());
    }
    let back = CompiledPlan::from_json(&pa.to_json()).unwrap();
    assert_eq!(back, pa);
    // A batched plan claiming the unbatched version is refused.
    let mut old = pa.clone();
    old.version = 2;
    let e = CompiledPlan::from_json(&old.to_json()).unwrap_err();
    assert!(e.to_string().contains("version"), "{e}");

    // A fixed batch that fits; one more than fits one ciphertext, whose
    // larger maps spill over several (more bootstraps per inference, fewer
    // per image); and one whose images' blocks cannot hold the grid.
    let two = CompileOptions {
        batch: Batch::Fixed(2),
        ..opts.clone()
    };
    let (p2, _) = compile(&g, &sets, &two).unwrap();
    assert_eq!(p2.batch(), 2);
    let spill = CompileOptions {
        batch: Batch::Fixed(pa.batch() * 2),
        ..opts.clone()
    };
    let (ps, rs) = compile(&g, &sets, &spill).unwrap();
    assert_eq!(ps.batch(), pa.batch() * 2);
    assert!(ps.nodes.iter().any(|n| n.layout_out.cts() > 1));
    assert!(ps.bootstraps >= pa.bootstraps);
    assert!(rs.estimated_seconds > ra.estimated_seconds);
    assert!(rs.estimated_seconds_per_image < ra.estimated_seconds_per_image);
    let too_many = CompileOptions {
        batch: Batch::Fixed(slots),
        ..opts.clone()
    };
    let e = compile(&g, &sets, &too_many).unwrap_err();
    assert!(matches!(e, CompileError::Batch(_)), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");
    // The message names the largest batch that does compile.
    let most: usize = e
        .to_string()
        .split("at most ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{e}"));
    assert!(most >= ps.batch(), "{e}");
    let at_most = CompileOptions {
        batch: Batch::Fixed(most),
        ..opts.clone()
    };
    assert!(compile(&g, &sets, &at_most).is_ok(), "{e}");
    let above = CompileOptions {
        batch: Batch::Fixed(most * 2),
        ..opts.clone()
    };
    assert!(compile(&g, &sets, &above).is_err(), "{e}");
    assert!("3".parse::<Batch>().is_err());
    assert!("x".parse::<Batch>().is_err());
    assert_eq!("auto".parse::<Batch>().unwrap(), Batch::Auto);
    assert_eq!("4".parse::<Batch>().unwrap(), Batch::Fixed(4));
}

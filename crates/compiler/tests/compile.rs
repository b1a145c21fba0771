//! End to end on the zoo: lowering, placement, plan and report.

use compiler::cost::{CkksOp, CostTable};
use compiler::lower::LayerOp;
use compiler::params::ParamSet;
use compiler::placement::Strategy;
use compiler::plan::{CompileOptions, CompiledPlan, Goal, compile};
use compiler::{LevelOpKind, SkipKind};
use nn::zoo::{ZooConfig, build_random};

fn zoo(name: &str) -> nn::Graph {
    let cfg = ZooConfig::from_name(name, 3, [32, 32], 10).unwrap();
    build_random(&cfg, 3).unwrap()
}

#[test]
fn shared_source_saves_a_quarter_of_the_bootstraps() {
    // The paper's setting: every activation a two-level polynomial (with
    // completed squares, `quadratics_after_a_linear_layer_take_one_level`).
    let sets = ParamSet::defaults();
    let opts = CompileOptions {
        fuse_squares: false,
        ..CompileOptions::default()
    };
    let (_, r) = compile(&zoo("resnet20"), &sets, &opts).unwrap();
    let (_, d) = compile(&zoo("dirac20"), &sets, &opts).unwrap();
    let (_, s) = compile(&zoo("dirac-shared20"), &sets, &opts).unwrap();
    assert_eq!(r.structure, "resnet");
    assert_eq!(d.structure, "chain");
    assert_eq!(s.structure, "shared-source");
    assert!(
        s.bootstraps * 4 <= r.bootstraps * 3,
        "shared {} vs resnet {}",
        s.bootstraps,
        r.bootstraps
    );
    assert!(s.estimated_seconds < r.estimated_seconds);
    // Every ResNet skip is reported; together they cost bootstraps.
    assert_eq!(r.skips.len(), 9);
    assert!(r.skips.iter().all(|k| k.kind == SkipKind::MidTerm));
    assert!(r.skips.iter().map(|k| k.bootstraps).sum::<i64>() > 0);
    assert!(s.skips.iter().all(|k| k.kind == SkipKind::SharedSource));
    assert!(d.skips.is_empty());
    // All ResNet skips together cost what separates it from the chain.
    let total = r.skips_total.as_ref().unwrap();
    assert_eq!(total.bootstraps, r.bootstraps as i64 - d.bootstraps as i64);
    assert!(d.skips_total.is_none());
    assert_eq!(s.skips_total.as_ref().unwrap().bootstraps, 0);
}

#[test]
fn plan_is_consistent_and_round_trips() {
    let sets = ParamSet::defaults();
    let (plan, report) = compile(&zoo("resnet20"), &sets, &CompileOptions::default()).unwrap();
    let back = CompiledPlan::from_json(&plan.to_json()).unwrap();
    assert_eq!(back, plan);
    assert_eq!(plan.bootstraps, report.bootstraps);
    assert_eq!(plan.nodes[0].kind, LevelOpKind::Input);
    for (v, n) in plan.nodes.iter().enumerate() {
        assert!(n.level_in >= n.depth, "{}", n.name);
        assert_eq!(n.level_out, n.level_in - n.depth);
        for &u in &n.inputs {
            assert!(u < v);
            // The runtime only ever drops levels.
            assert!(
                plan.nodes[u].level_after >= n.level_in,
                "{} <- {}",
                n.name,
                plan.nodes[u].name
            );
        }
        if n.kind == LevelOpKind::Linear {
            assert_eq!(n.depth, 1, "one level per linear layer: {}", n.name);
        }
        for s in &n.rotation_steps {
            assert!(plan.galois_steps.binary_search(s).is_ok());
        }
    }
    assert!(!plan.galois_steps.is_empty());
    assert!(
        plan.galois_steps
            .iter()
            .all(|&s| s != 0 && s.unsigned_abs() <= plan.params.slots as u64 / 2)
    );
    // All of ResNet-20 fits one ciphertext per value at N = 2^16.
    assert!(plan.nodes.iter().all(|n| n.layout_out.cts() == 1));
    // Stride-2 stages multiplex channels: gap 1, 2, 4.
    let gaps: std::collections::BTreeSet<usize> =
        plan.nodes.iter().map(|n| n.layout_out.gap).collect();
    assert!(gaps.contains(&2) && gaps.contains(&4));
}

#[test]
fn report_json_has_the_promised_fields() {
    let sets = ParamSet::defaults();
    let (_, report) = compile(&zoo("dirac-shared20"), &sets, &CompileOptions::default()).unwrap();
    let v = serde_json::to_value(&report).unwrap();
    for k in [
        "params",
        "bootstraps",
        "rotations",
        "key_switches",
        "estimated_seconds",
        "galois_key_bytes",
        "skips",
        "layers",
        "rescales",
        "plaintext_multiplies",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    let skip = &v["skips"][0];
    assert!(skip.get("bootstraps").is_some() && skip.get("seconds").is_some());
    assert!(report.galois_key_bytes > 0);
}

#[test]
fn greedy_never_beats_optimal_and_auto_picks_the_fastest() {
    let sets = ParamSet::defaults();
    let g = zoo("resnet20");
    let opt = CompileOptions {
        goal: Goal::Count,
        ..CompileOptions::default()
    };
    let greedy = CompileOptions {
        strategy: Strategy::Greedy,
        ..opt.clone()
    };
    let (_, o) = compile(&g, &sets, &opt).unwrap();
    let (_, gr) = compile(&g, &sets, &greedy).unwrap();
    assert!(gr.bootstraps >= o.bootstraps);
    let base = o.greedy_baseline.as_ref().unwrap();
    assert_eq!(base.bootstraps, gr.bootstraps);
    assert!(gr.greedy_baseline.is_none());
    let auto = CompileOptions {
        params: None,
        ..CompileOptions::default()
    };
    let (_, a) = compile(&g, &sets, &auto).unwrap();
    assert_eq!(a.candidates.len(), sets.len());
    let best = a
        .candidates
        .iter()
        .filter_map(|c| c.estimated_seconds)
        .fold(f64::INFINITY, f64::min);
    assert!((a.estimated_seconds - best).abs() < 1e-9);
}

#[test]
fn calibration_rescales_the_table() {
    let mut t = CostTable::estimate(16, 9, 5, 20.0);
    let json = r#"[{"op":"rotate","threads":1,"median_ms":500.0},
                   {"op":"bootstrap","threads":1,"median_ms":12000.0},
                   {"op":"bogus","threads":1,"median_ms":1.0}]"#;
    let recs = CostTable::parse_bench(json).unwrap();
    assert_eq!(t.calibrate(&recs, None), 2);
    assert!(t.source.starts_with("calibrated"));
    assert!((t.at(CkksOp::Rotate, 9) - 0.5).abs() < 1e-12);
    assert!(t.at(CkksOp::Rotate, 0) < 0.5);
    assert!((t.at(CkksOp::Bootstrap, 3) - 12.0).abs() < 1e-12);
    assert!(CostTable::parse_bench("{\"x\":1}").is_err());
    let wrapped = r#"{"records":[{"op":"add","threads":4,"median_ms":0.5},
                                  {"op":"add","threads":1,"median_ms":2.0}]}"#;
    let recs = CostTable::parse_bench(wrapped).unwrap();
    assert_eq!(recs.len(), 2);
    // The most threads win unless asked otherwise.
    t.calibrate(&recs, None);
    assert!((t.at(CkksOp::Add, 9) - 0.0005).abs() < 1e-12);
    t.calibrate(&recs, Some(1));
    assert!((t.at(CkksOp::Add, 9) - 0.002).abs() < 1e-12);
}

/// Records at several levels (`residue bench ckks --levels`): the curve
/// passes through each, is linear in the level between them, and keeps the
/// estimate's shape below the lowest and above the highest.
#[test]
fn calibration_interpolates_between_measured_levels() {
    let mut t = CostTable::estimate(16, 24, 5, 20.0);
    let shape = t.clone();
    let json = r#"[{"op":"rotate","threads":1,"median_ms":30.0,"level":3},
                   {"op":"rotate","threads":1,"median_ms":70.0,"level":7},
                   {"op":"rotate","threads":1,"median_ms":160.0},
                   {"op":"rotate","threads":2,"median_ms":1.0,"level":5}]"#;
    let recs = CostTable::parse_bench(json).unwrap();
    assert_eq!(t.calibrate(&recs, Some(1)), 1);
    let at = |l| t.at(CkksOp::Rotate, l) * 1e3;
    assert!((at(3) - 30.0).abs() < 1e-9 && (at(7) - 70.0).abs() < 1e-9);
    assert!((at(24) - 160.0).abs() < 1e-9, "the top-level record");
    assert!(
        (at(5) - 50.0).abs() < 1e-9,
        "halfway between levels 3 and 7"
    );
    let want = 30.0 * shape.at(CkksOp::Rotate, 1) / shape.at(CkksOp::Rotate, 3);
    assert!((at(1) - want).abs() < 1e-9, "below: the estimate's shape");
    for l in 1..24 {
        assert!(at(l) < at(l + 1), "increasing at {l}");
    }
    // Other ops are untouched.
    assert_eq!(t.at(CkksOp::Add, 4), shape.at(CkksOp::Add, 4));
}

/// A linear step encodes real diagonals at its plan's slot count and
/// multiplies-accumulates in place: `encode_real` and `mul_plain_acc`
/// records price encodes and plaintext products when a file has them
/// (else `encode` and `mul_plain`), and encodes for a plan of fewer slots
/// come from the records of the fewest measured slots that hold it.
#[test]
fn calibration_prices_what_a_linear_step_runs() {
    let mut t = CostTable::estimate(16, 24, 5, 20.0);
    let json = r#"[{"op":"encode","threads":1,"median_ms":9.0},
                   {"op":"encode_real","threads":1,"median_ms":6.0,"slots":32768},
                   {"op":"encode_real","threads":1,"median_ms":4.0,"slots":8192},
                   {"op":"mul_plain","threads":1,"median_ms":2.0},
                   {"op":"mul_plain_acc","threads":1,"median_ms":1.5}]"#;
    assert_eq!(
        t.calibrate(&CostTable::parse_bench(json).unwrap(), Some(1)),
        2
    );
    let ms = |t: &CostTable, op| t.at(op, 24) * 1e3;
    assert!(
        (ms(&t, CkksOp::Encode) - 6.0).abs() < 1e-9,
        "encode_real, most slots"
    );
    assert!(
        (ms(&t, CkksOp::MulPlain) - 1.5).abs() < 1e-9,
        "mul_plain_acc"
    );
    for (slots, want) in [(4096, 4.0), (8192, 4.0), (16384, 6.0), (32768, 6.0)] {
        let s = t.for_slots(slots);
        assert!(
            (ms(&s, CkksOp::Encode) - want).abs() < 1e-9,
            "{slots} slots"
        );
        assert_eq!(ms(&s, CkksOp::Rotate), ms(&t, CkksOp::Rotate));
    }
    // Without the faithful records, the plain ones.
    let mut u = CostTable::estimate(16, 24, 5, 20.0);
    let json = r#"[{"op":"encode","threads":1,"median_ms":9.0},
                   {"op":"mul_plain","threads":1,"median_ms":2.0}]"#;
    assert_eq!(
        u.calibrate(&CostTable::parse_bench(json).unwrap(), Some(1)),
        2
    );
    assert!((ms(&u, CkksOp::Encode) - 9.0).abs() < 1e-9);
    assert!((ms(&u.for_slots(8192), CkksOp::Encode) - 9.0).abs() < 1e-9);
    assert!((ms(&u, CkksOp::MulPlain) - 2.0).abs() < 1e-9);
}

/// Sparse bootstraps: measured per slot count, the full-slot record
/// calibrates the table, and a set that bootstraps sparse-packed
/// ciphertexts gets a plan packed into the fewest slots that hold every
/// tensor, with the sparse bootstrap's cost in its estimate.
#[test]
fn sparse_packing_uses_the_fewest_slots_and_their_bootstrap_cost() {
    let mut p = ParamSet::n16_estimate(9);
    let json = r#"[{"op":"bootstrap","threads":1,"median_ms":20000.0,"slots":32768},
                   {"op":"bootstrap","threads":1,"median_ms":9000.0,"slots":16384}]"#;
    p.costs
        .calibrate(&CostTable::parse_bench(json).unwrap(), Some(1));
    assert!((p.costs.at(CkksOp::Bootstrap, 0) - 20.0).abs() < 1e-12);
    assert!((p.bootstrap_seconds(16384) - 9.0).abs() < 1e-12);
    assert!((p.bootstrap_seconds(32768) - 20.0).abs() < 1e-12);
    // unmeasured sparse sizes: the documented estimate
    let est = p.bootstrap_seconds(4096);
    assert!((est - 20.0 * compiler::params::SPARSE_BOOTSTRAP_ESTIMATE).abs() < 1e-12);

    // CIFAR-shaped ResNet-20 at full width: 16x32x32 fills 16384 slots.
    let g = zoo("resnet20");
    let opts = CompileOptions::default();
    let (full, full_report) = compile(&g, std::slice::from_ref(&p), &opts).unwrap();
    assert_eq!(full.params.slots, 32768);
    p.min_sparse_slots = 16;
    let (plan, report) = compile(&g, std::slice::from_ref(&p), &opts).unwrap();
    assert_eq!(plan.params.slots, 16384);
    assert!(
        plan.nodes
            .iter()
            .all(|n| n.layout_in.slots == 16384 && n.layout_out.cts() == 1)
    );
    // The full plan's placement at 9 s a bootstrap instead of 20 s (the
    // linear layers cost the same or less: offsets modulo fewer slots) is
    // one the sparse plan could pick, so its optimum saves at least that
    // much (it may bootstrap more often where bootstraps are cheaper).
    let saved = 11.0 * full.bootstraps as f64;
    assert!(
        full_report.estimated_seconds - report.estimated_seconds >= saved - 1e-6,
        "{} vs {}",
        full_report.estimated_seconds,
        report.estimated_seconds
    );
}

#[test]
fn unknown_params_are_a_typed_error() {
    let sets = ParamSet::defaults();
    let opts = CompileOptions {
        params: Some("nope".into()),
        ..CompileOptions::default()
    };
    let e = compile(&zoo("dirac20"), &sets, &opts).unwrap_err();
    assert!(matches!(e, compiler::CompileError::UnknownParams(..)));
}

#[test]
fn power_of_two_keys_trade_rotations_for_memory() {
    use compiler::plan::{KeyMode, naf};
    for d in [-33i64, -1, 0, 1, 7, 31, 1000, 32767] {
        assert_eq!(naf(d).iter().sum::<i64>(), d);
        assert!(naf(d).iter().all(|p| p.unsigned_abs().is_power_of_two()));
    }
    assert_eq!(naf(31).len(), 2);
    let sets = ParamSet::defaults();
    let g = zoo("resnet20");
    let (_, all) = compile(&g, &sets, &CompileOptions::default()).unwrap();
    let pow2 = CompileOptions {
        keys: KeyMode::PowersOfTwo,
        ..CompileOptions::default()
    };
    let (plan, p2) = compile(&g, &sets, &pow2).unwrap();
    assert!(p2.galois_keys < all.galois_keys / 3);
    assert!(p2.rotations > all.rotations);
    assert!(
        plan.galois_steps
            .iter()
            .all(|s| s.unsigned_abs().is_power_of_two())
    );
}

#[test]
fn mnist_shaped_nets_compile() {
    // 28x28 grids: 41 planes per ciphertext, 7x7 final maps.
    let sets = ParamSet::defaults();
    for arch in [nn::zoo::Arch::ResNet, nn::zoo::Arch::Dirac] {
        let cfg = ZooConfig::mnist(arch, 8);
        let g = build_random(&cfg, 1).unwrap();
        let (plan, report) = compile(&g, &sets, &CompileOptions::default()).unwrap();
        assert!(report.bootstraps > 0);
        assert!(plan.nodes.iter().all(|n| n.level_in >= n.depth));
    }
}

#[test]
fn level_restricted_key_bytes_are_smaller_and_monotone() {
    let p = ParamSet::n16_estimate(9);
    let top = p.galois_key_bytes();
    let mut last = 0;
    for l in 0..p.q_primes {
        let b = p.galois_key_bytes_at(l);
        assert!(b > last, "level {l}");
        assert!(b <= top, "level {l}");
        last = b;
    }
    assert_eq!(p.galois_key_bytes_at(p.q_primes - 1), top);
    // A key at level 9: ceil(10 / alpha) digits (alpha = P's primes), each
    // two polynomials over 10 + alpha primes.
    let a = p.p_primes as u64;
    assert_eq!(
        p.galois_key_bytes_at(9),
        10u64.div_ceil(a) * 2 * (10 + a) * (1 << 16) * 8
    );
}

/// Whether plan node `n` is a completed square.
fn is_fused(n: &compiler::plan::PlanNode) -> bool {
    matches!(n.op, LayerOp::PolyAct { fused: true, .. })
}

#[test]
fn quadratics_after_a_linear_layer_take_one_level() {
    let sets = ParamSet::defaults();
    let plain = CompileOptions {
        fuse_squares: false,
        ..CompileOptions::default()
    };
    let mut boots = Vec::new();
    for name in ["resnet20", "dirac20", "dirac-shared20"] {
        let g = zoo(name);
        let (pf, rf) = compile(&g, &sets, &CompileOptions::default()).unwrap();
        let (pp, rp) = compile(&g, &sets, &plain).unwrap();
        let acts = pf
            .nodes
            .iter()
            .filter(|n| matches!(n.op, LayerOp::PolyAct { .. }))
            .count();
        let mut fused = 0;
        for n in &pf.nodes {
            if !matches!(n.op, LayerOp::PolyAct { .. }) {
                continue;
            }
            let u = n.inputs[0];
            let readers = |w: usize| pf.nodes.iter().filter(|m| m.inputs.contains(&w)).count();
            let sole_linear = |w: usize| pf.nodes[w].kind == LevelOpKind::Linear && readers(w) == 1;
            let add = pf.nodes[u].kind == LevelOpKind::Add;
            // Fused exactly where a linear layer feeds only the activation,
            // directly or through an addition read by nothing else; neither
            // value is ever bootstrapped, and such an addition reads its
            // skip one level higher.
            let eligible = if add {
                readers(u) == 1 && sole_linear(pf.nodes[u].inputs[0])
            } else {
                sole_linear(u)
            };
            assert_eq!(is_fused(n), eligible, "{name}: {}", n.name);
            if is_fused(n) {
                fused += 1;
                assert_eq!(n.depth, 1, "{name}: {}", n.name);
                assert!(!pf.nodes[u].bootstrap, "{name}: {}", n.name);
                if add {
                    let main = pf.nodes[u].inputs[0];
                    let skip = pf.nodes[u].inputs[1];
                    assert!(!pf.nodes[main].bootstrap, "{name}: {}", n.name);
                    assert_eq!(pf.nodes[u].skip_depth, 1);
                    assert!(pf.nodes[skip].level_after > pf.nodes[u].level_in);
                }
            } else {
                assert_eq!(n.depth, 2, "{name}: {}", n.name);
            }
        }
        // Every activation of these nets reads a linear layer or a
        // conv + skip addition.
        assert_eq!(fused, acts, "{name}");
        assert!(!pp.nodes.iter().any(is_fused));
        // The report says how many.
        assert_eq!(rf.completed_squares, fused as u64, "{name}");
        assert_eq!(rf.activations, acts as u64, "{name}");
        assert_eq!(rp.completed_squares, 0, "{name}");
        assert!(
            rf.to_text()
                .contains(&format!("activations: {fused} of {acts} as one-level"))
        );
        assert!(pp.nodes.iter().all(|n| match n.op {
            LayerOp::PolyAct { .. } => n.depth == 2,
            _ => true,
        }));
        assert!(
            rf.bootstraps < rp.bootstraps && rf.estimated_seconds < rp.estimated_seconds,
            "{name}: {} bootstraps ({:.1} s) fused, {} ({:.1} s) not",
            rf.bootstraps,
            rf.estimated_seconds,
            rp.bootstraps,
            rp.estimated_seconds
        );
        boots.push(rf.bootstraps);
        // The plan says so when read back.
        assert_eq!(CompiledPlan::from_json(&pf.to_json()).unwrap(), pf);
    }
    // With one-level activations the shared-source net's advantage is gone
    // at L_eff 9 on this shape (4, 4, 5 bootstraps: ResNet's skips reach
    // their adds levels above the main path, a shared source read by three
    // adds over twelve levels of main path does not): what DESIGN.md's
    // worked example predicts for other (L_eff, depth) pairs.
    assert!(boots.iter().all(|&b| b > 0), "{boots:?}");
    // Greedy placement never bootstraps a fused linear layer either.
    let greedy = CompileOptions {
        strategy: Strategy::Greedy,
        ..CompileOptions::default()
    };
    let (pg, _) = compile(&zoo("resnet20"), &sets, &greedy).unwrap();
    assert!(pg.nodes.iter().any(is_fused));
    for n in pg.nodes.iter().filter(|n| is_fused(n)) {
        assert!(!pg.nodes[n.inputs[0]].bootstrap, "{}", n.name);
    }
    // A quadratic whose square needs a shift beyond MAX_SQUARE_SHIFT input
    // ranges (b / 2a = 500 against a range of 4) keeps its two levels.
    let mut cfg = ZooConfig::from_name("dirac20", 3, [32, 32], 10).unwrap();
    cfg.act = nn::graph::PolyAct {
        coeffs: vec![0.0, 1.0, 0.001],
        range: [-4.0, 4.0],
    };
    let g = build_random(&cfg, 3).unwrap();
    let (pw, _) = compile(&g, &sets, &CompileOptions::default()).unwrap();
    assert!(!pw.nodes.iter().any(is_fused));
}

/// Levels above `L_eff` whose primes match the scale (SlotsToCoeffs' in
/// `n16-boot`) are used for the input only where they save a ciphertext
/// bootstrap; otherwise the plan is the one encrypted at `L_eff`, keys and
/// all.
#[test]
fn fresh_levels_above_l_eff_only_where_they_save_a_bootstrap() {
    let working = ParamSet::n16_estimate(9);
    let fresh = ParamSet {
        input_level: 12,
        ..working.clone()
    };
    let opts = CompileOptions {
        params: Some(working.name.clone()),
        ..CompileOptions::default()
    };
    let mut used = 0;
    for (name, fuse) in [
        ("resnet20", true),
        ("dirac-shared20", true),
        ("dirac20", true),
        ("resnet20", false),
        ("dirac-shared20", false),
    ] {
        let g = zoo(name);
        let opts = CompileOptions {
            fuse_squares: fuse,
            ..opts.clone()
        };
        let (pw, rw) = compile(&g, std::slice::from_ref(&working), &opts).unwrap();
        let (pf, rf) = compile(&g, std::slice::from_ref(&fresh), &opts).unwrap();
        assert_eq!(pw.params.input_level, 9);
        let input = pf
            .nodes
            .iter()
            .find(|n| n.kind == LevelOpKind::Input)
            .unwrap();
        assert!(input.level_in <= pf.params.input_level);
        if pf.params.input_level > 9 {
            used += 1;
            assert_eq!(pf.params.input_level, 12);
            assert!(
                rf.bootstraps < rw.bootstraps,
                "{name}: {} vs {}",
                rf.bootstraps,
                rw.bootstraps
            );
        } else {
            assert_eq!(rf.bootstraps, rw.bootstraps, "{name}");
            assert_eq!(rf.estimated_seconds, rw.estimated_seconds, "{name}");
            assert_eq!(rf.network_key_bytes, rw.network_key_bytes, "{name}");
            assert!(input.level_in <= 9);
        }
    }
    assert!(
        used > 0,
        "no zoo net gains a bootstrap from the fresh levels"
    );
}

/// With `fresh_when_faster` the plan takes the fresh levels wherever its
/// estimate there is lower at no more bootstraps: never slower than the
/// default plan, never more bootstraps, and the fresh levels chosen for at
/// least one zoo net where the default keeps it at `L_eff`. Skip costs are
/// then priced like for like, so none comes out negative (session 24: the
/// bundled Dirac + shared-source 20 showed -2.03 s on one add by default).
#[test]
fn fresh_when_faster_never_slower_and_skips_never_negative() {
    let p = ParamSet {
        input_level: 12,
        ..ParamSet::n16_estimate(9)
    };
    let base = CompileOptions {
        params: Some(p.name.clone()),
        ..CompileOptions::default()
    };
    let faster = CompileOptions {
        fresh_when_faster: true,
        ..base.clone()
    };
    let mut switched = 0;
    for name in ["resnet20", "dirac-shared20", "dirac20"] {
        let g = zoo(name);
        let (pb, rb) = compile(&g, std::slice::from_ref(&p), &base).unwrap();
        let (pf, rf) = compile(&g, std::slice::from_ref(&p), &faster).unwrap();
        assert!(rf.bootstraps <= rb.bootstraps, "{name}");
        assert!(
            rf.estimated_seconds <= rb.estimated_seconds + 1e-9,
            "{name}: {} vs {}",
            rf.estimated_seconds,
            rb.estimated_seconds
        );
        if pf.params.input_level > pb.params.input_level {
            switched += 1;
            assert!(rf.estimated_seconds < rb.estimated_seconds, "{name}");
        }
        for s in &rf.skips {
            assert!(s.seconds >= -1e-9, "{name} {}: {}", s.name, s.seconds);
        }
    }
    assert!(switched > 0, "no zoo net is faster on the fresh levels");
}

/// What "all skip connections together" cost is what the same network
/// without them costs as compiled on its own: the Dirac + shared-source
/// net's total equals its bootstraps minus the skip-free Dirac net's, also
/// where the fresh levels above L_eff save the skip-free net a bootstrap
/// and not the shared-source one (session 22: at L_eff 13, depth 32, the
/// report said +0 while the two nets planned 5 and 4).
#[test]
fn skips_total_is_the_skip_free_twin_compiled_on_its_own() {
    let mut fresh_differs = 0;
    for depth in [20, 32] {
        let ds = zoo(&format!("dirac-shared{depth}"));
        let d = zoo(&format!("dirac{depth}"));
        for l_eff in [9, 11, 13] {
            let p = ParamSet {
                input_level: l_eff + 3,
                ..ParamSet::n16_estimate(l_eff)
            };
            for fuse_squares in [true, false] {
                let opts = CompileOptions {
                    params: Some(p.name.clone()),
                    fuse_squares,
                    ..CompileOptions::default()
                };
                let (pds, rds) = compile(&ds, std::slice::from_ref(&p), &opts).unwrap();
                let (pd, rd) = compile(&d, std::slice::from_ref(&p), &opts).unwrap();
                let total = rds.skips_total.as_ref().unwrap();
                let case = format!("depth {depth}, L_eff {l_eff}, fused {fuse_squares}");
                assert_eq!(
                    total.bootstraps,
                    rds.bootstraps as i64 - rd.bootstraps as i64,
                    "{case}"
                );
                let dt = rds.estimated_seconds - rd.estimated_seconds;
                assert!(
                    (total.seconds - dt).abs() < 1e-6 * rds.estimated_seconds,
                    "{case}: {} vs {dt}",
                    total.seconds
                );
                if (pds.params.input_level > l_eff) != (pd.params.input_level > l_eff) {
                    fresh_differs += 1;
                }
            }
        }
    }
    assert!(
        fresh_differs > 0,
        "no case where the fresh levels choice differs"
    );
}

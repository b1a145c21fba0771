//! The placement DP against brute force on small random series-parallel
//! graphs (chains, residual blocks with identity or projection skips,
//! shared-source stages, linear layers that must not be bootstrapped,
//! additions that read their skip a level higher), in count and time modes.

use compiler::level::{LevelBudget, LevelGraph, LevelOpKind, SkipKind, lazy_levels, simulate};
use compiler::placement::{Objective, brute_force, greedy, optimal};
use proptest::prelude::*;

/// Interprets a byte program as a series-parallel level graph of at most
/// `max_nodes` nodes; every depth is at most `l_eff`.
fn build(prog: &[u8], l_eff: u32, max_nodes: usize) -> LevelGraph {
    let mut g = LevelGraph::new("in", 1);
    let mut x = 0;
    let mut source: Option<usize> = None;
    let d = |b: u8| (b as u32 / 5 % 4).min(l_eff);
    for (k, &b) in prog.iter().enumerate() {
        if g.len() + 5 > max_nodes {
            break;
        }
        let cts = 1 + (b as u32 / 40) % 2;
        match b % 5 {
            0 | 1 => {
                let kind = if b % 5 == 0 {
                    LevelOpKind::Linear
                } else {
                    LevelOpKind::Activation
                };
                x = g.op(&format!("op{k}"), kind, d(b), cts, x);
                // A linear layer fused into the square after it: never
                // bootstrapped (`LevelNode::no_bootstrap`).
                if kind == LevelOpKind::Linear && b / 20 % 2 == 1 && d(b) < l_eff {
                    g.nodes[x].no_bootstrap = true;
                    x = g.op(&format!("sq{k}"), LevelOpKind::Activation, 1, cts, x);
                }
            }
            2 => {
                let tap = g.tap(&format!("tap{k}"), x);
                let skip = if b / 5 % 2 == 1 {
                    g.op(
                        &format!("proj{k}"),
                        LevelOpKind::Linear,
                        1.min(l_eff),
                        cts,
                        tap,
                    )
                } else {
                    tap
                };
                let m1 = g.op(&format!("m1_{k}"), LevelOpKind::Linear, d(b), cts, x);
                let m2 = g.op(
                    &format!("m2_{k}"),
                    LevelOpKind::Activation,
                    d(b / 3),
                    cts,
                    m1,
                );
                x = g.add(&format!("add{k}"), m2, skip, SkipKind::MidTerm);
                // A skip scaled for a completed square: read a level higher.
                if b / 7 % 2 == 1 {
                    g.nodes[x].skip_depth = 1;
                }
            }
            3 => source = Some(g.tap(&format!("src{k}"), x)),
            _ => {
                let m = g.op(&format!("s{k}"), LevelOpKind::Activation, d(b), cts, x);
                x = match source {
                    Some(s) => {
                        let a = g.add(&format!("sadd{k}"), m, s, SkipKind::SharedSource);
                        g.nodes[a].skip_depth = (b / 7 % 2) as u32;
                        a
                    }
                    None => m,
                };
            }
        }
    }
    // The output must be the last node and everything must be used: end
    // with a final op reading x (dangling taps are legal but unused).
    g.op("out", LevelOpKind::Linear, 1.min(l_eff), 1, x);
    g
}

fn time_objective(g: &LevelGraph, seeds: &[u16]) -> Objective {
    let max_level = 8;
    let at = |i: usize| seeds[i % seeds.len()] as f64;
    Objective {
        op: (0..g.len())
            .map(|v| {
                (0..=max_level)
                    .map(|l| at(v * 7 + l) / 100.0 * (l as f64 + 1.0))
                    .collect()
            })
            .collect(),
        boot: (0..g.len()).map(|v| 5.0 + at(v * 3 + 1) / 10.0).collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn dp_equals_brute_force(
        prog in proptest::collection::vec(any::<u8>(), 1..12),
        l_eff in 1u32..6,
        input_delta in 0u32..3,
        seeds in proptest::collection::vec(any::<u16>(), 4..16),
    ) {
        let g = build(&prog, l_eff, 15);
        g.validate().unwrap();
        let budget = LevelBudget { l_eff, input_level: l_eff.saturating_sub(input_delta) };
        for obj in [Objective::count(&g), time_objective(&g, &seeds)] {
            let dp = optimal(&g, budget, &obj).unwrap();
            let bf = brute_force(&g, budget, &obj).unwrap();
            for (v, n) in g.nodes.iter().enumerate() {
                prop_assert!(!(n.no_bootstrap && dp.placement.boot[v]));
            }
            prop_assert!((dp.cost - bf.cost).abs() < 1e-9, "dp {} bf {}", dp.cost, bf.cost);
            // The DP's own placement is feasible and costs what it claims.
            let c = obj.evaluate(&g, budget, &dp.placement).unwrap();
            prop_assert!((c - dp.cost).abs() < 1e-9);
            // Greedy is feasible and never better.
            let gr = greedy(&g, budget, &obj).unwrap();
            prop_assert!(gr.cost >= dp.cost - 1e-9);
            for (v, n) in g.nodes.iter().enumerate() {
                prop_assert!(!(n.no_bootstrap && gr.placement.boot[v]));
            }
        }
    }

    #[test]
    fn plan_never_underflows(
        prog in proptest::collection::vec(any::<u8>(), 1..40),
        l_eff in 3u32..12,
    ) {
        let g = build(&prog, l_eff, 120);
        let budget = LevelBudget::fresh(l_eff);
        let sol = optimal(&g, budget, &Objective::count(&g)).unwrap();
        let lv = simulate(&g, budget, &sol.placement).unwrap();
        for (v, n) in g.nodes.iter().enumerate() {
            for &u in &n.inputs {
                prop_assert!(lv[u].level_after >= n.depth, "value {u} below depth of {v}");
            }
            prop_assert!(lv[v].level_in >= n.depth);
        }
        // Lazy levels (what the plan runs at) are reachable by dropping.
        let lazy = lazy_levels(&g, budget, &sol.placement).unwrap();
        for v in 0..g.len() {
            prop_assert!(lazy[v].level_in <= lv[v].level_in);
            prop_assert!(lazy[v].level_in >= g.nodes[v].depth);
        }
    }
}

#[test]
fn bootstrap_at_fork_serves_both_branches() {
    // `a` leaves level 1; the main branch needs 2 + 2 levels and the only
    // site before it is the fork itself: one bootstrap there serves the
    // main branch and the skip (which then needs none of its own).
    let mut g = LevelGraph::new("in", 1);
    let a = g.op("a", LevelOpKind::Linear, 3, 1, 0);
    let t = g.tap("skip", a);
    let m1 = g.op("m1", LevelOpKind::Activation, 2, 1, a);
    let m2 = g.op("m2", LevelOpKind::Linear, 2, 1, m1);
    let s = g.add("add", m2, t, SkipKind::MidTerm);
    g.op("out", LevelOpKind::Free, 0, 1, s);
    let budget = LevelBudget::fresh(4);
    let sol = optimal(&g, budget, &Objective::count(&g)).unwrap();
    assert_eq!(sol.cost, 1.0);
    assert!(sol.placement.boot[a]);
    assert!(!sol.placement.boot[t]);
}

#[test]
fn without_add_drops_the_skip_path() {
    let mut g = LevelGraph::new("in", 1);
    let t = g.tap("skip", 0);
    let p = g.op("proj", LevelOpKind::Linear, 1, 1, t);
    let m = g.op("m", LevelOpKind::Linear, 1, 1, 0);
    let s = g.add("add", m, p, SkipKind::MidTerm);
    g.op("out", LevelOpKind::Linear, 1, 1, s);
    let (h, map) = g.without_add(s).unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(map, vec![0, m, 5]);
    assert_eq!(h.nodes[2].inputs, vec![1]);
    h.validate().unwrap();
}

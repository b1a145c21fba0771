//! Bootstrap placement: an exact dynamic program over levels, a greedy
//! baseline, and a brute-force reference for tests.
//!
//! The dynamic program keeps, for every assignment of levels to the *live*
//! values (produced but still read later), the cheapest way to get there.
//! On a chain that is the `cost[level]` table of docs/design.md; across a
//! residual block the fork value stays live, so the table becomes
//! `cost[l_main][l_skip]`; a shared-source stage keeps its source tap live,
//! which is the second level coordinate. Because every decision (bootstrap
//! a node's output or not) only interacts with the rest through the levels
//! of live values, the program is exact for any DAG; it is cheap when few
//! values are live at a time, which holds for series-parallel nets (ResNets,
//! Dirac chains, shared-source nets: at most three).
//!
//! Costs follow *lazy* levels ([`crate::level::lazy_levels`]): each
//! operation runs at the lowest level that still reaches the next
//! bootstrap, so the program runs backwards over required levels.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::CompileError;
use crate::level::{
    LevelBudget, LevelGraph, LevelOpKind, NodeId, Placement, lazy_levels, simulate,
};

/// What placement minimizes: per node, the time of its operation at each
/// input level, and the time of bootstrapping its output.
///
/// [`Objective::count`] gives the pure-count mode (each ciphertext bootstrap
/// costs 1, operations are free); [`crate::cost::CostTable`] builds the
/// estimated-time mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// `op[v][l]`: cost of running node `v` with input at level `l`
    /// (missing entries count as 0).
    pub op: Vec<Vec<f64>>,
    /// `boot[v]`: cost of bootstrapping the output of `v`.
    pub boot: Vec<f64>,
}

impl Objective {
    /// Pure-count mode: minimize ciphertext bootstraps.
    pub fn count(g: &LevelGraph) -> Self {
        Self {
            op: vec![Vec::new(); g.len()],
            boot: g.nodes.iter().map(|n| n.cts as f64).collect(),
        }
    }

    fn op_cost(&self, v: NodeId, level: u32) -> f64 {
        self.op
            .get(v)
            .and_then(|t| t.get(level as usize))
            .copied()
            .unwrap_or(0.0)
    }

    /// Total cost of a feasible placement, with every operation run at its
    /// lazy level (see [`lazy_levels`]).
    pub fn evaluate(
        &self,
        g: &LevelGraph,
        budget: LevelBudget,
        p: &Placement,
    ) -> Result<f64, CompileError> {
        let lv = lazy_levels(g, budget, p)?;
        Ok((0..g.len())
            .map(|v| self.op_cost(v, lv[v].level_in) + if p.boot[v] { self.boot[v] } else { 0.0 })
            .sum())
    }
}

/// Which placement algorithm to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The exact dynamic program.
    #[default]
    Optimal,
    /// Bootstrap just before an operation that does not fit.
    Greedy,
}

/// A placement and its cost under the objective it was found for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    /// Where the bootstraps go.
    pub placement: Placement,
    /// Its cost.
    pub cost: f64,
}

/// Most DP states allowed at one step before giving up (a graph with many
/// values live at once is not what this compiler targets).
pub const MAX_STATES: usize = 1 << 21;

#[derive(Clone)]
struct Entry {
    levels: Vec<u8>,
    cost: f64,
    parent: u32,
    boot: bool,
}

/// Runs the chosen strategy.
pub fn place(
    g: &LevelGraph,
    budget: LevelBudget,
    obj: &Objective,
    strategy: Strategy,
) -> Result<Solution, CompileError> {
    match strategy {
        Strategy::Optimal => optimal(g, budget, obj),
        Strategy::Greedy => greedy(g, budget, obj),
    }
}

/// The exact placement: minimum cost over all bootstrap placements, each
/// operation run at its lazy level.
///
/// The program runs backwards over the nodes. Its state is, for every live
/// value, the level that the already-decided consumers require of it (on a
/// chain the `cost[level]` table; across a residual block the pair
/// `(l_main, l_skip)`; a shared-source tap is one more coordinate). At a
/// node with required output level `r`, either no bootstrap (the node needs
/// `r + depth` at its input) or a bootstrap after it (needs `r <= L_eff`,
/// and only `depth` at its input). Feasibility is decided at the sources:
/// a bootstrap supplies `L_eff`, the input supplies its fresh level.
pub fn optimal(
    g: &LevelGraph,
    budget: LevelBudget,
    obj: &Objective,
) -> Result<Solution, CompileError> {
    g.validate()?;
    let max_level = budget.l_eff.max(budget.input_level);
    if max_level >= u8::MAX as u32 {
        return Err(CompileError::LevelTooHigh(max_level));
    }
    if let Some(v) = g.nodes.iter().position(|n| n.depth > budget.l_eff) {
        return Err(CompileError::DepthExceedsBudget {
            name: g.nodes[v].name.clone(),
            depth: g.nodes[v].depth,
            l_eff: budget.l_eff,
        });
    }
    let n = g.len();
    let last = g.last_use();
    // open(v): values u <= v read by some node after v (sorted).
    let open = |v: usize| -> Vec<NodeId> {
        (0..=v)
            .filter(|&u| last[u].is_some_and(|l| l > v))
            .collect()
    };
    let mut steps: Vec<Vec<Entry>> = Vec::with_capacity(n);
    let mut prev: Vec<Entry> = vec![Entry {
        levels: vec![],
        cost: 0.0,
        parent: 0,
        boot: false,
    }];
    let mut open_before = open(n - 1);
    for v in (0..n).rev() {
        let node = &g.nodes[v];
        let open_after = if v == 0 { Vec::new() } else { open(v - 1) };
        let self_pos = open_before.iter().position(|&u| u == v);
        // For each value open after v: where it was before (if anywhere)
        // and whether v reads it.
        // For each value open after v: where it was before (if anywhere),
        // whether v reads it, and how many levels above v's input level.
        let map: Vec<(Option<usize>, bool, u32)> = open_after
            .iter()
            .map(|u| {
                let extra = (0..node.inputs.len())
                    .filter(|&k| node.inputs[k] == *u)
                    .map(|k| g.read_depth(v, k))
                    .max()
                    .unwrap_or(0);
                (
                    open_before.iter().position(|w| w == u),
                    node.inputs.contains(u),
                    extra,
                )
            })
            .collect();
        let mut next: Vec<Entry> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        for (pi, e) in prev.iter().enumerate() {
            let r = self_pos.map_or(0, |p| e.levels[p] as u32);
            for boot in [false, true] {
                if boot && (self_pos.is_none() || r > budget.l_eff || node.no_bootstrap) {
                    continue;
                }
                let r_in = if boot { node.depth } else { r + node.depth };
                if r_in > max_level
                    || (node.kind == LevelOpKind::Input && r_in > budget.input_level)
                {
                    continue;
                }
                let cost = e.cost + obj.op_cost(v, r_in) + if boot { obj.boot[v] } else { 0.0 };
                let levels: Vec<u8> = map
                    .iter()
                    .map(|&(pos, read, extra)| {
                        let old = pos.map_or(0, |p| e.levels[p] as u32);
                        (if read { old.max(r_in + extra) } else { old }) as u8
                    })
                    .collect();
                match index.get(&levels) {
                    Some(&k) => {
                        if cost < next[k].cost - 1e-12 {
                            next[k] = Entry {
                                levels,
                                cost,
                                parent: pi as u32,
                                boot,
                            };
                        }
                    }
                    None => {
                        index.insert(levels.clone(), next.len());
                        next.push(Entry {
                            levels,
                            cost,
                            parent: pi as u32,
                            boot,
                        });
                    }
                }
            }
        }
        if next.is_empty() {
            return Err(CompileError::Infeasible {
                node: v,
                name: node.name.clone(),
            });
        }
        if next.len() > MAX_STATES {
            return Err(CompileError::TooManyStates(next.len()));
        }
        steps.push(std::mem::take(&mut prev));
        prev = next;
        open_before = open_after;
    }
    // One final state (nothing open); walk back to the output.
    let mut best = 0;
    for (k, e) in prev.iter().enumerate() {
        if e.cost < prev[best].cost - 1e-12 {
            best = k;
        }
    }
    let cost = prev[best].cost;
    let mut boot = vec![false; n];
    let mut k = best;
    let mut layer = prev;
    for b in boot.iter_mut() {
        let e = &layer[k];
        *b = e.boot;
        k = e.parent as usize;
        layer = steps.pop().expect("one table per step");
    }
    Ok(Solution {
        placement: Placement { boot },
        cost,
    })
}

/// The greedy baseline: walk the nodes in order and, whenever an operation
/// does not fit its input level, bootstrap that input (serving all of its
/// consumers). Never looks ahead, so it ignores where skips join.
pub fn greedy(
    g: &LevelGraph,
    budget: LevelBudget,
    obj: &Objective,
) -> Result<Solution, CompileError> {
    g.validate()?;
    let mut p = Placement::none(g.len());
    loop {
        match simulate(g, budget, &p) {
            Ok(_) => break,
            Err(CompileError::LevelUnderflow { node, name, .. }) => {
                if g.nodes[node].depth > budget.l_eff {
                    return Err(CompileError::DepthExceedsBudget {
                        name,
                        depth: g.nodes[node].depth,
                        l_eff: budget.l_eff,
                    });
                }
                // The lowest input is the one to refresh (or, where that
                // must not be bootstrapped, the lowest input before it).
                let lv = simulate_partial(g, budget, &p, node);
                let lowest = |v: NodeId| g.nodes[v].inputs.iter().copied().min_by_key(|&u| lv[u]);
                let mut u = lowest(node).expect("an underflowing node has an input");
                while g.nodes[u].no_bootstrap {
                    match lowest(u) {
                        Some(w) => u = w,
                        None => return Err(CompileError::Infeasible { node, name }),
                    }
                }
                if p.boot[u] {
                    return Err(CompileError::Infeasible { node, name });
                }
                p.boot[u] = true;
            }
            Err(e) => return Err(e),
        }
    }
    let cost = obj.evaluate(g, budget, &p)?;
    Ok(Solution { placement: p, cost })
}

/// Levels (after bootstrap) of nodes before `upto`, ignoring underflow.
fn simulate_partial(g: &LevelGraph, budget: LevelBudget, p: &Placement, upto: NodeId) -> Vec<u32> {
    let mut after = vec![0u32; upto];
    for v in 0..upto {
        let n = &g.nodes[v];
        let level_in = if n.kind == LevelOpKind::Input {
            budget.input_level
        } else {
            n.inputs
                .iter()
                .enumerate()
                .map(|(k, &u)| after[u].saturating_sub(g.read_depth(v, k)))
                .min()
                .unwrap_or(0)
        };
        let out = level_in.saturating_sub(n.depth);
        after[v] = if p.boot[v] { budget.l_eff } else { out };
    }
    after
}

/// Exhaustive search over all `2^n` placements (n = nodes). For tests on
/// small graphs only; refuses more than 20 nodes.
pub fn brute_force(
    g: &LevelGraph,
    budget: LevelBudget,
    obj: &Objective,
) -> Result<Solution, CompileError> {
    g.validate()?;
    let n = g.len();
    if n > 20 {
        return Err(CompileError::TooManyStates(1 << n));
    }
    let mut best: Option<Solution> = None;
    for mask in 0u32..(1u32 << n) {
        let p = Placement {
            boot: (0..n).map(|i| mask >> i & 1 == 1).collect(),
        };
        if let Ok(c) = obj.evaluate(g, budget, &p)
            && best.as_ref().is_none_or(|b| c < b.cost - 1e-12)
        {
            best = Some(Solution {
                placement: p,
                cost: c,
            });
        }
    }
    best.ok_or(CompileError::Infeasible {
        node: g.output(),
        name: g.nodes[g.output()].name.clone(),
    })
}

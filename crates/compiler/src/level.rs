//! The level graph: what bootstrap placement sees of a network.
//!
//! Every node is one homomorphic operation reduced to what matters for the
//! level budget: its multiplicative depth (levels consumed), how many
//! ciphertexts its output occupies (a bootstrap of it costs that many
//! ciphertext bootstraps) and, for additions, which input is the skip path.
//!
//! A *bootstrap site* is the output of a node: bootstrapping it refreshes the
//! value to `L_eff` for **all** its consumers. Sites that serve only some
//! consumers are modelled with explicit depth-0 [`LevelOpKind::Tap`] nodes:
//! the skip path of a residual block reads its source through a tap (so a
//! bootstrap on the tap refreshes the skip only, while a bootstrap on the
//! source is the "bootstrap at the fork" that serves both branches), and a
//! shared-source stage reads its source through one tap shared by all of its
//! additions (so bootstrapping the tap once serves every addition).
//!
//! Nodes are kept in a topological order; node 0 is the input.

use serde::{Deserialize, Serialize};

use crate::error::CompileError;

/// Index of a node in a [`LevelGraph`].
pub type NodeId = usize;

/// What a level-graph node does (for reports and the runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelOpKind {
    /// The encrypted input (depth 0, level set by the caller).
    Input,
    /// A linear layer (convolution, dense, pooling with BN folded): depth 1.
    Linear,
    /// A polynomial activation.
    Activation,
    /// Element-wise addition of two values (a skip connection): depth 0,
    /// output at the lower of the two input levels.
    Add,
    /// A depth-0 copy that exists only to be a bootstrap site serving a
    /// subset of a value's consumers (the skip path, a shared source).
    Tap,
    /// A level-free linear step (rotate-and-sum pooling, reshapes): depth 0.
    Free,
}

/// How a skip connection relates to the network (for the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipKind {
    /// A residual block's skip: spans one block (ResNet).
    MidTerm,
    /// One of several additions reusing one source (shared-source nets).
    SharedSource,
}

/// One node of a [`LevelGraph`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelNode {
    /// Name (the network layer it comes from).
    pub name: String,
    /// What the node does.
    pub kind: LevelOpKind,
    /// Inputs; for [`LevelOpKind::Add`], `[main, skip]`.
    pub inputs: Vec<NodeId>,
    /// Levels consumed: the input must be at level `>= depth`.
    pub depth: u32,
    /// Ciphertexts of the output (a bootstrap of it costs this many).
    pub cts: u32,
    /// For additions: the kind of skip connection.
    pub skip: Option<SkipKind>,
    /// Never bootstrapped: a linear layer whose output only the one-level
    /// square of the activation after it reads, at a scale and with a
    /// factor only that square expects (`crate::lower::LayerOp::PolyAct`'s
    /// `fused`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_bootstrap: bool,
    /// For additions: levels the skip input is read at above the sum (1
    /// when the skip is multiplied by a completed square's `sqrt|a|`
    /// before the add: one plaintext product and rescale on the skip path).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skip_depth: u32,
}

/// Serde helper: omit zero fields.
pub fn is_zero(x: &u32) -> bool {
    *x == 0
}

/// A network reduced to levels: nodes in topological order, node 0 the
/// input, the last node the output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelGraph {
    /// The nodes, topologically ordered.
    pub nodes: Vec<LevelNode>,
}

impl LevelGraph {
    /// A graph holding only the input node.
    pub fn new(input_name: &str, cts: u32) -> Self {
        Self {
            nodes: vec![LevelNode {
                name: input_name.to_string(),
                kind: LevelOpKind::Input,
                inputs: vec![],
                depth: 0,
                cts,
                skip: None,
                no_bootstrap: false,
                skip_depth: 0,
            }],
        }
    }

    /// The input node.
    pub fn input(&self) -> NodeId {
        0
    }

    /// Levels node `v` reads its `k`-th input at above its own input level
    /// (an addition's scaled skip: [`LevelNode::skip_depth`]; else 0).
    pub fn read_depth(&self, v: NodeId, k: usize) -> u32 {
        let n = &self.nodes[v];
        if n.kind == LevelOpKind::Add && k == 1 {
            n.skip_depth
        } else {
            0
        }
    }

    /// The output node (the last one).
    pub fn output(&self) -> NodeId {
        self.nodes.len() - 1
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no node at all (never true for a built graph).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn push(&mut self, node: LevelNode) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Appends a one-input operation of the given depth.
    pub fn op(
        &mut self,
        name: &str,
        kind: LevelOpKind,
        depth: u32,
        cts: u32,
        input: NodeId,
    ) -> NodeId {
        self.push(LevelNode {
            name: name.to_string(),
            kind,
            inputs: vec![input],
            depth,
            cts,
            skip: None,
            no_bootstrap: false,
            skip_depth: 0,
        })
    }

    /// Appends a tap (depth-0 copy, a bootstrap site for a subset of
    /// consumers) of `input`.
    pub fn tap(&mut self, name: &str, input: NodeId) -> NodeId {
        let cts = self.nodes[input].cts;
        self.op(name, LevelOpKind::Tap, 0, cts, input)
    }

    /// Appends an addition `main + skip`.
    pub fn add(&mut self, name: &str, main: NodeId, skip: NodeId, kind: SkipKind) -> NodeId {
        let cts = self.nodes[main].cts.max(self.nodes[skip].cts);
        self.push(LevelNode {
            name: name.to_string(),
            kind: LevelOpKind::Add,
            inputs: vec![main, skip],
            depth: 0,
            cts,
            skip: Some(kind),
            no_bootstrap: false,
            skip_depth: 0,
        })
    }

    /// Checks the structural invariants: node 0 is the only input, inputs
    /// point backwards, arities match, additions have depth 0.
    pub fn validate(&self) -> Result<(), CompileError> {
        let bad = |node: usize, msg: &str| {
            Err(CompileError::InvalidLevelGraph {
                node,
                msg: msg.to_string(),
            })
        };
        if self.nodes.is_empty() || self.nodes[0].kind != LevelOpKind::Input {
            return bad(0, "node 0 must be the input");
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if n.inputs.iter().any(|&j| j >= i) {
                return bad(i, "inputs must come earlier (topological order)");
            }
            let arity = match n.kind {
                LevelOpKind::Input => 0,
                LevelOpKind::Add => 2,
                _ => 1,
            };
            if n.inputs.len() != arity {
                return bad(i, "wrong number of inputs");
            }
            if i > 0 && n.kind == LevelOpKind::Input {
                return bad(i, "only node 0 may be an input");
            }
            if matches!(
                n.kind,
                LevelOpKind::Add | LevelOpKind::Tap | LevelOpKind::Input
            ) && n.depth != 0
            {
                return bad(i, "inputs, taps and additions have depth 0");
            }
            if n.cts == 0 {
                return bad(i, "a value occupies at least one ciphertext");
            }
            if n.skip_depth > 1 || (n.skip_depth != 0 && n.kind != LevelOpKind::Add) {
                return bad(i, "only an addition reads its skip one level higher");
            }
        }
        Ok(())
    }

    /// For every node, the index of its last consumer (`None` if unused).
    pub fn last_use(&self) -> Vec<Option<NodeId>> {
        let mut last = vec![None; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &j in &n.inputs {
                last[j] = Some(i);
            }
        }
        last
    }

    /// Indices of the additions (skip connections).
    pub fn adds(&self) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].kind == LevelOpKind::Add)
            .collect()
    }

    /// The same graph with the addition `add` removed: its consumers read its
    /// main input instead, and nodes left without consumers (the skip path:
    /// taps, projections) are dropped. Used to attribute cost to one skip.
    pub fn without_add(&self, add: NodeId) -> Result<(LevelGraph, Vec<NodeId>), CompileError> {
        if self.nodes.get(add).map(|n| n.kind) != Some(LevelOpKind::Add) {
            return Err(CompileError::NotAnAdd(add));
        }
        let main = self.nodes[add].inputs[0];
        let out = self.output();
        let mut redirect: Vec<NodeId> = (0..self.nodes.len()).collect();
        redirect[add] = main;
        // Which nodes survive: reachable backwards from the output.
        let mut alive = vec![false; self.nodes.len()];
        let out_r = redirect[out];
        alive[out_r] = true;
        for i in (0..self.nodes.len()).rev() {
            if !alive[i] || i == add {
                continue;
            }
            for &j in &self.nodes[i].inputs {
                alive[redirect[j]] = true;
            }
        }
        alive[add] = false;
        alive[0] = true;
        let mut new_id = vec![usize::MAX; self.nodes.len()];
        let mut g = LevelGraph { nodes: Vec::new() };
        let mut old = Vec::new();
        for i in 0..self.nodes.len() {
            if !alive[i] {
                continue;
            }
            old.push(i);
            let mut n = self.nodes[i].clone();
            n.inputs = n.inputs.iter().map(|&j| new_id[redirect[j]]).collect();
            new_id[i] = g.nodes.len();
            g.nodes.push(n);
        }
        // Keep the output last.
        debug_assert_eq!(new_id[out_r], g.nodes.len() - 1);
        Ok((g, old))
    }
}

/// Where bootstraps go: `boot[v]` bootstraps the output of node `v` (to
/// `L_eff`) before any consumer reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// One flag per node.
    pub boot: Vec<bool>,
}

impl Placement {
    /// No bootstrap anywhere.
    pub fn none(n: usize) -> Self {
        Self {
            boot: vec![false; n],
        }
    }

    /// The bootstrapped nodes.
    pub fn sites(&self) -> Vec<NodeId> {
        (0..self.boot.len()).filter(|&i| self.boot[i]).collect()
    }

    /// Number of bootstrap sites (not weighted by ciphertexts).
    pub fn count(&self) -> usize {
        self.boot.iter().filter(|&&b| b).count()
    }
}

/// The levels of one node under a placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLevels {
    /// Level the operation runs at (for an addition: the lower input).
    pub level_in: u32,
    /// Level of the result, before any bootstrap of it.
    pub level_out: u32,
    /// Level consumers see (`L_eff` if bootstrapped, else `level_out`).
    pub level_after: u32,
}

/// Level bounds of a placement problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelBudget {
    /// Level right after a bootstrap.
    pub l_eff: u32,
    /// Level of the freshly encrypted input.
    pub input_level: u32,
}

impl LevelBudget {
    /// A budget where the input is fresh at `l_eff`.
    pub fn fresh(l_eff: u32) -> Self {
        Self {
            l_eff,
            input_level: l_eff,
        }
    }
}

/// Runs the level rules over the graph for a placement. Fails on the first
/// node whose input level is below its depth: the plan never lets a value
/// go below the depth of its next operation.
pub fn simulate(
    g: &LevelGraph,
    budget: LevelBudget,
    p: &Placement,
) -> Result<Vec<NodeLevels>, CompileError> {
    if p.boot.len() != g.nodes.len() {
        return Err(CompileError::PlacementSize {
            expected: g.nodes.len(),
            got: p.boot.len(),
        });
    }
    let mut lv: Vec<NodeLevels> = Vec::with_capacity(g.nodes.len());
    for (i, n) in g.nodes.iter().enumerate() {
        let level_in = match n.kind {
            LevelOpKind::Input => budget.input_level,
            _ => {
                let mut l = u32::MAX;
                for (k, &j) in n.inputs.iter().enumerate() {
                    let have = lv[j].level_after;
                    let extra = g.read_depth(i, k);
                    if have < extra {
                        return Err(CompileError::LevelUnderflow {
                            node: i,
                            name: n.name.clone(),
                            level: have,
                            depth: extra,
                        });
                    }
                    l = l.min(have - extra);
                }
                if l == u32::MAX { 0 } else { l }
            }
        };
        if level_in < n.depth {
            return Err(CompileError::LevelUnderflow {
                node: i,
                name: n.name.clone(),
                level: level_in,
                depth: n.depth,
            });
        }
        let level_out = level_in - n.depth;
        if p.boot[i] && n.no_bootstrap {
            return Err(CompileError::InvalidLevelGraph {
                node: i,
                msg: "a bootstrap where the node's value must not be bootstrapped".into(),
            });
        }
        let level_after = if p.boot[i] { budget.l_eff } else { level_out };
        lv.push(NodeLevels {
            level_in,
            level_out,
            level_after,
        });
    }
    Ok(lv)
}

/// The levels a placement really runs at when every operation first drops
/// its input to the lowest level that still lets everything after it run
/// until the next bootstrap ("lazy" levels: operations at lower levels are
/// cheaper, and dropping levels is nearly free).
///
/// Computed backwards: a value must sit at the highest level any consumer
/// needs; an operation of depth `d` needs `d` more than its output. A
/// bootstrapped value only needs level 0 before its bootstrap. Fails like
/// [`simulate`] if the placement is infeasible.
pub fn lazy_levels(
    g: &LevelGraph,
    budget: LevelBudget,
    p: &Placement,
) -> Result<Vec<NodeLevels>, CompileError> {
    simulate(g, budget, p)?;
    let n = g.nodes.len();
    let last = g.last_use();
    let mut req_out = vec![0u32; n];
    let mut req_in = vec![0u32; n];
    for v in (0..n).rev() {
        let node = &g.nodes[v];
        let booted = p.boot[v] && last[v].is_some();
        req_in[v] = if booted {
            node.depth
        } else {
            req_out[v] + node.depth
        };
        for (k, &u) in node.inputs.iter().enumerate() {
            req_out[u] = req_out[u].max(req_in[v] + g.read_depth(v, k));
        }
    }
    Ok((0..n)
        .map(|v| {
            let booted = p.boot[v] && last[v].is_some();
            let level_out = req_in[v] - g.nodes[v].depth;
            NodeLevels {
                level_in: req_in[v],
                level_out,
                level_after: if booted { budget.l_eff } else { level_out },
            }
        })
        .collect())
}

//! Level graphs of the CIFAR ResNet family built directly from the level
//! rules (no weights, one ciphertext per value), for docs/design.md's worked
//! example and for quick what-if studies of where skips and bootstraps go.
//!
//! Layer depths follow the worked example: every convolution, the average
//! pool and the dense layer cost one level; every activation costs
//! `act_depth`; 1x1 projections on the skip path cost one level.

use crate::level::{LevelGraph, LevelOpKind, NodeId, SkipKind};

/// Shape of a CIFAR ResNet body: `stages` stages of `blocks` basic blocks
/// (ResNet-20: 3 x 3), stages after the first downsampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodySpec {
    /// Number of stages (3 for CIFAR ResNets).
    pub stages: usize,
    /// Basic blocks per stage (3 for ResNet-20, 5 for -32, 9 for -56).
    pub blocks: usize,
    /// Levels of one activation.
    pub act_depth: u32,
    /// Levels of the final average pool (1 in the worked example; 0 when
    /// it is a level-free rotate-and-sum folded into the dense layer).
    pub pool_depth: u32,
}

impl BodySpec {
    /// ResNet-20 (3 stages of 3 blocks) with the given activation depth.
    pub fn resnet20(act_depth: u32) -> Self {
        Self {
            stages: 3,
            blocks: 3,
            act_depth,
            pool_depth: 1,
        }
    }
}

/// Where a shared-source stage takes its source from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAt {
    /// The stage input; in downsampling stages it reaches the additions
    /// through a 1x1 stride-2 projection (one level on the skip path).
    StageInput,
    /// The output of the stage's first block (already downsampled); the
    /// additions are in the later blocks.
    FirstBlockOutput,
}

/// Where, inside a block, the shared source is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddAt {
    /// Before the block's last activation (as a post-activation ResNet).
    BeforeAct,
    /// After the block's last activation.
    AfterAct,
}

/// A shared-source configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedSpec {
    /// Source position.
    pub source: SourceAt,
    /// Addition position inside a block.
    pub add: AddAt,
    /// Additions per stage (at most the eligible blocks; the last ones get
    /// them).
    pub adds_per_stage: usize,
}

struct Net {
    g: LevelGraph,
    act: u32,
}

impl Net {
    fn new(act: u32) -> Self {
        Self {
            g: LevelGraph::new("input", 1),
            act,
        }
    }
    fn conv(&mut self, name: &str, x: NodeId) -> NodeId {
        self.g.op(name, LevelOpKind::Linear, 1, 1, x)
    }
    fn act(&mut self, name: &str, x: NodeId) -> NodeId {
        self.g.op(name, LevelOpKind::Activation, self.act, 1, x)
    }
    fn stem(&mut self) -> NodeId {
        let c = self.conv("conv1", 0);
        self.act("act1", c)
    }
    fn head(&mut self, x: NodeId, pool_depth: u32) -> LevelGraph {
        let p = self.g.op("avgpool", LevelOpKind::Linear, pool_depth, 1, x);
        self.conv("fc", p);
        std::mem::take(&mut self.g)
    }
}

/// ResNet with post-activation basic blocks and 1x1 projections on the skip
/// path of the downsampling blocks.
pub fn resnet(spec: BodySpec) -> LevelGraph {
    let mut n = Net::new(spec.act_depth);
    let mut x = n.stem();
    for s in 0..spec.stages {
        for b in 0..spec.blocks {
            let p = format!("stage{}.block{}", s + 1, b + 1);
            let tap = n.g.tap(&format!("{p}.skip"), x);
            let skip = if s > 0 && b == 0 {
                n.conv(&format!("{p}.proj"), tap)
            } else {
                tap
            };
            let c1 = n.conv(&format!("{p}.conv1"), x);
            let a1 = n.act(&format!("{p}.act1"), c1);
            let c2 = n.conv(&format!("{p}.conv2"), a1);
            let sum = n.g.add(&format!("{p}.add"), c2, skip, SkipKind::MidTerm);
            x = n.act(&format!("{p}.act2"), sum);
        }
    }
    n.head(x, spec.pool_depth)
}

/// The skip-free Dirac chain (same body, every block conv-act-conv-act).
pub fn dirac(spec: BodySpec) -> LevelGraph {
    let mut n = Net::new(spec.act_depth);
    let mut x = n.stem();
    for s in 0..spec.stages {
        for b in 0..spec.blocks {
            let p = format!("stage{}.block{}", s + 1, b + 1);
            let c1 = n.conv(&format!("{p}.conv1"), x);
            let a1 = n.act(&format!("{p}.act1"), c1);
            let c2 = n.conv(&format!("{p}.conv2"), a1);
            x = n.act(&format!("{p}.act2"), c2);
        }
    }
    n.head(x, spec.pool_depth)
}

/// The Dirac chain plus shared-source skips: in each stage, additions that
/// all reuse one source through a single tap.
pub fn dirac_shared(spec: BodySpec, shared: SharedSpec) -> LevelGraph {
    let mut n = Net::new(spec.act_depth);
    let mut x = n.stem();
    for s in 0..spec.stages {
        let downsample = s > 0;
        let mut source: Option<NodeId> = None;
        if shared.source == SourceAt::StageInput {
            let tap = n.g.tap(&format!("stage{}.source", s + 1), x);
            source = Some(if downsample {
                n.conv(&format!("stage{}.proj", s + 1), tap)
            } else {
                tap
            });
        }
        let eligible = match shared.source {
            SourceAt::StageInput => spec.blocks,
            SourceAt::FirstBlockOutput => spec.blocks - 1,
        };
        let first_add = spec.blocks - shared.adds_per_stage.min(eligible);
        for b in 0..spec.blocks {
            let p = format!("stage{}.block{}", s + 1, b + 1);
            let c1 = n.conv(&format!("{p}.conv1"), x);
            let a1 = n.act(&format!("{p}.act1"), c1);
            let c2 = n.conv(&format!("{p}.conv2"), a1);
            let with_add = b >= first_add && source.is_some();
            x = match (with_add, shared.add) {
                (true, AddAt::BeforeAct) => {
                    let sum = n.g.add(
                        &format!("{p}.add"),
                        c2,
                        source.expect("checked"),
                        SkipKind::SharedSource,
                    );
                    n.act(&format!("{p}.act2"), sum)
                }
                (true, AddAt::AfterAct) => {
                    let a2 = n.act(&format!("{p}.act2"), c2);
                    n.g.add(
                        &format!("{p}.add"),
                        a2,
                        source.expect("checked"),
                        SkipKind::SharedSource,
                    )
                }
                (false, _) => n.act(&format!("{p}.act2"), c2),
            };
            if b == 0 && shared.source == SourceAt::FirstBlockOutput {
                source = Some(n.g.tap(&format!("stage{}.source", s + 1), x));
            }
        }
    }
    n.head(x, spec.pool_depth)
}

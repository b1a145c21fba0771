//! Model zoo: ResNet-20/32/56, Dirac-20/32/56 and Dirac + shared-source
//! networks as [`Graph`]s.
//!
//! All architectures share one body (He et al. 2016, CIFAR variant):
//! a 3x3 stem conv to `16·w` channels, three stages of `n = (depth-2)/6`
//! basic blocks (`16·w`, `32·w`, `64·w` channels, the first conv of stages
//! 2 and 3 has stride 2), global average pooling and a dense layer.
//! Every conv is followed by a batch norm, every batch norm that ends a
//! "layer" by a polynomial activation.
//!
//! - [`Arch::ResNet`]: post-activation basic blocks
//!   `y = act2(bn2(conv2(act1(bn1(conv1(x))))) + skip(x))`, where `skip` is
//!   the identity or, where the shape changes, a 1x1 stride-2 projection
//!   (conv + BN).
//! - [`Arch::Dirac`]: the same body without any block skip, each 3x3 conv
//!   in the stages a [`DiracConv2d`] (`W' = diag(a)·delta + diag(b)·W/||W||`).
//! - [`Arch::DiracShared`]: the Dirac body plus, in each stage, up to
//!   `adds_per_stage` additions `y_k = act2(bn2(conv2(...)) + s)` that all
//!   reuse the stage's *source* `s`: the stage's input after its
//!   downsampling, i.e. the stem output for stage 1 and the output of the
//!   (stride-2) first block for stages 2 and 3. The adds go to evenly
//!   spaced blocks of the stage, always including its last block.
//!
//! # Names
//!
//! Node names (and the value each node defines, which has the same name):
//! `stem.conv`, `stem.bn`, `stem.act`;
//! `stage{s}.block{b}.{conv1,bn1,act1,conv2,bn2,add,act2}`
//! (`s`, `b` from 1); `stage{s}.block{b}.shortcut.{conv,bn}` (ResNet
//! projections); `head.pool`, `head.flatten`, `head.fc`. The input value is
//! `input`, the output value `head.fc`. Parameter names follow
//! [`Graph::named_params`], e.g. `stage2.block1.conv1.weight`,
//! `stage2.block1.bn1.running_var`, `stage1.block3.act2.coeffs`.
//!
//! A trainer gets the list of parameters to create from [`param_specs`]
//! and turns its trained tensors back into a graph with
//! [`build_from_params`].

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::graph::{
    BatchNorm, Conv2d, Dense, DiracConv2d, Graph, GraphError, Node, Op, Pads, PolyAct, Tensor,
};

/// Which family of network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// ResNet with post-activation basic blocks and 1x1 projections.
    ResNet,
    /// Dirac-parameterized convolutions, no block skips.
    Dirac,
    /// Dirac body plus shared-source skip additions.
    DiracShared {
        /// Adds per stage (clamped to the blocks available: `n` in stage 1,
        /// `n - 1` in stages 2 and 3).
        adds_per_stage: usize,
    },
}

/// Everything that determines a zoo network's structure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooConfig {
    /// Architecture family.
    pub arch: Arch,
    /// Depth `6n + 2`: 20, 32, 56, ... (8 and 14 make tiny test nets).
    pub depth: usize,
    /// Input channels (3 for CIFAR-10, 1 for (Fashion-)MNIST).
    pub in_channels: usize,
    /// Input height and width.
    pub image_size: [usize; 2],
    /// Number of classes (logits).
    pub num_classes: usize,
    /// Width multiplier: stage widths are `round(16·w)`, `round(32·w)`,
    /// `round(64·w)` (at least 1).
    pub width: f64,
    /// Initial activation (coefficients and range) for
    /// [`build_random`]; trained networks carry their own.
    pub act: PolyAct,
}

/// Errors building a zoo network.
#[derive(Debug, Error)]
pub enum ZooError {
    /// Bad configuration.
    #[error("invalid zoo config: {0}")]
    Config(String),
    /// A parameter was not supplied.
    #[error("missing parameter `{0}`")]
    Missing(String),
    /// A parameter has the wrong shape.
    #[error("parameter `{name}` has shape {got:?}, expected {expected:?}")]
    Shape {
        /// Parameter name.
        name: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Supplied shape.
        got: Vec<usize>,
    },
    /// Parameters were supplied that the network does not have.
    #[error("unknown parameter(s): {0}")]
    Unknown(String),
    /// A parameter has an invalid value (e.g. an activation range with lo >= hi).
    #[error("parameter `{name}`: {msg}")]
    Value {
        /// Parameter name.
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// The resulting graph is invalid (a bug or inconsistent parameters).
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// What a parameter is, so a trainer knows how to initialize and treat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// Conv kernel `[C_out, C_in, KH, KW]`.
    ConvWeight,
    /// Dense matrix `[OUT, IN]`.
    DenseWeight,
    /// Conv or dense bias `[C]`.
    Bias,
    /// Dirac identity scale `a` `[C_out]`.
    DiracAlpha,
    /// Dirac kernel scale `b` `[C_out]`.
    DiracBeta,
    /// Batch-norm gamma `[C]`.
    BnGamma,
    /// Batch-norm beta `[C]`.
    BnBeta,
    /// Batch-norm running mean `[C]` (a buffer, not trained by gradient).
    BnMean,
    /// Batch-norm running variance `[C]` (a buffer).
    BnVar,
    /// Polynomial coefficients `[deg + 1]`, constant term first.
    PolyCoeffs,
    /// Activation input range `[lo, hi]` (a buffer recorded in training).
    PolyRange,
}

/// One parameter of a zoo network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    /// Stable name, e.g. `stage2.block1.conv1.weight`.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Role.
    pub kind: ParamKind,
}

/// Batch-norm epsilon of every zoo network.
pub const BN_EPS: f64 = 1e-5;

/// The architecture names [`ZooConfig::from_name`] accepts, for its errors.
const ARCH_NAMES: &str = "resnetN, diracN, dirac-sharedN";

impl ZooConfig {
    /// A CIFAR-10-shaped network (`[3, 32, 32]`, 10 classes, width 1).
    pub fn cifar10(arch: Arch, depth: usize) -> Self {
        Self::new(arch, depth, 3, [32, 32], 10)
    }

    /// A (Fashion-)MNIST-shaped network (`[1, 28, 28]`, 10 classes, width 1).
    pub fn mnist(arch: Arch, depth: usize) -> Self {
        Self::new(arch, depth, 1, [28, 28], 10)
    }

    /// A network with the given input and classes, width 1 and the default
    /// activation `0.125 x^2 + 0.5 x` on `[-4, 4]`.
    pub fn new(
        arch: Arch,
        depth: usize,
        in_channels: usize,
        image_size: [usize; 2],
        num_classes: usize,
    ) -> Self {
        Self {
            arch,
            depth,
            in_channels,
            image_size,
            num_classes,
            width: 1.0,
            act: PolyAct {
                coeffs: vec![0.0, 0.5, 0.125],
                range: [-4.0, 4.0],
            },
        }
    }

    /// Parses an architecture name: `resnet20`, `dirac32`,
    /// `dirac-shared56` (also `diracshared56`, `dirac_shared56`; all adds
    /// per stage). Input shape and classes as [`ZooConfig::new`].
    pub fn from_name(
        name: &str,
        in_channels: usize,
        image_size: [usize; 2],
        num_classes: usize,
    ) -> Result<Self, ZooError> {
        let lower = name.to_ascii_lowercase().replace(['-', '_'], "");
        let split = lower.find(|c: char| c.is_ascii_digit()).ok_or_else(|| {
            ZooError::Config(format!(
                "architecture `{name}` has no depth ({ARCH_NAMES}, N = 6n+2, e.g. resnet20)"
            ))
        })?;
        let (fam, d) = lower.split_at(split);
        let depth: usize = d
            .parse()
            .map_err(|_| ZooError::Config(format!("bad depth in `{name}`")))?;
        let arch = match fam {
            "resnet" => Arch::ResNet,
            "dirac" => Arch::Dirac,
            "diracshared" => Arch::DiracShared {
                adds_per_stage: usize::MAX,
            },
            _ => {
                return Err(ZooError::Config(format!(
                    "unknown architecture `{name}` ({ARCH_NAMES})"
                )));
            }
        };
        let c = Self::new(arch, depth, in_channels, image_size, num_classes);
        c.blocks_per_stage()?;
        Ok(c)
    }

    /// Name such as `resnet20`, `dirac20`, `dirac-shared20`.
    pub fn name(&self) -> String {
        let fam = match self.arch {
            Arch::ResNet => "resnet",
            Arch::Dirac => "dirac",
            Arch::DiracShared { .. } => "dirac-shared",
        };
        format!("{fam}{}", self.depth)
    }

    /// Blocks per stage, `n = (depth - 2) / 6`.
    pub fn blocks_per_stage(&self) -> Result<usize, ZooError> {
        if self.depth < 8 || !(self.depth - 2).is_multiple_of(6) {
            return Err(ZooError::Config(format!(
                "depth {} is not 6n+2 with n >= 1",
                self.depth
            )));
        }
        Ok((self.depth - 2) / 6)
    }

    /// Channel widths of the three stages.
    pub fn stage_widths(&self) -> [usize; 3] {
        let f = |b: f64| ((b * self.width).round() as usize).max(1);
        [f(16.0), f(32.0), f(64.0)]
    }

    /// Blocks (1-based) of stage `s` (1-based) that end with a shared-source
    /// add, for [`Arch::DiracShared`]; empty for other archs.
    pub fn shared_add_blocks(&self, stage: usize) -> Vec<usize> {
        let Arch::DiracShared { adds_per_stage } = self.arch else {
            return Vec::new();
        };
        let Ok(n) = self.blocks_per_stage() else {
            return Vec::new();
        };
        let cands: Vec<usize> = if stage == 1 {
            (1..=n).collect()
        } else {
            (2..=n).collect()
        };
        let m = cands.len();
        let k = adds_per_stage.min(m);
        (0..k)
            .map(|i| cands[((i + 1) * m).div_ceil(k) - 1])
            .collect()
    }

    fn validate(&self) -> Result<(), ZooError> {
        self.blocks_per_stage()?;
        if self.in_channels == 0 || self.image_size.contains(&0) || self.num_classes == 0 {
            return Err(ZooError::Config(
                "input channels, image size and classes must be nonzero".into(),
            ));
        }
        if self.width.is_nan() || self.width <= 0.0 || self.width > 64.0 {
            return Err(ZooError::Config(format!(
                "width {} must be in (0, 64]",
                self.width
            )));
        }
        if self.image_size.iter().any(|&s| s > 4096) {
            return Err(ZooError::Config("image too large".into()));
        }
        Ok(())
    }
}

/// Source of parameter values for the builder.
type Source<'a> = dyn FnMut(&ParamSpec) -> Result<Tensor, ZooError> + 'a;

struct Builder<'a> {
    g: Graph,
    src: &'a mut Source<'a>,
    specs: Vec<ParamSpec>,
    cur: String,
}

impl<'a> Builder<'a> {
    fn param(
        &mut self,
        name: String,
        shape: Vec<usize>,
        kind: ParamKind,
    ) -> Result<Tensor, ZooError> {
        let spec = ParamSpec { name, shape, kind };
        let t = (self.src)(&spec)?;
        if t.shape != spec.shape || !t.is_consistent() {
            return Err(ZooError::Shape {
                name: spec.name,
                expected: spec.shape,
                got: t.shape,
            });
        }
        self.specs.push(spec);
        Ok(t)
    }

    fn node(&mut self, name: &str, op: Op, inputs: Vec<String>) -> String {
        self.g.push(Node::new(name, op, inputs, name));
        name.to_string()
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        name: &str,
        input: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        dirac: bool,
    ) -> Result<String, ZooError> {
        let w = self.param(
            format!("{name}.weight"),
            vec![cout, cin, k, k],
            ParamKind::ConvWeight,
        )?;
        let stride = [stride, stride];
        let pads = Pads::uniform(k / 2);
        let op = if dirac {
            let alpha = self.param(format!("{name}.alpha"), vec![cout], ParamKind::DiracAlpha)?;
            let beta = self.param(format!("{name}.beta"), vec![cout], ParamKind::DiracBeta)?;
            Op::DiracConv2d(DiracConv2d {
                weight: w,
                alpha,
                beta,
                bias: None,
                stride,
                pads,
            })
        } else {
            Op::Conv2d(Conv2d {
                weight: w,
                bias: None,
                stride,
                pads,
            })
        };
        Ok(self.node(name, op, vec![input.to_string()]))
    }

    fn bn(&mut self, name: &str, input: &str, c: usize) -> Result<String, ZooError> {
        let gamma = self.param(format!("{name}.weight"), vec![c], ParamKind::BnGamma)?;
        let beta = self.param(format!("{name}.bias"), vec![c], ParamKind::BnBeta)?;
        let mean = self.param(format!("{name}.running_mean"), vec![c], ParamKind::BnMean)?;
        let var = self.param(format!("{name}.running_var"), vec![c], ParamKind::BnVar)?;
        if var.data.iter().any(|v| v.is_nan() || *v + BN_EPS <= 0.0) {
            return Err(ZooError::Value {
                name: format!("{name}.running_var"),
                msg: "variance must be > -eps".into(),
            });
        }
        let op = Op::BatchNorm(BatchNorm {
            gamma,
            beta,
            mean,
            var,
            eps: BN_EPS,
        });
        Ok(self.node(name, op, vec![input.to_string()]))
    }

    fn act(&mut self, name: &str, input: &str, deg: usize) -> Result<String, ZooError> {
        let coeffs = self.param(
            format!("{name}.coeffs"),
            vec![deg + 1],
            ParamKind::PolyCoeffs,
        )?;
        let range = self.param(format!("{name}.range"), vec![2], ParamKind::PolyRange)?;
        let (lo, hi) = (range.data[0], range.data[1]);
        if !lo.is_finite() || !hi.is_finite() || lo >= hi {
            return Err(ZooError::Value {
                name: format!("{name}.range"),
                msg: format!("[{lo}, {hi}] must be finite with lo < hi"),
            });
        }
        let op = Op::PolyAct(PolyAct {
            coeffs: coeffs.data,
            range: [lo, hi],
        });
        Ok(self.node(name, op, vec![input.to_string()]))
    }
}

fn build_with(cfg: &ZooConfig, src: &mut Source<'_>) -> Result<(Graph, Vec<ParamSpec>), ZooError> {
    cfg.validate()?;
    let n = cfg.blocks_per_stage()?;
    let deg = cfg.act.coeffs.len().saturating_sub(1);
    let dirac = !matches!(cfg.arch, Arch::ResNet);
    let g = Graph::new(
        cfg.name(),
        "input",
        vec![cfg.in_channels, cfg.image_size[0], cfg.image_size[1]],
    );
    // Reborrow the source with a shorter lifetime for the builder.
    let mut src_ref = |s: &ParamSpec| src(s);
    let mut b = Builder {
        g,
        src: &mut src_ref,
        specs: Vec::new(),
        cur: "input".into(),
    };
    let widths = cfg.stage_widths();
    let x = b.conv(
        "stem.conv",
        "input",
        cfg.in_channels,
        widths[0],
        3,
        1,
        false,
    )?;
    let x = b.bn("stem.bn", &x, widths[0])?;
    b.cur = b.act("stem.act", &x, deg)?;
    let mut cin = widths[0];
    for (si, &w) in widths.iter().enumerate() {
        let s = si + 1;
        let adds = cfg.shared_add_blocks(s);
        let mut source = b.cur.clone();
        for blk in 1..=n {
            let p = format!("stage{s}.block{blk}");
            let stride = if s > 1 && blk == 1 { 2 } else { 1 };
            let input = b.cur.clone();
            let y = b.conv(&format!("{p}.conv1"), &input, cin, w, 3, stride, dirac)?;
            let y = b.bn(&format!("{p}.bn1"), &y, w)?;
            let y = b.act(&format!("{p}.act1"), &y, deg)?;
            let y = b.conv(&format!("{p}.conv2"), &y, w, w, 3, 1, dirac)?;
            let mut y = b.bn(&format!("{p}.bn2"), &y, w)?;
            match cfg.arch {
                Arch::ResNet => {
                    let skip = if stride != 1 || cin != w {
                        let sc = b.conv(
                            &format!("{p}.shortcut.conv"),
                            &input,
                            cin,
                            w,
                            1,
                            stride,
                            false,
                        )?;
                        b.bn(&format!("{p}.shortcut.bn"), &sc, w)?
                    } else {
                        input.clone()
                    };
                    y = b.node(&format!("{p}.add"), Op::Add, vec![y, skip]);
                }
                Arch::DiracShared { .. } if adds.contains(&blk) => {
                    y = b.node(&format!("{p}.add"), Op::Add, vec![y, source.clone()]);
                }
                _ => {}
            }
            b.cur = b.act(&format!("{p}.act2"), &y, deg)?;
            if s > 1 && blk == 1 {
                // The stage's source is its input after downsampling.
                source = b.cur.clone();
            }
            cin = w;
        }
    }
    let cur = b.cur.clone();
    let x = b.node("head.pool", Op::GlobalAvgPool, vec![cur]);
    let x = b.node("head.flatten", Op::Flatten, vec![x]);
    let wt = b.param(
        "head.fc.weight".into(),
        vec![cfg.num_classes, cin],
        ParamKind::DenseWeight,
    )?;
    let bias = b.param(
        "head.fc.bias".into(),
        vec![cfg.num_classes],
        ParamKind::Bias,
    )?;
    let out = b.node(
        "head.fc",
        Op::Dense(Dense {
            weight: wt,
            bias: Some(bias),
        }),
        vec![x],
    );
    b.g.output = out;
    b.g.infer_shapes()?;
    Ok((b.g, b.specs))
}

/// The parameters a network of this configuration has, in graph order.
pub fn param_specs(cfg: &ZooConfig) -> Result<Vec<ParamSpec>, ZooError> {
    let mut src = |s: &ParamSpec| {
        Ok(match s.kind {
            ParamKind::PolyRange => Tensor::vector(vec![-1.0, 1.0]),
            ParamKind::BnVar => Tensor::vector(vec![1.0; s.shape[0]]),
            _ => Tensor::zeros(s.shape.clone()),
        })
    };
    Ok(build_with(cfg, &mut src)?.1)
}

/// Builds the network from named parameter tensors (e.g. a trainer's
/// state). Every parameter of [`param_specs`] must be present with its
/// shape; extra names are an error (they usually mean a structure
/// mismatch).
pub fn build_from_params(
    cfg: &ZooConfig,
    params: &BTreeMap<String, Tensor>,
) -> Result<Graph, ZooError> {
    let mut used = BTreeSet::new();
    let mut src = |s: &ParamSpec| {
        let t = params
            .get(&s.name)
            .ok_or_else(|| ZooError::Missing(s.name.clone()))?;
        used.insert(s.name.clone());
        Ok(t.clone())
    };
    let (g, _) = build_with(cfg, &mut src)?;
    let extra: Vec<&str> = params
        .keys()
        .filter(|k| !used.contains(*k))
        .map(|s| s.as_str())
        .collect();
    if !extra.is_empty() {
        return Err(ZooError::Unknown(extra.join(", ")));
    }
    Ok(g)
}

/// Initial value of a parameter as [`build_random`] draws it: He-normal
/// conv kernels, uniform `±1/sqrt(in)` dense weights, zero biases, Dirac
/// `a = 1`, `b = 0.1`, batch norms near identity (slightly perturbed so
/// that folding tests are meaningful), the config's activation.
pub fn init_param(cfg: &ZooConfig, spec: &ParamSpec, rng: &mut impl Rng) -> Tensor {
    let n: usize = spec.shape.iter().product();
    let shape = spec.shape.clone();
    let mut uni =
        |lo: f64, hi: f64| -> Vec<f64> { (0..n).map(|_| rng.gen_range(lo..hi)).collect() };
    let data = match spec.kind {
        ParamKind::ConvWeight => {
            let fan_in: usize = spec.shape[1..].iter().product();
            let d = Normal::new(0.0, (2.0 / fan_in as f64).sqrt()).expect("valid std");
            (0..n).map(|_| d.sample(rng)).collect()
        }
        ParamKind::DenseWeight => {
            let b = 1.0 / (spec.shape[1] as f64).sqrt();
            uni(-b, b)
        }
        ParamKind::Bias => vec![0.0; n],
        ParamKind::DiracAlpha => vec![1.0; n],
        ParamKind::DiracBeta => vec![0.1; n],
        ParamKind::BnGamma => uni(0.8, 1.2),
        ParamKind::BnBeta => uni(-0.1, 0.1),
        ParamKind::BnMean => uni(-0.1, 0.1),
        ParamKind::BnVar => uni(0.8, 1.2),
        ParamKind::PolyCoeffs => {
            let mut c = cfg.act.coeffs.clone();
            c.resize(n, 0.0);
            c
        }
        ParamKind::PolyRange => cfg.act.range.to_vec(),
    };
    Tensor { shape, data }
}

/// Builds the network with random initial weights (deterministic in `seed`).
pub fn build_random(cfg: &ZooConfig, seed: u64) -> Result<Graph, ZooError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut src = |s: &ParamSpec| Ok(init_param(cfg, s, &mut rng));
    Ok(build_with(cfg, &mut src)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{max_abs_diff, run};
    use crate::transform::fold_all;

    fn count(g: &Graph, kind: &str) -> usize {
        g.nodes.iter().filter(|n| n.op.kind() == kind).count()
    }

    #[test]
    fn resnet20_structure() {
        let cfg = ZooConfig::cifar10(Arch::ResNet, 20);
        let g = build_random(&cfg, 1).unwrap();
        // 19 convs + 2 projections, 9 adds, 19 activations.
        assert_eq!(count(&g, "conv2d"), 21);
        assert_eq!(count(&g, "add"), 9);
        assert_eq!(count(&g, "poly_act"), 19);
        assert_eq!(g.output_shape().unwrap(), vec![10]);
        let s = g.infer_shapes().unwrap();
        assert_eq!(s["stage3.block3.act2"], vec![64, 8, 8]);
        assert_eq!(s["stage2.block1.shortcut.bn"], vec![32, 16, 16]);
        // The familiar parameter count of ResNet-20 (~0.27M).
        let weights: usize = g
            .named_params()
            .iter()
            .filter(|(n, _)| n.ends_with(".weight"))
            .map(|(_, t)| t.numel())
            .sum();
        assert!((270_000..275_000).contains(&weights), "{weights}");
    }

    #[test]
    fn dirac_and_shared() {
        let cfg = ZooConfig::mnist(Arch::Dirac, 20);
        let g = build_random(&cfg, 1).unwrap();
        assert_eq!(count(&g, "add"), 0);
        assert_eq!(count(&g, "dirac_conv2d"), 18);
        assert_eq!(
            g.infer_shapes().unwrap()["stage3.block1.act2"],
            vec![64, 7, 7]
        );

        let mut cfg = ZooConfig::mnist(Arch::DiracShared { adds_per_stage: 2 }, 32);
        assert_eq!(cfg.shared_add_blocks(1), vec![3, 5]);
        assert_eq!(cfg.shared_add_blocks(2), vec![3, 5]);
        cfg.arch = Arch::DiracShared { adds_per_stage: 1 };
        assert_eq!(cfg.shared_add_blocks(3), vec![5]);
        cfg.arch = Arch::DiracShared {
            adds_per_stage: usize::MAX,
        };
        assert_eq!(cfg.shared_add_blocks(1), vec![1, 2, 3, 4, 5]);
        assert_eq!(cfg.shared_add_blocks(2), vec![2, 3, 4, 5]);
        let g = build_random(&cfg, 1).unwrap();
        assert_eq!(count(&g, "add"), 13);
        // All adds of stage 2 read the first block's output.
        let adds: Vec<_> = g
            .nodes
            .iter()
            .filter(|n| n.name.starts_with("stage2") && n.op.kind() == "add")
            .collect();
        assert!(adds.iter().all(|n| n.inputs[1] == "stage2.block1.act2"));
    }

    #[test]
    fn params_round_trip_and_errors() {
        let mut cfg = ZooConfig::mnist(Arch::DiracShared { adds_per_stage: 1 }, 8);
        cfg.width = 0.25;
        let g = build_random(&cfg, 3).unwrap();
        let specs = param_specs(&cfg).unwrap();
        let params: BTreeMap<String, Tensor> = g.named_params().into_iter().collect();
        assert_eq!(specs.len(), params.len());
        let h = build_from_params(&cfg, &params).unwrap();
        assert_eq!(g, h);
        let mut p2 = params.clone();
        p2.remove("stage2.block1.conv1.alpha");
        assert!(matches!(
            build_from_params(&cfg, &p2),
            Err(ZooError::Missing(_))
        ));
        let mut p3 = params.clone();
        p3.insert("bogus".into(), Tensor::vector(vec![1.0]));
        assert!(matches!(
            build_from_params(&cfg, &p3),
            Err(ZooError::Unknown(_))
        ));
        let mut p4 = params;
        p4.insert("head.fc.bias".into(), Tensor::vector(vec![1.0]));
        assert!(matches!(
            build_from_params(&cfg, &p4),
            Err(ZooError::Shape { .. })
        ));
    }

    #[test]
    fn zoo_folding_preserves_outputs() {
        for arch in [
            Arch::ResNet,
            Arch::Dirac,
            Arch::DiracShared { adds_per_stage: 2 },
        ] {
            let mut cfg = ZooConfig::new(arch, 14, 2, [12, 12], 5);
            cfg.width = 0.5;
            let g = build_random(&cfg, 9).unwrap();
            let f = fold_all(&g).unwrap();
            assert!(
                f.nodes
                    .iter()
                    .all(|n| !matches!(n.op, Op::BatchNorm(_) | Op::DiracConv2d(_)))
            );
            let mut rng = ChaCha8Rng::seed_from_u64(4);
            let x = init_param(
                &cfg,
                &ParamSpec {
                    name: "x".into(),
                    shape: vec![2, 12, 12],
                    kind: ParamKind::BnBeta,
                },
                &mut rng,
            );
            let a = run(&g, &x).unwrap();
            let b = run(&f, &x).unwrap();
            assert!(max_abs_diff(&a.data, &b.data) < 1e-6, "{arch:?}");
        }
    }

    #[test]
    fn names() {
        let c = ZooConfig::from_name("Dirac-Shared56", 3, [32, 32], 10).unwrap();
        assert_eq!(
            c.arch,
            Arch::DiracShared {
                adds_per_stage: usize::MAX
            }
        );
        assert_eq!(c.name(), "dirac-shared56");
        assert!(ZooConfig::from_name("resnet21", 3, [32, 32], 10).is_err());
        assert!(ZooConfig::from_name("vgg16", 3, [32, 32], 10).is_err());
        // A name without a depth says which names exist.
        let e = ZooConfig::from_name("nope", 3, [32, 32], 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("resnetN, diracN, dirac-sharedN"), "{e}");
    }
}

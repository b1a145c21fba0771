//! Converts a trained [`Net`] into the nn crate's [`Graph`] IR, through the
//! nn zoo's [`build_from_params`](::nn::zoo::build_from_params) so that the
//! structure and parameter names are exactly the zoo's.
//!
//! The graph is the training form: Dirac convolutions stay
//! `DiracConv2d` (raw `W`, `a`, `b`) and batch norms stay `BatchNorm` with
//! their running statistics; the nn transforms (Dirac fold, BN fold) produce
//! the inference form. Each polynomial activation carries its power-basis
//! coefficients and the symmetric input range `[-r, r]` measured on
//! calibration images (max `|x|`, never below the activation's own scaling
//! range `R`).
//!
//! A network trained with `--post-add-norm` gets, after each shared-source
//! add, a `BatchNorm` node `stageS.blockB.add_norm` whose scale is the same
//! on every channel (the [`AddNorm`] inference
//! form); `nn::transform::fold_all` folds it into the activation and the
//! conv feeding the add, so the compiler sees the zoo's structure.

use std::collections::BTreeMap;

use ::nn::graph::{self, Graph};
use burn::module::Param;
use burn::prelude::*;

use crate::model::{ADD_NORM_EPS, AddNorm, ArchConfig, ConvBn, Net, PolyAct, tensor_to_f64};

fn t<const D: usize>(x: Tensor<D>) -> graph::Tensor {
    let shape = x.dims().to_vec();
    graph::Tensor {
        shape,
        data: tensor_to_f64(x),
    }
}

fn p<const D: usize>(x: &Param<Tensor<D>>) -> graph::Tensor {
    t(x.val())
}

struct Params<'a> {
    map: BTreeMap<String, graph::Tensor>,
    ranges: &'a [f32],
    act_index: usize,
}

impl Params<'_> {
    fn conv_bn(&mut self, conv: &str, bn: &str, c: &ConvBn) {
        self.map.insert(format!("{conv}.weight"), p(&c.weight));
        if let (Some(a), Some(b)) = (&c.dirac_a, &c.dirac_b) {
            self.map.insert(format!("{conv}.alpha"), p(a));
            self.map.insert(format!("{conv}.beta"), p(b));
        }
        self.map.insert(format!("{bn}.weight"), p(&c.bn.gamma));
        self.map.insert(format!("{bn}.bias"), p(&c.bn.beta));
        self.map
            .insert(format!("{bn}.running_mean"), t(c.bn.running_mean.value()));
        self.map
            .insert(format!("{bn}.running_var"), t(c.bn.running_var.value()));
    }

    fn act(&mut self, name: &str, a: &PolyAct) {
        let measured = self.ranges.get(self.act_index).copied().unwrap_or(0.0);
        self.act_index += 1;
        let r = f64::from(measured).max(a.range());
        self.map.insert(
            format!("{name}.coeffs"),
            graph::Tensor::vector(a.power_coefficients()),
        );
        self.map
            .insert(format!("{name}.range"), graph::Tensor::vector(vec![-r, r]));
    }
}

/// The trained parameters of `net` under the nn zoo's names (e.g.
/// `stage2.block1.conv1.alpha`, `stage1.block3.act2.range`); `ranges` are
/// the per-activation max `|x|` from
/// [`calibrate_ranges`](crate::trainer::calibrate_ranges), in
/// [`Net::activations`] order (missing entries fall back to each
/// activation's scaling range).
pub fn named_params(
    net: &Net,
    arch: &ArchConfig,
    ranges: &[f32],
) -> BTreeMap<String, graph::Tensor> {
    let mut ps = Params {
        map: BTreeMap::new(),
        ranges,
        act_index: 0,
    };
    ps.conv_bn("stem.conv", "stem.bn", &net.stem);
    ps.act("stem.act", &net.stem_act);
    let n = arch.blocks_per_stage();
    for (i, blk) in net.blocks.iter().enumerate() {
        let pre = format!("stage{}.block{}", i / n + 1, i % n + 1);
        ps.conv_bn(&format!("{pre}.conv1"), &format!("{pre}.bn1"), &blk.conv1);
        ps.act(&format!("{pre}.act1"), &blk.act1);
        ps.conv_bn(&format!("{pre}.conv2"), &format!("{pre}.bn2"), &blk.conv2);
        if let Some(pr) = &blk.proj {
            ps.conv_bn(
                &format!("{pre}.shortcut.conv"),
                &format!("{pre}.shortcut.bn"),
                pr,
            );
        }
        ps.act(&format!("{pre}.act2"), &blk.act2);
    }
    // burn's Linear stores [in, out]; the graph wants [out, in].
    ps.map
        .insert("head.fc.weight".into(), t(net.fc.weight.val().transpose()));
    if let Some(b) = &net.fc.bias {
        ps.map.insert("head.fc.bias".into(), p(b));
    }
    ps.map
}

/// The inference form of a post-add normalization as a graph batch norm
/// (the scale and variance repeated on every channel).
pub fn add_norm_op(an: &AddNorm) -> graph::Op {
    let beta = tensor_to_f64(an.beta.val());
    let c = beta.len();
    let gamma = tensor_to_f64(an.gamma.val())[0];
    let var = tensor_to_f64(an.running_var.value())[0];
    graph::Op::BatchNorm(graph::BatchNorm {
        gamma: graph::Tensor::vector(vec![gamma; c]),
        beta: graph::Tensor::vector(beta),
        mean: graph::Tensor::vector(tensor_to_f64(an.running_mean.value())),
        var: graph::Tensor::vector(vec![var; c]),
        eps: ADD_NORM_EPS,
    })
}

/// Why the export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The zoo refused the parameters.
    #[error(transparent)]
    Zoo(#[from] ::nn::zoo::ZooError),
    /// The graph is inconsistent.
    #[error(transparent)]
    Graph(#[from] ::nn::graph::GraphError),
    /// A post-add normalization has no add to follow.
    #[error("no node {0} to put the post-add normalization after")]
    MissingAdd(String),
    /// A ReLU network (`--relu`) is a plaintext ceiling only.
    #[error(
        "a ReLU network has no polynomial activations to evaluate under HE: it is a plaintext ceiling only"
    )]
    Relu,
}

/// Builds the nn graph of the trained `net` (see [`named_params`]), with
/// the post-add normalizations (if any) as batch-norm nodes.
pub fn to_graph(net: &Net, arch: &ArchConfig, ranges: &[f32]) -> Result<Graph, ExportError> {
    if arch.act.relu {
        return Err(ExportError::Relu);
    }
    let mut zoo = arch.to_zoo();
    zoo.act.coeffs.resize(arch.act.degree + 1, 0.0);
    let mut g = ::nn::zoo::build_from_params(&zoo, &named_params(net, arch, ranges))?;
    let n = arch.blocks_per_stage();
    for (i, blk) in net.blocks.iter().enumerate() {
        let Some(an) = &blk.add_norm else {
            continue;
        };
        let pre = format!("stage{}.block{}", i / n + 1, i % n + 1);
        let add_name = format!("{pre}.add");
        let ai = g
            .nodes
            .iter()
            .position(|x| x.name == add_name)
            .ok_or_else(|| ExportError::MissingAdd(add_name.clone()))?;
        let add_out = g.nodes[ai].output.clone();
        let name = format!("{pre}.add_norm");
        for node in g.nodes.iter_mut() {
            for v in node.inputs.iter_mut() {
                if *v == add_out {
                    *v = name.clone();
                }
            }
        }
        g.nodes.insert(
            ai + 1,
            graph::Node::new(&name, add_norm_op(an), vec![add_out], &name),
        );
    }
    g.infer_shapes()?;
    Ok(g)
}

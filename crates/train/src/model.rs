//! burn modules for the HE-friendly CNN families: ResNet (post-activation
//! basic blocks with 1x1 projections), Dirac (no block skips, every 3x3 conv
//! Dirac-parameterized) and Dirac + shared-source (Dirac body plus, per
//! stage, adds that reuse one source), all with polynomial activations.

use std::fmt;

use burn::module::{Param, RunningState};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use serde::{Deserialize, Serialize};

/// Network family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// ResNet (He et al. 2016): post-activation basic blocks with identity
    /// skips, 1x1 conv + BN projections where the shape changes.
    Resnet,
    /// The same body with no block skips; every 3x3 conv is
    /// `W' = diag(a)·delta + diag(b)·W/||W||`.
    Dirac,
    /// The Dirac body plus, per stage, skip adds that all reuse one source.
    DiracShared,
}

impl Family {
    /// The name prefix used in architecture names (`resnet`, `dirac`,
    /// `dirac-shared`).
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Resnet => "resnet",
            Family::Dirac => "dirac",
            Family::DiracShared => "dirac-shared",
        }
    }
}

/// Polynomial activation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActConfig {
    /// Polynomial degree (2 to 4).
    pub degree: usize,
    /// The input range `[-range, range]` the activation is initialized to
    /// approximate ReLU on; inputs are divided by it before the polynomial.
    pub range: f64,
    /// If set, start as `x + q·x²/R` (near identity) instead of the ReLU
    /// fit: compositions of ReLU fits degenerate along identity-dominated
    /// Dirac chains, near-identity starts may not.
    #[serde(default)]
    pub near_identity: Option<f64>,
    /// If set, the activations are exact ReLUs instead of polynomials: the
    /// plaintext ceiling the polynomial networks are measured against (issue
    /// 10). Such a network has no HE export.
    #[serde(default)]
    pub relu: bool,
}

impl ActConfig {
    /// Initial coefficients `c_k` in `u = x / R` (constant first).
    pub fn initial_coefficients(&self) -> Vec<f64> {
        match self.near_identity {
            Some(q) => {
                let mut c = vec![0.0; self.degree + 1];
                c[1] = 1.0;
                c[2] = q;
                c
            }
            None => relu_fit(self.degree),
        }
    }
}

impl Default for ActConfig {
    fn default() -> Self {
        ActConfig {
            degree: 2,
            range: 4.0,
            near_identity: None,
            relu: false,
        }
    }
}

/// Architecture of one network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchConfig {
    /// Family.
    pub family: Family,
    /// Depth `6n + 2` (20, 32, 56; 8 for tiny test nets).
    pub depth: usize,
    /// Width multiplier: stage widths are `round(16w), round(32w), round(64w)`.
    pub width: f64,
    /// Input channels (1 for Fashion-MNIST/MNIST, 3 for CIFAR-10).
    pub in_channels: usize,
    /// Input `[height, width]`.
    pub input_size: [usize; 2],
    /// Output classes.
    pub classes: usize,
    /// Shared-source adds per stage (only [`Family::DiracShared`]); at most
    /// the blocks per stage, `n`.
    pub shared_adds: usize,
    /// Activation settings.
    pub act: ActConfig,
    /// A normalization right after each shared-source add ([`AddNorm`]:
    /// per-channel centring, one scale per tensor), before the activation.
    /// Its inference form is a uniform scale (folds into the activation's
    /// coefficients) and a per-channel shift (folds into the conv feeding
    /// the add), so it costs nothing under HE.
    #[serde(default)]
    pub post_add_norm: bool,
}

/// Why an architecture name or setting was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    /// The name is not `resnetD`, `diracD` or `dirac-sharedD`.
    #[error(
        "unknown architecture {0:?}: expected resnet<D>, dirac<D> or dirac-shared<D> with D = 6n+2 (e.g. resnet20, dirac32, dirac-shared56)"
    )]
    UnknownName(String),
    /// A setting is out of range.
    #[error("invalid architecture setting: {0}")]
    Invalid(String),
}

impl ArchConfig {
    /// Parses `resnet20`, `resnet-32`, `dirac56`, `dirac-shared20`, ... for
    /// the given input shape `[C, H, W]`, with 10 classes, width 1, the
    /// default activation and, for shared-source nets, one add per block.
    pub fn from_name(name: &str, input: [usize; 3]) -> Result<Self, ArchError> {
        let lower = name.to_ascii_lowercase().replace('_', "-");
        let (family, rest) = if let Some(r) = lower
            .strip_prefix("dirac-shared")
            .or_else(|| lower.strip_prefix("dirac-ss"))
        {
            (Family::DiracShared, r)
        } else if let Some(r) = lower.strip_prefix("dirac") {
            (Family::Dirac, r)
        } else if let Some(r) = lower.strip_prefix("resnet") {
            (Family::Resnet, r)
        } else {
            return Err(ArchError::UnknownName(name.into()));
        };
        let depth: usize = rest
            .trim_start_matches('-')
            .parse()
            .map_err(|_| ArchError::UnknownName(name.into()))?;
        let cfg = ArchConfig {
            family,
            depth,
            width: 1.0,
            in_channels: input[0],
            input_size: [input[1], input[2]],
            classes: 10,
            shared_adds: depth.saturating_sub(2) / 6,
            act: ActConfig::default(),
            post_add_norm: false,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The canonical name, e.g. `dirac-shared20`.
    pub fn name(&self) -> String {
        format!("{}{}", self.family.prefix(), self.depth)
    }

    /// Blocks per stage, `n = (depth - 2) / 6`.
    pub fn blocks_per_stage(&self) -> usize {
        (self.depth - 2) / 6
    }

    /// Channels of the three stages.
    pub fn stage_channels(&self) -> [usize; 3] {
        [16.0, 32.0, 64.0].map(|c: f64| ((c * self.width).round() as usize).max(1))
    }

    /// Checks depth, width, shapes and knobs.
    pub fn validate(&self) -> Result<(), ArchError> {
        let bad = |m: String| Err(ArchError::Invalid(m));
        if self.depth < 8 || !(self.depth - 2).is_multiple_of(6) {
            return bad(format!("depth {} is not 6n+2 with n >= 1", self.depth));
        }
        if !(self.width.is_finite() && self.width > 0.0 && self.width <= 16.0) {
            return bad(format!("width {} not in (0, 16]", self.width));
        }
        if self.in_channels == 0 || self.input_size.contains(&0) || self.classes < 2 {
            return bad("empty input shape or fewer than 2 classes".into());
        }
        if self.shared_adds > self.blocks_per_stage() {
            return bad(format!(
                "{} shared adds per stage but only {} blocks per stage",
                self.shared_adds,
                self.blocks_per_stage()
            ));
        }
        if !(2..=4).contains(&self.act.degree) {
            return bad(format!(
                "activation degree {} not in 2..=4",
                self.act.degree
            ));
        }
        if !(self.act.range.is_finite() && self.act.range > 0.0) {
            return bad(format!("activation range {} not positive", self.act.range));
        }
        if self.post_add_norm && self.family != Family::DiracShared {
            return bad("post-add normalization needs a dirac-shared network".into());
        }
        Ok(())
    }

    /// The nn crate's zoo description of this architecture (same structure,
    /// same parameter names); the initial activation is the ReLU fit.
    pub fn to_zoo(&self) -> ::nn::zoo::ZooConfig {
        let arch = match self.family {
            Family::Resnet => ::nn::zoo::Arch::ResNet,
            Family::Dirac => ::nn::zoo::Arch::Dirac,
            Family::DiracShared => ::nn::zoo::Arch::DiracShared {
                adds_per_stage: self.shared_adds,
            },
        };
        let mut z = ::nn::zoo::ZooConfig::new(
            arch,
            self.depth,
            self.in_channels,
            self.input_size,
            self.classes,
        );
        z.width = self.width;
        let r = self.act.range;
        z.act = ::nn::graph::PolyAct {
            coeffs: self
                .act
                .initial_coefficients()
                .iter()
                .enumerate()
                .map(|(k, c)| c * r.powi(1 - k as i32))
                .collect(),
            range: [-r, r],
        };
        z
    }

    /// Which blocks (0-based) of stage `stage` (0-based) end with a
    /// shared-source add: evenly spaced, always including the stage's last
    /// block; never the first block of stages 2 and 3, whose output is the
    /// stage's source (the nn zoo's rule).
    pub fn shared_add_blocks(&self, stage: usize) -> Vec<usize> {
        self.to_zoo()
            .shared_add_blocks(stage + 1)
            .into_iter()
            .map(|b| b - 1)
            .collect()
    }

    /// Builds the network with freshly initialized weights.
    pub fn init(&self, device: &Device) -> Net {
        Net::new(self, device)
    }
}

impl fmt::Display for ArchConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} width {} input {}x{}x{}",
            self.name(),
            self.width,
            self.in_channels,
            self.input_size[0],
            self.input_size[1]
        )?;
        if self.family == Family::DiracShared {
            write!(f, " adds/stage {}", self.shared_adds)?;
            if self.post_add_norm {
                write!(f, " post-add norm")?;
            }
        }
        if self.act.relu {
            return write!(f, " act relu");
        }
        write!(f, " act deg {} range {}", self.act.degree, self.act.range)
    }
}

/// Least-squares fit of ReLU on `[-1, 1]` in the power basis, degree 2..=4
/// (uniform weight; exact normal equations solved in f64).
pub fn relu_fit(degree: usize) -> Vec<f64> {
    let d = degree + 1;
    // Gram matrix G[i][j] = ∫_{-1}^{1} x^{i+j} dx, rhs r[i] = ∫_0^1 x^{i+1} dx.
    let mut g = vec![vec![0.0f64; d + 1]; d];
    for (i, row) in g.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().take(d).enumerate() {
            let k = i + j;
            *v = if k % 2 == 0 {
                2.0 / (k as f64 + 1.0)
            } else {
                0.0
            };
        }
        row[d] = 1.0 / (i as f64 + 2.0);
    }
    // Gauss-Jordan with partial pivoting.
    for c in 0..d {
        let p = (c..d)
            .max_by(|&a, &b| g[a][c].abs().total_cmp(&g[b][c].abs()))
            .unwrap_or(c);
        g.swap(c, p);
        let pv = g[c][c];
        for v in g[c].iter_mut() {
            *v /= pv;
        }
        for r in 0..d {
            if r != c {
                let f = g[r][c];
                let row_c = g[c].clone();
                for (v, vc) in g[r].iter_mut().zip(row_c) {
                    *v -= f * vc;
                }
            }
        }
    }
    g.iter().map(|row| row[d]).collect()
}

/// Polynomial activation `y = R · Σ c_k (x/R)^k` with learned `c`
/// (initialized to the least-squares ReLU fit on `[-1, 1]`, so the layer
/// starts as a ReLU approximation on `[-R, R]`).
///
/// It records, as running state, an exponential moving average of the
/// largest `|x|` seen per training batch, and its forward can return the
/// range penalty `mean(max(|x|/R - 1, 0)^2)` that keeps inputs inside the
/// range the compiler will scale into.
#[derive(Module, Debug)]
pub struct PolyAct {
    /// Coefficients `c_k` in the scaled variable `u = x / R`, constant first.
    pub poly_coef: Param<Tensor<1>>,
    /// EMA of the per-batch max `|x|`, shape `[1]`.
    pub range_ema: RunningState<Tensor<1>>,
    /// The scaling range `R`, shape `[1]`: state, not trained. Starts at
    /// the configured range; [`Net::init_act_scales`] sets it from data.
    pub scale: RunningState<Tensor<1>>,
    /// Exact ReLU instead of the polynomial ([`ActConfig::relu`]): the
    /// coefficients are then unused and there is no range penalty.
    pub relu: bool,
}

/// Weight and margin of the per-image outlier term of the range penalty
/// ([`crate::trainer::TrainConfig::outlier_penalty`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OutlierPenalty {
    /// Weight relative to the mean term (0: off).
    pub weight: f64,
    /// Margin in multiples of `R`: an image whose largest `|x|` stays
    /// under `margin · R` adds nothing.
    pub margin: f64,
}

impl Default for OutlierPenalty {
    fn default() -> Self {
        OutlierPenalty {
            weight: 0.0,
            margin: 8.0,
        }
    }
}

/// EMA factor of [`PolyAct::range_ema`].
pub const RANGE_EMA_MOMENTUM: f64 = 0.05;

impl PolyAct {
    /// A ReLU-approximating activation of `degree` on `[-range, range]`.
    pub fn new(act: &ActConfig, device: &Device) -> Self {
        let c: Vec<f32> = act
            .initial_coefficients()
            .iter()
            .map(|&v| v as f32)
            .collect();
        let n = c.len();
        PolyAct {
            poly_coef: Param::from_tensor(Tensor::from_data(TensorData::new(c, [n]), device)),
            range_ema: RunningState::new(Tensor::from_data(
                TensorData::new(vec![act.range as f32], [1]),
                device,
            )),
            scale: RunningState::new(Tensor::from_data(
                TensorData::new(vec![act.range as f32], [1]),
                device,
            )),
            relu: act.relu,
        }
    }

    /// The scaling range `R`.
    pub fn range(&self) -> f64 {
        f64::from(self.scale.value().into_scalar::<f32>())
    }

    /// Sets the scaling range `R`.
    pub fn set_range(&self, r: f64) {
        let device = self.scale.value().device();
        self.scale.update(Tensor::from_data(
            TensorData::new(vec![r as f32], [1]),
            &device,
        ));
        let _ = self.scale.value_sync();
    }

    /// Power-basis coefficients in `x` (constant first): `p_k = c_k R^{1-k}`.
    pub fn power_coefficients(&self) -> Vec<f64> {
        let c = tensor_to_f64(self.poly_coef.val());
        c.iter()
            .enumerate()
            .map(|(k, &ck)| ck * self.range().powi(1 - k as i32))
            .collect()
    }

    /// Applies the activation. With `penalty`, also returns the range
    /// penalty (shape `[1]`; none for a ReLU); in training mode (autodiff
    /// device) it updates the range EMA.
    pub fn forward(&self, x: Tensor<4>, penalty: bool) -> (Tensor<4>, Option<Tensor<1>>) {
        self.forward_penalized(x, penalty.then_some(OutlierPenalty::default()))
    }

    /// [`PolyAct::forward`] with the range penalty's per-image outlier
    /// term: with `Some(o)` the penalty is `mean(max(|x|/R - 1, 0)^2) +
    /// o.weight · mean_n(max(max|x_n|/R - o.margin, 0)^2)`, `x_n` the
    /// input of image `n` (its gradient reaches only each image's largest
    /// input).
    pub fn forward_penalized(
        &self,
        x: Tensor<4>,
        penalty: Option<OutlierPenalty>,
    ) -> (Tensor<4>, Option<Tensor<1>>) {
        if self.relu {
            return (burn::tensor::activation::relu(x), None);
        }
        let device = x.device();
        let coef = self.poly_coef.val();
        let n = coef.dims()[0];
        if device.is_autodiff() {
            let m = x.clone().detach().abs().max().reshape([1]);
            let ema = self.range_ema.value_sync().to_device(&device);
            let ema = ema
                .mul_scalar(1.0 - RANGE_EMA_MOMENTUM)
                .add(m.mul_scalar(RANGE_EMA_MOMENTUM));
            self.range_ema.update(ema.detach());
        }
        // In the power basis of x, `a_k = c_k R^{1-k}` (R is state, not
        // trained, so the gradient flows into the c_k through the a_k),
        // rather than in u = x / R: two fewer full-size tensors per
        // activation for the backward pass to keep (the scaled input and
        // the polynomial before the final `· R`).
        let r = self.range();
        let powers: Vec<f32> = (0..n).map(|k| r.powi(1 - k as i32) as f32).collect();
        let a = coef.mul(Tensor::<1>::from_data(
            TensorData::new(powers, [n]),
            &device,
        ));
        let pen = penalty.map(|o| {
            // mean(max(|x|/R - 1, 0)^2) = mean(max(|x| - R, 0)^2) / R^2
            let ax = x.clone().abs();
            let mean = ax
                .clone()
                .sub_scalar(r)
                .clamp_min(0.0)
                .square()
                .mean()
                .div_scalar(r * r)
                .reshape([1]);
            if o.weight <= 0.0 {
                return mean;
            }
            let n = x.dims()[0];
            let outlier = ax
                .reshape([n as i32, -1])
                .max_dim(1)
                .sub_scalar(o.margin * r)
                .clamp_min(0.0)
                .square()
                .mean()
                .div_scalar(r * r)
                .reshape([1]);
            mean.add(outlier.mul_scalar(o.weight))
        });
        // Horner in x.
        let a = |k: usize| a.clone().slice(k..k + 1).reshape([1, 1, 1, 1]);
        let mut y = x.clone().mul(a(n - 1)).add(a(n - 2));
        for k in (0..n - 2).rev() {
            y = y.mul(x.clone()).add(a(k));
        }
        (y, pen)
    }
}

/// A 3x3 (or 1x1) convolution without bias, optionally Dirac-parameterized,
/// followed by batch normalization.
#[derive(Module, Debug)]
pub struct ConvBn {
    /// Raw kernel `[C_out, C_in, K, K]`.
    pub weight: Param<Tensor<4>>,
    /// Dirac identity scale `a` per output channel (Dirac convs only).
    pub dirac_a: Option<Param<Tensor<1>>>,
    /// Dirac scale `b` of the normalized kernel per output channel.
    pub dirac_b: Option<Param<Tensor<1>>>,
    /// Batch normalization after the convolution.
    pub bn: BatchNorm,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

/// Initial Dirac identity scale `a`.
pub const DIRAC_A_INIT: f32 = 1.0;
/// Initial Dirac kernel scale `b`.
pub const DIRAC_B_INIT: f32 = 0.1;

impl ConvBn {
    /// A conv + BN with Kaiming-normal weights; `dirac` adds the `a, b`
    /// parameters (a = 1, b = 0.1).
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        dirac: bool,
        device: &Device,
    ) -> Self {
        let fan_in = c_in * kernel * kernel;
        let weight = Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: false,
        }
        .init_with(
            [c_out, c_in, kernel, kernel],
            Some(fan_in),
            Some(c_out * kernel * kernel),
            device,
        );
        let vec = |v: f32| {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![v; c_out], [c_out]),
                device,
            ))
        };
        ConvBn {
            weight,
            dirac_a: dirac.then(|| vec(DIRAC_A_INIT)),
            dirac_b: dirac.then(|| vec(DIRAC_B_INIT)),
            bn: BatchNormConfig::new(c_out).init(device),
            stride,
            padding: kernel / 2,
        }
    }

    /// The kernel actually convolved: the raw weight, or for Dirac convs
    /// `diag(a)·delta + diag(b)·W/||W||` (per-output-filter L2 norm).
    pub fn effective_weight(&self) -> Tensor<4> {
        let w = self.weight.val();
        match (&self.dirac_a, &self.dirac_b) {
            (Some(a), Some(b)) => {
                let device = w.device();
                let [co, ci, kh, kw] = w.dims();
                let norm = w
                    .clone()
                    .square()
                    .reshape([co, ci * kh * kw])
                    .sum_dim(1)
                    .add_scalar(1e-12)
                    .sqrt()
                    .reshape([co, 1, 1, 1]);
                let w_norm = w.div(norm);
                let delta = Tensor::from_data(dirac_delta(co, ci, kh, kw), &device);
                delta.mul(a.val().reshape([co, 1, 1, 1]))
                    + w_norm.mul(b.val().reshape([co, 1, 1, 1]))
            }
            _ => w,
        }
    }

    /// Convolution then batch normalization.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let p = self.padding;
        let y = conv2d(
            x,
            self.effective_weight(),
            None,
            ConvOptions::new([self.stride; 2], [p, p], [1, 1], 1),
        );
        self.bn.forward(y)
    }
}

/// Epsilon of [`AddNorm`] (as burn's batch norm).
pub const ADD_NORM_EPS: f64 = 1e-5;

/// Normalization after a shared-source add: per-channel centring with one
/// scale for the whole tensor,
/// `y = gamma · (x - mean_c) / sqrt(var + eps) + beta_c`, where `mean_c` is
/// the per-channel mean and `var` the variance pooled over all channels
/// (batch statistics in training, running statistics in inference).
///
/// Unlike a batch norm (one scale per channel), its inference form is a
/// uniform scale `s = gamma / sqrt(var + eps)` plus a per-channel shift:
/// the scale folds into the following polynomial activation
/// (`p(s·x)` has the same degree) and the shift into the convolution
/// feeding the add (`nn::transform::fold_affine_into_act`), so under HE it
/// costs no level and no operation. A per-channel scale would not fold: the
/// graph's polynomial activations are one polynomial per tensor, and the
/// add's other operand, the shared source, is an activation output that
/// other layers read too.
#[derive(Module, Debug)]
pub struct AddNorm {
    /// Scale, shape `[1]`.
    pub gamma: Param<Tensor<1>>,
    /// Per-channel shift `[C]`.
    pub beta: Param<Tensor<1>>,
    /// Running per-channel mean `[C]`.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running pooled variance `[1]`.
    pub running_var: RunningState<Tensor<1>>,
    /// Running-statistics EMA factor (0.1, as burn's batch norm; precise-BN
    /// recalibration changes it).
    pub momentum: f64,
}

impl AddNorm {
    /// Identity-initialized (`gamma = 1`, `beta = 0`) normalization of `c`
    /// channels.
    pub fn new(c: usize, device: &Device) -> Self {
        let v = |x: f32, n: usize| Tensor::<1>::from_data(TensorData::new(vec![x; n], [n]), device);
        AddNorm {
            gamma: Param::from_tensor(v(1.0, 1)),
            beta: Param::from_tensor(v(0.0, c)),
            running_mean: RunningState::new(v(0.0, c)),
            running_var: RunningState::new(v(1.0, 1)),
            momentum: 0.1,
        }
    }

    /// Applies the normalization (batch statistics on an autodiff device,
    /// running statistics otherwise).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        let [_, c, _, _] = x.dims();
        let (mean, var) = if device.is_autodiff() {
            let mean = x.clone().mean_dims(&[0, 2, 3]); // [1, C, 1, 1]
            let var = (x.clone() - mean.clone()).square().mean().reshape([1]);
            let m = self.momentum;
            let rm = self.running_mean.value_sync().to_device(&device);
            let rv = self.running_var.value_sync().to_device(&device);
            self.running_mean.update(
                rm.mul_scalar(1.0 - m)
                    .add(mean.clone().detach().reshape([c]).mul_scalar(m))
                    .detach(),
            );
            self.running_var.update(
                rv.mul_scalar(1.0 - m)
                    .add(var.clone().detach().mul_scalar(m))
                    .detach(),
            );
            (mean, var)
        } else {
            (
                self.running_mean
                    .value()
                    .to_device(&device)
                    .reshape([1, c, 1, 1]),
                self.running_var.value().to_device(&device),
            )
        };
        let inv = var.add_scalar(ADD_NORM_EPS).sqrt().recip();
        let scale = inv.mul(self.gamma.val()).reshape([1, 1, 1, 1]);
        (x - mean)
            .mul(scale)
            .add(self.beta.val().reshape([1, c, 1, 1]))
    }
}

/// The identity kernel `delta[o, o, kh/2, kw/2] = 1` for `o < min(co, ci)`.
pub fn dirac_delta(co: usize, ci: usize, kh: usize, kw: usize) -> TensorData {
    let mut d = vec![0f32; co * ci * kh * kw];
    for o in 0..co.min(ci) {
        d[((o * ci + o) * kh + kh / 2) * kw + kw / 2] = 1.0;
    }
    TensorData::new(d, [co, ci, kh, kw])
}

/// What the end of a block adds before its second activation.
pub const SKIP_NONE: usize = 0;
/// Identity (or projected) input of the block: a ResNet skip.
pub const SKIP_RESIDUAL: usize = 1;
/// The stage's shared source.
pub const SKIP_SHARED: usize = 2;

/// A basic block: conv-BN-act, conv-BN, (+ skip), act.
#[derive(Module, Debug)]
pub struct Block {
    /// First conv (stride 2 at stage entries of stages 2 and 3).
    pub conv1: ConvBn,
    /// First activation.
    pub act1: PolyAct,
    /// Second conv.
    pub conv2: ConvBn,
    /// 1x1 stride-2 conv + BN on the skip (ResNet, where the shape changes).
    pub proj: Option<ConvBn>,
    /// Normalization after the shared-source add (`--post-add-norm`).
    pub add_norm: Option<AddNorm>,
    /// Second activation (after the add, if any).
    pub act2: PolyAct,
    /// [`SKIP_NONE`], [`SKIP_RESIDUAL`] or [`SKIP_SHARED`].
    pub skip: usize,
    /// 1 if this block starts a stage (its input, or in stages 2 and 3 its
    /// output, becomes the stage's shared source), else 0.
    pub stage_start: usize,
}

/// The whole network: stem conv-BN-act, 3 stages of blocks, global average
/// pooling, dense.
#[derive(Module, Debug)]
pub struct Net {
    /// Stem 3x3 conv + BN (plain, never Dirac: `C_in != C_out`).
    pub stem: ConvBn,
    /// Stem activation.
    pub stem_act: PolyAct,
    /// The `3n` blocks, stage by stage.
    pub blocks: Vec<Block>,
    /// Classifier.
    pub fc: Linear,
}

/// Per-forward options and outputs beyond the logits.
#[derive(Default)]
pub struct Probe {
    /// Collect the range penalty (summed over activations).
    pub penalty: bool,
    /// With `penalty`: its per-image outlier term (weight 0: off).
    pub outlier_penalty: OutlierPenalty,
    /// If set, push the max `|x|` seen by each activation, in order (forces
    /// a device sync per activation; for calibration only).
    pub ranges: Option<Vec<f32>>,
    /// Stop recording (and skip the remaining polynomial evaluations'
    /// range bookkeeping) after this many activations; the logits are then
    /// meaningless. For [`Net::init_act_scales`].
    pub stop_after: Option<usize>,
    /// If set (together with `ranges`), also push the RMS of each
    /// activation's input.
    pub rms: Option<Vec<f32>>,
    /// If set (together with `ranges`), also push, per activation, each
    /// image's max `|x|` (`[N]`): which images of a batch leave the range.
    pub image_max: Option<Vec<Vec<f32>>>,
}

/// `v / r`, with a non-finite `v` (an overflowed input) as infinity: the
/// worst there is.
fn range_ratio(v: f32, r: f64) -> f64 {
    if v.is_finite() {
        f64::from(v) / r
    } else {
        f64::INFINITY
    }
}

impl Probe {
    /// Per image, its largest `max|x|/R` over all activations, from
    /// [`Probe::image_max`] and the activations' ranges `R` in forward
    /// order (empty without `image_max`).
    pub fn image_range_ratios(&self, ranges: &[f64]) -> Vec<f64> {
        let Some(per_act) = &self.image_max else {
            return Vec::new();
        };
        let n = per_act.first().map_or(0, Vec::len);
        let mut worst = vec![0.0f64; n];
        for (m, &r) in per_act.iter().zip(ranges) {
            for (w, &v) in worst.iter_mut().zip(m) {
                *w = w.max(range_ratio(v, r));
            }
        }
        worst
    }

    /// The largest `max|x|/R` over the activations from [`Probe::ranges`],
    /// and which activation (0-based, forward order) holds it.
    pub fn worst_range_ratio(&self, ranges: &[f64]) -> (f64, usize) {
        let per_act = self.ranges.as_deref().unwrap_or_default();
        per_act
            .iter()
            .zip(ranges)
            .map(|(&m, &r)| range_ratio(m, r))
            .enumerate()
            .fold((0.0, 0), |b, (i, q)| if q > b.0 { (q, i) } else { b })
    }
}

impl Net {
    fn new(cfg: &ArchConfig, device: &Device) -> Self {
        let dirac = cfg.family != Family::Resnet;
        let ch = cfg.stage_channels();
        let n = cfg.blocks_per_stage();
        let mut blocks = Vec::with_capacity(3 * n);
        let mut c_in = ch[0];
        for (s, &c) in ch.iter().enumerate() {
            let shared = cfg.shared_add_blocks(s);
            for i in 0..n {
                let stride = if s > 0 && i == 0 { 2 } else { 1 };
                let skip = match cfg.family {
                    Family::Resnet => SKIP_RESIDUAL,
                    Family::Dirac => SKIP_NONE,
                    Family::DiracShared if shared.contains(&i) => SKIP_SHARED,
                    Family::DiracShared => SKIP_NONE,
                };
                let proj = (cfg.family == Family::Resnet && (stride != 1 || c_in != c))
                    .then(|| ConvBn::new(c_in, c, 1, stride, false, device));
                let add_norm =
                    (cfg.post_add_norm && skip == SKIP_SHARED).then(|| AddNorm::new(c, device));
                blocks.push(Block {
                    conv1: ConvBn::new(c_in, c, 3, stride, dirac, device),
                    act1: PolyAct::new(&cfg.act, device),
                    conv2: ConvBn::new(c, c, 3, 1, dirac, device),
                    proj,
                    add_norm,
                    act2: PolyAct::new(&cfg.act, device),
                    skip,
                    stage_start: usize::from(i == 0),
                });
                c_in = c;
            }
        }
        Net {
            stem: ConvBn::new(cfg.in_channels, ch[0], 3, 1, false, device),
            stem_act: PolyAct::new(&cfg.act, device),
            blocks,
            fc: LinearConfig::new(ch[2], cfg.classes).init(device),
        }
    }

    /// Logits `[N, classes]` for images `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_probe(x, &mut Probe::default()).0
    }

    /// Forward pass returning the logits and, if `probe.penalty`, the summed
    /// range penalty of all activations.
    pub fn forward_probe(&self, x: Tensor<4>, probe: &mut Probe) -> (Tensor<2>, Option<Tensor<1>>) {
        let mut pen: Option<Tensor<1>> = None;
        let mut act = |a: &PolyAct, x: Tensor<4>, probe: &mut Probe| {
            if let Some(r) = probe.ranges.as_mut()
                && probe.stop_after.is_none_or(|k| r.len() < k)
            {
                if let Some(q) = probe.image_max.as_mut() {
                    // The batch max is the largest image max (NaN, an
                    // overflow, propagating as in `max`): one pass, one sync.
                    let n = x.dims()[0];
                    let m = x.clone().abs().reshape([n as i32, -1]).max_dim(1);
                    let m: Vec<f32> = m.into_data().iter::<f32>().collect();
                    r.push(m.iter().fold(0.0f32, |a, &v| {
                        if a.is_nan() || v.is_nan() {
                            f32::NAN
                        } else {
                            a.max(v)
                        }
                    }));
                    q.push(m);
                } else {
                    r.push(x.clone().abs().max().into_scalar::<f32>());
                }
                if let Some(q) = probe.rms.as_mut() {
                    q.push(x.clone().square().mean().sqrt().into_scalar::<f32>());
                }
            }
            let (y, p) = a.forward_penalized(x, probe.penalty.then_some(probe.outlier_penalty));
            if let Some(p) = p {
                pen = Some(match pen.take() {
                    Some(q) => q + p,
                    None => p,
                });
            }
            y
        };
        let mut h = act(&self.stem_act, self.stem.forward(x), probe);
        let mut source = h.clone();
        for b in &self.blocks {
            if b.stage_start == 1 {
                source = h.clone();
            }
            let y1 = act(&b.act1, b.conv1.forward(h.clone()), probe);
            let mut z = b.conv2.forward(y1);
            match b.skip {
                SKIP_RESIDUAL => {
                    z = z + match &b.proj {
                        Some(p) => p.forward(h),
                        None => h,
                    };
                }
                SKIP_SHARED => z = z + source.clone(),
                _ => {}
            }
            if let Some(an) = &b.add_norm {
                z = an.forward(z);
            }
            h = act(&b.act2, z, probe);
            if b.stage_start == 1 && b.conv1.stride != 1 {
                // Stages 2 and 3: the source is the stage's input after its
                // downsampling, i.e. the output of the stride-2 first block.
                source = h.clone();
            }
        }
        let [n, c, _, _] = h.dims();
        let pooled = h.mean_dims(&[2, 3]).reshape([n, c]);
        (self.fc.forward(pooled), pen)
    }

    /// Data-dependent initialization of the activation ranges: for each
    /// activation in forward order, runs `x` through the network (train-mode
    /// batch norm when `x` is on an autodiff device) and sets its range `R`
    /// to `factor` times the max `|input|` it sees, capped at `rms_cap`
    /// times the input's RMS when `rms_cap > 0` (Dirac chains make the
    /// inputs heavy-tailed: max/RMS reaches 100 at depth 20, and a range set
    /// by such outliers leaves the polynomial nearly linear on typical
    /// inputs), and at least `floor`, so
    /// that every activation starts as a ReLU approximation on the range it
    /// actually receives. Without this, deep post-activation ResNets with
    /// quadratic activations blow up at initialization (the residual stream
    /// leaves the range and the polynomial compounds).
    pub fn init_act_scales(&self, x: Tensor<4>, factor: f64, rms_cap: f64, floor: f64) -> Vec<f64> {
        let n = self.activations().len();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let mut probe = Probe {
                ranges: Some(Vec::new()),
                stop_after: Some(i + 1),
                rms: Some(Vec::new()),
                ..Probe::default()
            };
            let (y, _) = self.forward_probe(x.clone(), &mut probe);
            // 19 of these graphs held 3.4 GiB until session 24.
            free_graph(y);
            let at = |v: Option<Vec<f32>>| {
                f64::from(v.unwrap_or_default().get(i).copied().unwrap_or(0.0))
            };
            let mut m = at(probe.ranges);
            let rms = at(probe.rms);
            if rms_cap > 0.0 {
                m = m.min(rms_cap * rms);
            }
            let r = (m * factor).max(floor);
            self.activations()[i].set_range(r);
            out.push(r);
        }
        out
    }

    /// Every batch norm, mutable (stem, then per block bn1, bn2, projection).
    pub fn batch_norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        let mut v = vec![&mut self.stem.bn];
        for b in &mut self.blocks {
            v.push(&mut b.conv1.bn);
            v.push(&mut b.conv2.bn);
            if let Some(p) = &mut b.proj {
                v.push(&mut p.bn);
            }
        }
        v
    }

    /// Sets the running-statistics EMA factor of every batch norm and
    /// post-add normalization (precise-BN recalibration uses `1/(k+1)`).
    pub fn set_norm_momentum(&mut self, momentum: f64) {
        for bn in self.batch_norms_mut() {
            bn.momentum = momentum;
        }
        for b in &mut self.blocks {
            if let Some(an) = &mut b.add_norm {
                an.momentum = momentum;
            }
        }
    }

    /// All activations in forward order (stem, then act1/act2 per block).
    pub fn activations(&self) -> Vec<&PolyAct> {
        let mut v = vec![&self.stem_act];
        for b in &self.blocks {
            v.push(&b.act1);
            v.push(&b.act2);
        }
        v
    }
}

/// Frees the autodiff graph behind `t` (on the autodiff device) without
/// using it: burn releases a graph on a backward pass, not when its tensors
/// are dropped, so a forward pass that needs no gradients (a probe, a BN
/// recalibration, a skipped step) ends here. The gradients are discarded;
/// no parameter or running state changes.
pub fn free_graph<const D: usize>(t: Tensor<D>) {
    let _ = t.sum().backward();
}

/// Copies a tensor's values out as f64.
pub fn tensor_to_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
        .into_iter()
        .map(f64::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_fit_degree2_is_known() {
        let c = relu_fit(2);
        let want = [3.0 / 32.0, 0.5, 15.0 / 32.0];
        for (a, b) in c.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{c:?}");
        }
        // Higher degree fits are closer to ReLU at 0.5.
        let eval = |c: &[f64], x: f64| c.iter().rev().fold(0.0, |acc, &k| acc * x + k);
        assert!((eval(&relu_fit(4), 0.5) - 0.5).abs() < (eval(&c, 0.5) - 0.5).abs());
    }

    #[test]
    fn near_identity_init() {
        let act = ActConfig {
            degree: 3,
            range: 2.0,
            near_identity: Some(0.1),
            relu: false,
        };
        assert_eq!(act.initial_coefficients(), vec![0.0, 1.0, 0.1, 0.0]);
        let z = ArchConfig {
            act,
            ..ArchConfig::from_name("dirac8", [1, 8, 8]).unwrap()
        }
        .to_zoo();
        // Power basis in x: x + 0.1 x^2 / R.
        assert_eq!(z.act.coeffs, vec![0.0, 1.0, 0.05, 0.0]);
    }

    #[test]
    fn names_parse() {
        let a = ArchConfig::from_name("dirac-shared20", [1, 28, 28]).unwrap();
        assert_eq!(a.family, Family::DiracShared);
        assert_eq!(a.depth, 20);
        assert_eq!(a.shared_adds, 3);
        assert_eq!(a.name(), "dirac-shared20");
        assert_eq!(a.shared_add_blocks(0), vec![0, 1, 2]);
        assert_eq!(a.shared_add_blocks(1), vec![1, 2]);
        let mut b = a.clone();
        b.shared_adds = 1;
        assert_eq!(b.shared_add_blocks(0), vec![2]);
        assert_eq!(b.shared_add_blocks(2), vec![2]);
        b.shared_adds = 2;
        assert_eq!(b.shared_add_blocks(0), vec![1, 2]);
        assert_eq!(
            ArchConfig::from_name("ResNet-56", [3, 32, 32])
                .unwrap()
                .depth,
            56
        );
        assert!(ArchConfig::from_name("resnet21", [1, 28, 28]).is_err());
        assert!(ArchConfig::from_name("vgg16", [1, 28, 28]).is_err());
    }

    #[test]
    fn shapes_and_dirac_identity() {
        let device = Device::flex();
        for name in ["resnet8", "dirac8", "dirac-shared8"] {
            let cfg = ArchConfig::from_name(name, [1, 12, 12]).unwrap();
            let net = cfg.init(&device);
            let x = Tensor::<4>::random(
                [2, 1, 12, 12],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            );
            assert_eq!(net.forward(x).dims(), [2, 10], "{name}");
        }
        // A Dirac conv with b = 0 and a = 1 is the identity.
        let mut c = ConvBn::new(3, 3, 3, 1, true, &device);
        c.dirac_b = Some(Param::from_tensor(Tensor::zeros([3], &device)));
        let x = Tensor::<4>::random(
            [1, 3, 5, 5],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let y = conv2d(
            x.clone(),
            c.effective_weight(),
            None,
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        );
        let d: f64 = tensor_to_f64((y - x).abs().max())[0];
        assert!(d < 1e-6);
    }

    /// The probe's per-image maxima: one `[N]` vector per activation whose
    /// largest entry is that activation's batch max, and an image scaled
    /// up 3x in the batch is the one that holds the stem activation's max.
    #[test]
    fn probe_image_max_finds_the_outlier_image() {
        let device = Device::flex();
        let cfg = ArchConfig::from_name("dirac-shared8", [1, 12, 12]).unwrap();
        let net = cfg.init(&device).valid();
        let x = Tensor::<4>::random(
            [4, 1, 12, 12],
            burn::tensor::Distribution::Normal(0.0, 0.01),
            &device,
        );
        // Small inputs: the untrained polynomials square what they get, so
        // unit inputs overflow f32 within 8 layers.
        let scale = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 1.0, 3.0, 1.0], [4, 1, 1, 1]),
            &device,
        );
        let mut probe = Probe {
            ranges: Some(Vec::new()),
            image_max: Some(Vec::new()),
            ..Probe::default()
        };
        let _ = net.forward_probe(x * scale, &mut probe);
        let ranges = probe.ranges.unwrap();
        let per_image = probe.image_max.unwrap();
        assert_eq!(per_image.len(), net.activations().len());
        assert_eq!(ranges.len(), per_image.len());
        for (i, (r, m)) in ranges.iter().zip(&per_image).enumerate() {
            assert_eq!(m.len(), 4);
            let top = m.iter().copied().fold(f32::MIN, f32::max);
            assert!(
                r.is_finite() && m.iter().all(|v| v.is_finite()),
                "{m:?} {ranges:?}"
            );
            assert!((top - r).abs() <= 1e-6 * r.abs().max(1.0), "{top} vs {r}");
            let arg = m
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            // The stem's input is linear in the image (conv, then batch
            // norm at its initial statistics); deeper inputs of an
            // untrained net can be near-constant across images.
            if i == 0 {
                assert_eq!(arg, 2, "{m:?}");
            }
        }
    }

    /// The range penalty's outlier term: only an image whose largest input
    /// passes `margin · R` adds to it, by `weight · (max/R - margin)^2 / N`,
    /// and its gradient reaches that one input only.
    #[test]
    fn outlier_term_penalizes_only_images_past_the_margin() {
        let device = Device::flex().autodiff();
        let a = PolyAct::new(&ActConfig::default(), &device);
        a.set_range(2.0);
        // 3 images of 4 inputs; image 1 reaches 3 R (under the margin),
        // image 2 has one input at 20 R (-40).
        let xs = vec![
            0.5f32, -1.0, 1.5, 0.2, //
            6.0, -2.0, 1.0, 0.0, //
            1.0, -40.0, 0.5, 3.0,
        ];
        let x = || {
            Tensor::<4>::from_data(TensorData::new(xs.clone(), [3, 1, 2, 2]), &device)
                .require_grad()
        };
        let o = OutlierPenalty {
            weight: 0.5,
            margin: 8.0,
        };
        let x0 = x();
        let (_, p0) = a.forward(x0.clone(), true);
        let x1 = x();
        let (_, p1) = a.forward_penalized(x1.clone(), Some(o));
        let (p0, p1) = (p0.unwrap(), p1.unwrap());
        let want = 0.5 * (20.0f64 - 8.0).powi(2) / 3.0;
        let got = tensor_to_f64(p1.clone())[0] - tensor_to_f64(p0.clone())[0];
        assert!((got - want).abs() < 1e-4 * want, "{got} vs {want}");
        let g0 = tensor_to_f64(x0.grad(&p0.sum().backward()).unwrap());
        let g1 = tensor_to_f64(x1.grad(&p1.sum().backward()).unwrap());
        for (i, (a, b)) in g0.iter().zip(&g1).enumerate() {
            // d/dx of 0.5 (|x|/R - 8)^2 / 3 at x = -40, R = 2: -(12 / 3) / 2.
            let extra = if i == 9 { -2.0 } else { 0.0 };
            assert!((b - a - extra).abs() < 1e-5, "input {i}: {a} -> {b}");
        }
        // A margin above every image: the mean term alone.
        let (_, p2) = a.forward_penalized(
            x(),
            Some(OutlierPenalty {
                weight: 0.5,
                margin: 25.0,
            }),
        );
        assert_eq!(
            tensor_to_f64(p2.unwrap()),
            tensor_to_f64(a.forward(x(), true).1.unwrap())
        );
    }

    /// The power-basis forward (session 22) computes what the scaled-basis
    /// one it replaced did, `R · p(x / R)` and the penalty
    /// `mean(max(|x|/R - 1, 0)^2)`, with the same gradients in `x` and the
    /// coefficients, to 1e-5 relative in f32.
    #[test]
    fn poly_act_power_basis_matches_the_scaled_form() {
        let device = Device::flex().autodiff();
        for (degree, r) in [(2usize, 4.0f64), (3, 7.5), (4, 0.8)] {
            let act = ActConfig {
                degree,
                range: r,
                near_identity: Some(0.2),
                relu: false,
            };
            let a = PolyAct::new(&act, &device);
            let c0: Vec<f32> = (0..=degree).map(|k| 0.3 - 0.17 * k as f32).collect();
            let coef = Param::from_tensor(Tensor::<1>::from_data(
                TensorData::new(c0.clone(), [degree + 1]),
                &device,
            ));
            let a = PolyAct {
                poly_coef: coef,
                ..a
            };
            let xs: Vec<f32> = (0..24)
                .map(|i| (i as f32 - 11.5) * r as f32 / 6.0)
                .collect();
            let x = || {
                Tensor::<4>::from_data(TensorData::new(xs.clone(), [1, 2, 3, 4]), &device)
                    .require_grad()
            };
            // The new forward.
            let x1 = x();
            let (y1, p1) = a.forward(x1.clone(), true);
            let l1 = y1.clone().square().mean() + p1.unwrap().sum();
            let g1 = l1.backward();
            // The scaled form, written out.
            let x2 = x();
            let c = a.poly_coef.val();
            let u = x2.clone().div_scalar(r);
            let mut y2 = u
                .clone()
                .mul(c.clone().slice(degree..degree + 1).reshape([1, 1, 1, 1]));
            for k in (0..degree).rev() {
                y2 = y2.add(c.clone().slice(k..k + 1).reshape([1, 1, 1, 1]));
                if k > 0 {
                    y2 = y2.mul(u.clone());
                }
            }
            let y2 = y2.mul_scalar(r);
            let p2 = u.abs().sub_scalar(1.0).clamp_min(0.0).square().mean();
            let l2 = y2.clone().square().mean() + p2.sum();
            let g2 = l2.backward();
            let close = |a: Vec<f64>, b: Vec<f64>, what: &str| {
                let scale = b.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
                for (u, v) in a.iter().zip(&b) {
                    assert!(
                        (u - v).abs() < 1e-5 * scale,
                        "degree {degree} {what}: {a:?} {b:?}"
                    );
                }
            };
            close(tensor_to_f64(y1), tensor_to_f64(y2), "output");
            close(
                tensor_to_f64(x1.grad(&g1).unwrap()),
                tensor_to_f64(x2.grad(&g2).unwrap()),
                "input gradient",
            );
            let pc = a.poly_coef.val();
            close(
                tensor_to_f64(pc.grad(&g1).unwrap()),
                tensor_to_f64(pc.grad(&g2).unwrap()),
                "coefficient gradient",
            );
        }
    }

    #[test]
    fn poly_act_starts_near_relu() {
        let device = Device::flex();
        let a = PolyAct::new(&ActConfig::default(), &device);
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![-4.0f32, 0.0, 2.0, 4.0], [1, 1, 1, 4]),
            &device,
        );
        let (y, _) = a.forward(x, false);
        let y = tensor_to_f64(y);
        // R * (3/32 + u/2 + 15/32 u^2) at u = -1, 0, 0.5, 1.
        let want = [0.25, 0.375, 1.84375, 4.25];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{y:?}");
        }
        let p = a.power_coefficients();
        assert!((p[0] - 0.375).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6);
        assert!((p[2] - 15.0 / 128.0).abs() < 1e-6);
    }
}

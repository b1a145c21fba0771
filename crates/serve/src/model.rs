//! The model a server serves: its plan, bound to the model's weights, with
//! what a client needs to know for key generation and encryption.

use std::sync::Arc;

use compiler::plan::CompiledPlan;
use runtime::Prepared;
use runtime::client::KeyNeeds;
use serde::{Deserialize, Serialize};

/// The evaluation keys a plan needs, as sent to clients (`GET /v1/info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyNeedsWire {
    /// `(rotation step, highest level it is used at)`.
    pub rotations: Vec<(i64, usize)>,
    /// Whether a relinearization key is needed.
    pub relin: bool,
    /// Whether the plan bootstraps (bootstrapping keys are needed).
    pub bootstrap: bool,
    /// Slots per ciphertext (the plan's packing; bootstrapping keys are
    /// made for this count).
    pub slots: usize,
}

impl From<&KeyNeeds> for KeyNeedsWire {
    fn from(k: &KeyNeeds) -> Self {
        Self {
            rotations: k.rotations.iter().map(|(&a, &b)| (a, b)).collect(),
            relin: k.relin,
            bootstrap: k.bootstrap,
            slots: k.slots,
        }
    }
}

impl From<&KeyNeedsWire> for KeyNeeds {
    fn from(k: &KeyNeedsWire) -> Self {
        Self {
            rotations: k.rotations.iter().copied().collect(),
            relin: k.relin,
            bootstrap: k.bootstrap,
            slots: k.slots,
        }
    }
}

/// What a client learns about a served model (`GET /v1/info`, one entry
/// of `GET /v1/models`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The model's name on this server (`?model=NAME`).
    pub model: String,
    /// Hex SHA-256 of the plan (inputs must name it).
    pub plan_hash: String,
    /// Parameter set.
    pub params: String,
    /// Whether the parameter set is an insecure test set.
    pub insecure: bool,
    /// Input shape `[C, H, W]`.
    pub input_shape: [usize; 3],
    /// Steps of the plan.
    pub steps: usize,
    /// Ciphertext bootstraps per inference.
    pub bootstraps: u64,
    /// The evaluation keys to upload.
    pub key_needs: KeyNeedsWire,
    /// Most bytes of a key upload.
    pub max_key_bytes: u64,
    /// Most bytes of an encrypted input.
    pub max_input_bytes: u64,
}

/// A plan bound to its model, ready to serve.
pub struct ServedModel {
    /// Its name on this server.
    pub name: String,
    /// The plan.
    pub plan: CompiledPlan,
    /// The plan as JSON (served verbatim).
    pub plan_json: String,
    /// Its hash.
    pub plan_hash: String,
    /// Its parameter set.
    pub params: Arc<ckks::Params>,
    /// The validated plan with weights.
    pub prep: Arc<Prepared>,
    /// The keys it needs.
    pub needs: KeyNeeds,
    /// Most bytes of an encrypted input: header, metadata and the layout's
    /// ciphertexts at the set's top level.
    pub max_input_bytes: u64,
    /// Bootstrapping's encoded diagonals, shared by every client's backend
    /// (made with the first).
    pub transforms: runtime::server::SharedTransforms,
}

impl ServedModel {
    /// Binds `plan` (already checked against `params`) to `model`, and
    /// finds the keys it needs.
    pub fn new(
        name: &str,
        plan: CompiledPlan,
        params: Arc<ckks::Params>,
        model: &nn::Graph,
    ) -> runtime::Result<Self> {
        let prep = Prepared::new(&plan, model, &params)?;
        let needs = runtime::client::key_needs(&prep, &params)?;
        let cts = plan.nodes[0].layout_out.cts() as u64;
        let ct = ckks::serialize::ciphertext_size(&params, params.max_level(), 2) as u64;
        let max_input_bytes = 11 + runtime::files::MAX_META as u64 + 4 + cts * (8 + ct);
        Ok(Self {
            name: name.to_string(),
            plan_json: plan.to_json(),
            plan_hash: runtime::prepare::plan_hash(&plan),
            plan,
            params,
            prep: Arc::new(prep),
            needs,
            max_input_bytes,
            transforms: Default::default(),
        })
    }

    /// What a client learns about it.
    pub fn info(&self, max_key_bytes: u64) -> ServerInfo {
        ServerInfo {
            model: self.name.clone(),
            plan_hash: self.plan_hash.clone(),
            params: self.params.name().to_string(),
            insecure: self
                .params
                .name()
                .starts_with(ckks::params::INSECURE_PREFIX),
            input_shape: self.input_shape(),
            steps: self.plan.nodes.len(),
            bootstraps: self.plan.bootstraps,
            key_needs: KeyNeedsWire::from(&self.needs),
            max_key_bytes,
            max_input_bytes: self.max_input_bytes,
        }
    }

    /// The input shape `[C, H, W]`.
    pub fn input_shape(&self) -> [usize; 3] {
        let l = &self.plan.nodes[0].layout_out;
        [l.channels, l.height, l.width]
    }
}

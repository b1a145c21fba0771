//! Bootstrapping keys: the s -> s' and s' -> s switching keys, each checked
//! for the level it must have.

use super::keys::{
    check_switching_key_at, check_top_switching_key, read_switching_key, read_top_switching_key,
    switching_key_body_size, write_switching_key,
};
use super::{Body, Input, ObjectKind};
use crate::bootstrap::BootstrapKeys;
use crate::error::{CkksError, Result};
use crate::params::Params;
use std::io::{self, Read, Write};
use std::sync::Arc;

/// Bootstrapping keys: the s -> s' key (level 0: it lives modulo q_0 * P
/// only, which the reader enforces) and the s' -> s key (top level).
impl Body for BootstrapKeys {
    const KIND: ObjectKind = ObjectKind::BootstrapKeys;

    fn check(&self, params: &Params) -> Result<()> {
        if self.params_id != params.id {
            return Err(CkksError::ParamsMismatch);
        }
        check_switching_key_at(&self.to_sparse, params, 0, "to-sparse key")?;
        check_top_switching_key(&self.from_sparse, params, "from-sparse key")
    }

    fn body_size(&self, params: &Params) -> usize {
        switching_key_body_size(params, 0, false)
            + switching_key_body_size(params, params.max_level(), false)
    }

    fn write_body<W: Write>(&self, params: &Params, w: &mut W) -> io::Result<()> {
        write_switching_key(&self.to_sparse, None, params, w)?;
        write_switching_key(&self.from_sparse, None, params, w)
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        _kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        // the sparse secret may only be used modulo q_0 * P
        let (to_sparse, _) = read_switching_key(inp, params, false, "to-sparse key")?;
        check_switching_key_at(&to_sparse, params, 0, "to-sparse key")?;
        let (from_sparse, _) = read_top_switching_key(inp, params, false, "from-sparse key")?;
        // both keys' shapes and levels were checked as they were read
        Ok(BootstrapKeys {
            to_sparse,
            from_sparse,
            params_id: params.id,
        })
    }
}

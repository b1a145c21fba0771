//! Parameter set references: name, id, log N, log scale and the primes,
//! checked against the set this build knows.

use super::{
    Input, ObjectKind, header_size, id_mismatch, malformed, read_header, to_io, write_header,
};
use crate::error::Result;
use crate::params::{self, Params};
use std::io::{self, Read, Write};
use std::sync::Arc;

/// Bytes of a serialized parameter set reference.
pub fn params_size(params: &Params) -> usize {
    header_size(params) + 4 + (params.q.len() + params.p.len()) * 8
}

/// Writes a reference to `params`: its name, id and primes.
pub fn write_params<W: Write>(params: &Params, w: &mut W) -> io::Result<()> {
    let (nq, np) = (params.q.len(), params.p.len());
    if nq > u8::MAX as usize || np > u8::MAX as usize {
        return Err(to_io(malformed("too many primes for the format")));
    }
    write_header(w, ObjectKind::Params, params)?;
    w.write_all(&[
        params.literal.log_n as u8,
        params.literal.log_scale as u8,
        nq as u8,
        np as u8,
    ])?;
    for &x in params.q.iter().chain(&params.p) {
        w.write_all(&x.to_le_bytes())?;
    }
    Ok(())
}

/// The serialized reference to `params`.
pub fn params_to_bytes(params: &Params) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(params_size(params));
    write_params(params, &mut out).map_err(|e| malformed(format!("write failed: {e}")))?;
    Ok(out)
}

/// Reads a parameter set reference from a stream and instantiates the named
/// set, checking that its id and every field match.
pub fn read_params<R: Read>(r: &mut R) -> Result<Arc<Params>> {
    let mut inp = Input::stream(r);
    read_params_inner(&mut inp, None)
}

/// Reads a parameter set reference that must fill `bytes` exactly and
/// instantiates the named set, checking that its id and every field match.
pub fn params_from_bytes(bytes: &[u8]) -> Result<Arc<Params>> {
    let mut inp = Input::slice(bytes);
    let p = read_params_inner(&mut inp, None)?;
    inp.finish()?;
    Ok(p)
}

/// Checks that `bytes` is a reference to exactly `params` (no instantiation).
pub fn check_params_bytes(bytes: &[u8], params: &Arc<Params>) -> Result<()> {
    let mut inp = Input::slice(bytes);
    read_params_inner(&mut inp, Some(params))?;
    inp.finish()
}

fn read_params_inner<R: Read>(
    inp: &mut Input<R>,
    expected: Option<&Arc<Params>>,
) -> Result<Arc<Params>> {
    let h = read_header(inp)?;
    if h.kind != ObjectKind::Params {
        return Err(malformed(format!(
            "expected a {}, found a {}",
            ObjectKind::Params,
            h.kind
        )));
    }
    let [log_n, log_scale, nq, np] = inp.array::<4>("parameter fields")?;
    let (nq, np) = (nq as usize, np as usize);
    inp.need((nq + np) * 8, "parameter primes")?;
    let mut primes = Vec::with_capacity(nq + np);
    for _ in 0..nq + np {
        primes.push(inp.u64("parameter prime")?);
    }
    // Compare against the literal before instantiating anything.
    let lit = match expected {
        Some(p) => &p.literal,
        None => params::literal(&h.params_name).map_err(|_| {
            malformed(format!(
                "unknown parameter set `{}`",
                h.params_name.escape_debug()
            ))
        })?,
    };
    if lit.name != h.params_name
        || lit.log_n != log_n as u32
        || lit.log_scale != log_scale as u32
        || lit.q_bits.len() != nq
        || lit.p_bits.len() != np
    {
        return Err(malformed(format!(
            "parameter reference does not match the set `{}` this build knows",
            lit.name
        )));
    }
    let p = match expected {
        Some(p) => p.clone(),
        None => Params::named(lit.name)?,
    };
    if p.id != h.params_id {
        return Err(id_mismatch(h.params_id, &p));
    }
    if p.q[..] != primes[..nq] || p.p[..] != primes[nq..] {
        return Err(malformed(format!(
            "parameter reference lists different primes from the set `{}`",
            p.name()
        )));
    }
    Ok(p)
}

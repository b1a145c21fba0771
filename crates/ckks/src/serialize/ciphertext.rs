//! Plaintexts and ciphertexts: level u32, slots u32, scale (f64 bits), for a
//! ciphertext its degree u8, then the polynomials of level + 1 limbs; their
//! sizes, and the checks of level, slot count and scale.

use super::poly::{check_poly, write_poly};
use super::{Body, Input, ObjectKind, header_size, malformed};
use crate::ciphertext::Ciphertext;
use crate::encoding::Plaintext;
use crate::error::{CkksError, Result};
use crate::params::Params;
use std::io::{self, Read, Write};
use std::sync::Arc;

/// Bytes of a serialized ciphertext at `level` with `degree` (1 or 2).
pub fn ciphertext_size(params: &Params, level: usize, degree: usize) -> usize {
    header_size(params) + 17 + (degree + 1) * (level + 1) * params.n * 8
}

/// Bytes of a serialized plaintext at `level`.
pub fn plaintext_size(params: &Params, level: usize) -> usize {
    header_size(params) + 16 + (level + 1) * params.n * 8
}

fn check_level(params: &Params, level: u64) -> Result<usize> {
    if level > params.max_level() as u64 {
        return Err(malformed(format!(
            "level {level} above the maximum {} of `{}`",
            params.max_level(),
            params.name()
        )));
    }
    Ok(level as usize)
}

fn check_slots(params: &Params, slots: u64) -> Result<usize> {
    if slots == 0 || !slots.is_power_of_two() || slots > params.max_slots() as u64 {
        return Err(malformed(format!(
            "slot count {slots} is not a power of two in 1..={}",
            params.max_slots()
        )));
    }
    Ok(slots as usize)
}

fn check_scale(scale: f64) -> Result<f64> {
    if !scale.is_finite() || scale < 1.0 {
        return Err(malformed(format!("scale {scale} is not finite and >= 1")));
    }
    Ok(scale)
}

impl Body for Plaintext {
    const KIND: ObjectKind = ObjectKind::Plaintext;

    fn check(&self, params: &Params) -> Result<()> {
        if self.params_id != params.id {
            return Err(CkksError::ParamsMismatch);
        }
        check_level(params, self.level as u64)?;
        check_slots(params, self.slots as u64)?;
        check_scale(self.scale)?;
        check_poly(&self.poly, params, self.level + 1, "plaintext")
    }

    fn body_size(&self, params: &Params) -> usize {
        plaintext_size(params, self.level) - header_size(params)
    }

    fn write_body<W: Write>(&self, _params: &Params, w: &mut W) -> io::Result<()> {
        w.write_all(&(self.level as u32).to_le_bytes())?;
        w.write_all(&(self.slots as u32).to_le_bytes())?;
        w.write_all(&self.scale.to_bits().to_le_bytes())?;
        write_poly(w, &self.poly)
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        _kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        let level = check_level(params, inp.u32("plaintext level")? as u64)?;
        let slots = check_slots(params, inp.u32("plaintext slots")? as u64)?;
        let scale = check_scale(f64::from_bits(inp.u64("plaintext scale")?))?;
        let poly = inp.poly(params, &params.q_idx(level), "plaintext polynomial")?;
        Ok(Plaintext {
            poly,
            level,
            scale,
            slots,
            params_id: params.id,
        })
    }
}

impl Body for Ciphertext {
    const KIND: ObjectKind = ObjectKind::Ciphertext;

    fn check(&self, params: &Params) -> Result<()> {
        if self.params_id != params.id {
            return Err(CkksError::ParamsMismatch);
        }
        check_level(params, self.level as u64)?;
        check_slots(params, self.slots as u64)?;
        check_scale(self.scale)?;
        if !(2..=3).contains(&self.c.len()) {
            return Err(malformed(format!(
                "ciphertext has {} components, expected 2 or 3",
                self.c.len()
            )));
        }
        self.c
            .iter()
            .try_for_each(|p| check_poly(p, params, self.level + 1, "ciphertext"))
    }

    fn body_size(&self, params: &Params) -> usize {
        ciphertext_size(params, self.level, self.c.len().saturating_sub(1)) - header_size(params)
    }

    fn write_body<W: Write>(&self, _params: &Params, w: &mut W) -> io::Result<()> {
        w.write_all(&(self.level as u32).to_le_bytes())?;
        w.write_all(&(self.slots as u32).to_le_bytes())?;
        w.write_all(&self.scale.to_bits().to_le_bytes())?;
        w.write_all(&[(self.c.len() - 1) as u8])?;
        self.c.iter().try_for_each(|p| write_poly(w, p))
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        _kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        let level = check_level(params, inp.u32("ciphertext level")? as u64)?;
        let slots = check_slots(params, inp.u32("ciphertext slots")? as u64)?;
        let scale = check_scale(f64::from_bits(inp.u64("ciphertext scale")?))?;
        let degree = inp.u8("ciphertext degree")? as usize;
        if !(1..=2).contains(&degree) {
            return Err(malformed(format!(
                "ciphertext degree {degree}, expected 1 or 2"
            )));
        }
        let idx = params.q_idx(level);
        inp.need(
            (degree + 1) * idx.len() * params.n * 8,
            "ciphertext polynomials",
        )?;
        let c = (0..=degree)
            .map(|i| inp.poly(params, &idx, &format!("ciphertext component {i}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Ciphertext {
            c,
            level,
            scale,
            slots,
            params_id: params.id,
        })
    }
}

//! Polynomials: one limb after the other, N little-endian u64 coefficients
//! each, every coefficient below its limb's prime. The bounded reader of a
//! polynomial (which checks every coefficient), the writer, and the shape
//! check of a polynomial held in memory.

use super::{Input, malformed};
use crate::error::Result;
use crate::params::Params;
use crate::ring::Poly;
use std::io::{self, Read, Write};
use zeroize::{Zeroize, Zeroizing};

impl<R: Read> Input<R> {
    /// Reads a polynomial whose limb k lies modulo ring prime `idx[k]`,
    /// checking every coefficient. Temporary buffers are zeroized, so this
    /// is safe for secret material; on error the partial data is zeroized.
    pub(super) fn poly(&mut self, params: &Params, idx: &[usize], what: &str) -> Result<Poly> {
        let n = params.n;
        let total = idx
            .len()
            .checked_mul(n)
            .ok_or_else(|| malformed("size overflow"))?;
        self.need(total.saturating_mul(8), what)?;
        let mut data: Zeroizing<Vec<u64>> = Zeroizing::new(Vec::with_capacity(total));
        let mut buf: Zeroizing<Vec<u8>> = Zeroizing::new(vec![0u8; n * 8]);
        for (k, &mi) in idx.iter().enumerate() {
            self.fill(&mut buf, what)?;
            let q = params.ring.moduli[mi].value;
            for (j, ch) in buf.chunks_exact(8).enumerate() {
                let mut b = [0u8; 8];
                b.copy_from_slice(ch);
                let x = u64::from_le_bytes(b);
                b.zeroize();
                if x >= q {
                    return Err(malformed(format!(
                        "{what}: coefficient {j} of limb {k} is not below its modulus {q}"
                    )));
                }
                data.push(x);
            }
        }
        Ok(Poly {
            n,
            data: std::mem::take(&mut *data),
        })
    }
}

/// Writes a polynomial limb by limb through a zeroized scratch buffer.
pub(super) fn write_poly<W: Write>(w: &mut W, p: &Poly) -> io::Result<()> {
    let mut buf: Zeroizing<Vec<u8>> = Zeroizing::new(vec![0u8; p.n * 8]);
    for limb in p.data.chunks(p.n) {
        for (o, &x) in buf.chunks_exact_mut(8).zip(limb) {
            o.copy_from_slice(&x.to_le_bytes());
        }
        w.write_all(&buf[..limb.len() * 8])?;
    }
    Ok(())
}

pub(super) fn check_poly(p: &Poly, params: &Params, limbs: usize, what: &str) -> Result<()> {
    if p.n != params.n || p.data.len() != limbs * params.n {
        return Err(malformed(format!(
            "{what}: holds {} coefficients of degree {}, expected {limbs} limbs of degree {}",
            p.data.len(),
            p.n,
            params.n
        )));
    }
    Ok(())
}

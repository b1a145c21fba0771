//! The secret key, for the client's own storage only (kept apart from the
//! [`Wire`](super::Wire) trait): its writer and reader, its size, and the
//! check that it is one ternary polynomial modulo every prime.

use super::poly::{check_poly, write_poly};
use super::{Input, ObjectKind, expect_header, header_size, malformed, to_io, write_header};
use crate::error::Result;
use crate::keys::SecretKey;
use crate::params::Params;
use std::io::{self, Read, Write};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Bytes of a serialized secret key.
pub fn secret_key_size(params: &Params) -> usize {
    header_size(params) + 4 + (params.q.len() + params.p.len()) * params.n * 8
}

fn qp_all(params: &Params) -> Vec<usize> {
    (0..params.q.len() + params.p.len()).collect()
}

impl SecretKey {
    /// Bytes of the serialized secret key.
    pub fn secret_serialized_size(&self) -> usize {
        secret_key_size(&self.params)
    }

    /// Writes the secret key, for the client's own storage only: never send
    /// it anywhere. Scratch buffers are zeroized.
    pub fn write_secret_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let p = &self.params;
        let limbs = p.q.len() + p.p.len();
        check_poly(&self.poly, p, limbs, "secret key").map_err(to_io)?;
        write_header(w, ObjectKind::SecretKey, p)?;
        w.write_all(&(limbs as u32).to_le_bytes())?;
        write_poly(w, &self.poly)
    }

    /// The serialized secret key in a buffer that is zeroized on drop.
    pub fn to_secret_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        // Full capacity up front: no reallocation leaves copies behind.
        let mut out = Zeroizing::new(Vec::with_capacity(self.secret_serialized_size()));
        self.write_secret_to(&mut *out)
            .map_err(|e| malformed(format!("write failed: {e}")))?;
        Ok(out)
    }

    /// Reads a secret key from a stream and checks it is a ternary
    /// polynomial, the same one modulo every prime.
    pub fn read_secret_from<R: Read>(r: &mut R, params: &Arc<Params>) -> Result<SecretKey> {
        let mut inp = Input::stream(r);
        read_secret(&mut inp, params)
    }

    /// Reads a secret key that must fill `bytes` exactly.
    pub fn from_secret_bytes(bytes: &[u8], params: &Arc<Params>) -> Result<SecretKey> {
        let mut inp = Input::slice(bytes);
        let sk = read_secret(&mut inp, params)?;
        inp.finish()?;
        Ok(sk)
    }
}

fn read_secret<R: Read>(inp: &mut Input<R>, params: &Arc<Params>) -> Result<SecretKey> {
    expect_header(
        inp,
        ObjectKind::SecretKey,
        |k| k == ObjectKind::SecretKey,
        params,
    )?;
    let limbs = inp.u32("secret key limb count")? as usize;
    let want = params.q.len() + params.p.len();
    if limbs != want {
        return Err(malformed(format!(
            "secret key has {limbs} limbs, `{}` needs {want}",
            params.name()
        )));
    }
    // Wrap at once so that the key is zeroized on any error below.
    let sk = SecretKey {
        params: params.clone(),
        poly: Zeroizing::new(inp.poly(params, &qp_all(params), "secret key")?),
    };
    check_ternary(&sk)?;
    Ok(sk)
}

/// Checks that the secret key is one ternary polynomial modulo every prime.
/// Error messages name positions only, never values.
fn check_ternary(sk: &SecretKey) -> Result<()> {
    let p = &sk.params;
    let n = p.n;
    let mut first: Zeroizing<Vec<i64>> = Zeroizing::new(vec![0; n]);
    let mut tmp: Zeroizing<Vec<u64>> = Zeroizing::new(vec![0; n]);
    for k in 0..sk.poly.limbs() {
        tmp.copy_from_slice(sk.poly.limb(k));
        p.ring.intt(k, &mut tmp);
        let m = p.ring.moduli[k];
        for (j, &x) in tmp.iter().enumerate() {
            let c = m.centered(x);
            if k == 0 {
                if !(-1..=1).contains(&c) {
                    return Err(malformed(format!(
                        "secret key coefficient {j} is not ternary"
                    )));
                }
                first[j] = c;
            } else if c != first[j] {
                return Err(malformed(format!(
                    "secret key limb {k} disagrees with limb 0 at coefficient {j}"
                )));
            }
        }
    }
    Ok(())
}

//! Input packing and output read-out: the one piece of code the client
//! (encrypt, decrypt) and both backends use to move tensors in and out of
//! slots ([`compiler::layout::Layout`], multiplexed packing).

use compiler::layout::Layout;

use crate::error::{Result, RuntimeError};

/// Packs a `[C, H, W]` tensor (row-major `data`) into the slot vectors of
/// `layout`, dividing every value by `factor` (the plan's input value
/// scale). Returns one vector of `layout.slots` values per ciphertext.
///
/// Errors: a length that does not match `C*H*W`, or a non-finite value.
pub fn pack(layout: &Layout, data: &[f64], factor: f64) -> Result<Vec<Vec<f64>>> {
    let (c, h, w) = (layout.channels, layout.height, layout.width);
    if data.len() != c * h * w {
        return Err(RuntimeError::Input(format!(
            "the plan's input is {c}x{h}x{w} ({} values), got {}",
            c * h * w,
            data.len()
        )));
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(RuntimeError::Input(format!(
            "input value {i} is not finite"
        )));
    }
    let mut cts = vec![vec![0.0; layout.slots]; layout.cts()];
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let (ct, s) = layout.slot(ch, y as i64, x as i64);
                cts[ct][s as usize] = data[(ch * h + y) * w + x] / factor;
            }
        }
    }
    Ok(cts)
}

/// Reads a vector layout's values back (`channels` values at
/// `slot(o, 0, 0)`), multiplied by `factor` (the plan's output value
/// scale): the logits.
pub fn unpack(layout: &Layout, cts: &[Vec<f64>], factor: f64) -> Result<Vec<f64>> {
    if cts.len() != layout.cts() {
        return Err(RuntimeError::Input(format!(
            "expected {} ciphertexts of output, got {}",
            layout.cts(),
            cts.len()
        )));
    }
    (0..layout.channels)
        .map(|o| {
            let (ct, s) = layout.slot(o, 0, 0);
            cts[ct]
                .get(s as usize)
                .map(|v| v * factor)
                .ok_or_else(|| RuntimeError::Input(format!("output slot {s} out of range")))
        })
        .collect()
}

//! Input packing and output read-out: the one piece of code the client
//! (encrypt, decrypt) and both backends use to move tensors in and out of
//! slots ([`compiler::layout::Layout`], multiplexed packing; a batched
//! layout interleaves `batch` images, image `b` at `slot + b`).

use compiler::layout::Layout;

use crate::error::{Result, RuntimeError};

/// Packs a `[C, H, W]` tensor (row-major `data`) into the slot vectors of
/// `layout`, dividing every value by `factor` (the plan's input value
/// scale). Returns one vector of `layout.slots` values per ciphertext. A
/// batched layout gets it as its first image (the others zero).
///
/// Errors: a length that does not match `C*H*W`, or a non-finite value.
pub fn pack(layout: &Layout, data: &[f64], factor: f64) -> Result<Vec<Vec<f64>>> {
    pack_batch(layout, &[data], factor)
}

/// Packs up to `layout.batch` `[C, H, W]` tensors, image `b` at
/// `slot + b` ([`Layout::slot_of`]); missing images are zero.
///
/// Errors: no image, more images than the batch, a length that does not
/// match `C*H*W`, or a non-finite value.
pub fn pack_batch<T: AsRef<[f64]>>(
    layout: &Layout,
    images: &[T],
    factor: f64,
) -> Result<Vec<Vec<f64>>> {
    let (c, h, w) = (layout.channels, layout.height, layout.width);
    let batch = layout.batch.max(1);
    if images.is_empty() || images.len() > batch {
        return Err(RuntimeError::Input(format!(
            "the plan takes 1 to {batch} image(s) at once, got {}",
            images.len()
        )));
    }
    let mut cts = vec![vec![0.0; layout.slots]; layout.cts()];
    for (b, data) in images.iter().enumerate() {
        let data = data.as_ref();
        let which = if images.len() > 1 {
            format!("image {b}: ")
        } else {
            String::new()
        };
        if data.len() != c * h * w {
            return Err(RuntimeError::Input(format!(
                "{which}the plan's input is {c}x{h}x{w} ({} values), got {}",
                c * h * w,
                data.len()
            )));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(RuntimeError::Input(format!(
                "{which}input value {i} is not finite"
            )));
        }
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let (ct, s) = layout.slot_of(b, ch, y as i64, x as i64);
                    cts[ct][s as usize] = data[(ch * h + y) * w + x] / factor;
                }
            }
        }
    }
    Ok(cts)
}

/// Reads a vector layout's values back (`channels` values at
/// `slot(o, 0, 0)`), multiplied by `factor` (the plan's output value
/// scale): the logits (of the first image when batched).
pub fn unpack(layout: &Layout, cts: &[Vec<f64>], factor: f64) -> Result<Vec<f64>> {
    Ok(unpack_batch(layout, cts, factor, 1)?.remove(0))
}

/// Reads the logits of the first `images` images of a (batched) vector
/// layout.
///
/// Errors: a ciphertext count that does not match the layout, `images` not
/// in `1..=batch`, or slots out of range.
pub fn unpack_batch(
    layout: &Layout,
    cts: &[Vec<f64>],
    factor: f64,
    images: usize,
) -> Result<Vec<Vec<f64>>> {
    if cts.len() != layout.cts() {
        return Err(RuntimeError::Input(format!(
            "expected {} ciphertexts of output, got {}",
            layout.cts(),
            cts.len()
        )));
    }
    if images == 0 || images > layout.batch.max(1) {
        return Err(RuntimeError::Input(format!(
            "{images} images asked of a batch of {}",
            layout.batch
        )));
    }
    (0..images)
        .map(|b| {
            (0..layout.channels)
                .map(|o| {
                    let (ct, s) = layout.slot_of(b, o, 0, 0);
                    cts[ct]
                        .get(s as usize)
                        .map(|v| v * factor)
                        .ok_or_else(|| RuntimeError::Input(format!("output slot {s} out of range")))
                })
                .collect()
        })
        .collect()
}

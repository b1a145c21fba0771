//! Loading one model input from a file: a PNG image or a `.npy` float
//! array.
//!
//! Conventions match training (see [`crate::data`]): pixels become
//! `value / (2^bits - 1)` in `[0, 1]` (`/ 255` for 8-bit images, every PNG
//! bit depth and colour type read at full precision), channel-major
//! `[C, H, W]`. No resizing: the
//! image must already have the model's height and width. Gray images are
//! replicated for 3-channel models; colour images are turned into
//! luminance (ITU-R BT.601 weights) for 1-channel models; alpha is dropped.
//!
//! Everything is untrusted: files are size-capped before reading, the PNG
//! decoder runs with a memory limit, and the `.npy` header is parsed
//! strictly.

use std::io::Read;
use std::path::Path;

use thiserror::Error;

use crate::graph::Tensor;

/// Largest input file accepted (bytes).
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// Errors loading an input.
#[derive(Debug, Error)]
pub enum InputError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is too large.
    #[error("`{path}` is {size} bytes, more than the {max} accepted")]
    TooLarge {
        /// The path.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Neither a PNG nor a `.npy` file.
    #[error("`{0}` is neither a PNG image nor a .npy array")]
    UnknownFormat(String),
    /// The PNG could not be decoded.
    #[error("invalid PNG: {0}")]
    Png(String),
    /// The `.npy` file is malformed or of an unsupported kind.
    #[error("invalid .npy file: {0}")]
    Npy(String),
    /// The input does not have the model's shape.
    #[error("input is {}, the model expects {}", dims(got), dims(expected))]
    Shape {
        /// Model input shape `[C, H, W]`.
        expected: Vec<usize>,
        /// What the file holds.
        got: Vec<usize>,
    },
}

/// `CxHxW`.
fn dims(d: &[usize]) -> String {
    if d.is_empty() {
        return "of no usable shape".into();
    }
    d.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

fn read_capped(path: &Path) -> Result<Vec<u8>, InputError> {
    let p = path.display().to_string();
    let io = |source| InputError::Io {
        path: p.clone(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    if size > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge {
            path: p,
            size,
            max: MAX_INPUT_BYTES,
        });
    }
    let mut buf = Vec::with_capacity(size as usize);
    f.take(MAX_INPUT_BYTES).read_to_end(&mut buf).map_err(io)?;
    Ok(buf)
}

/// Loads a PNG or `.npy` file (recognized by content) as a `[C, H, W]`
/// tensor of the given shape.
pub fn load(path: impl AsRef<Path>, shape: &[usize]) -> Result<Tensor, InputError> {
    let path = path.as_ref();
    let bytes = read_capped(path)?;
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        png_tensor(&bytes, shape)
    } else if bytes.starts_with(b"\x93NUMPY") {
        npy_tensor(&bytes, shape)
    } else {
        Err(InputError::UnknownFormat(path.display().to_string()))
    }
}

/// Decodes PNG bytes into a `[C, H, W]` tensor of the given shape (C = 1 or
/// 3).
pub fn png_tensor(bytes: &[u8], shape: &[usize]) -> Result<Tensor, InputError> {
    let shape_err = |got: Vec<usize>| InputError::Shape {
        expected: shape.to_vec(),
        got,
    };
    if shape.len() != 3 || !matches!(shape[0], 1 | 3) {
        return Err(shape_err(vec![]));
    }
    let limits = png::Limits { bytes: 64 << 20 };
    let mut dec = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), limits);
    // Palette and sub-byte depths expand to 8 bits (scaled to the full
    // range); 16-bit samples stay 16-bit: every depth at full precision.
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec
        .read_info()
        .map_err(|e| InputError::Png(e.to_string()))?;
    let (w, h, file_ch) = {
        let info = reader.info();
        let ch = match info.color_type {
            png::ColorType::Grayscale | png::ColorType::GrayscaleAlpha => 1,
            _ => 3,
        };
        (info.width as usize, info.height as usize, ch)
    };
    if h != shape[1] || w != shape[2] {
        return Err(shape_err(vec![file_ch, h, w]));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| InputError::Png("image too large".into()))?;
    let mut buf = vec![0u8; size];
    let out = reader
        .next_frame(&mut buf)
        .map_err(|e| InputError::Png(e.to_string()))?;
    let src_ch = match out.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(InputError::Png("palette not expanded".into())),
    };
    let (bps, max) = match out.bit_depth {
        png::BitDepth::Eight => (1usize, 255.0),
        png::BitDepth::Sixteen => (2, 65535.0),
        d => return Err(InputError::Png(format!("bit depth {d:?} not expanded"))),
    };
    let line = out.line_size;
    if (out.width as usize, out.height as usize) != (w, h)
        || line < w * src_ch * bps
        || buf.len() < h * line
    {
        return Err(InputError::Png(
            "decoded frame does not match its header".into(),
        ));
    }
    let sample = |row: &[u8], i: usize| -> f64 {
        let v = if bps == 2 {
            u16::from_be_bytes([row[2 * i], row[2 * i + 1]]) as f64
        } else {
            row[i] as f64
        };
        v / max
    };
    let c = shape[0];
    let mut data = vec![0.0; c * h * w];
    for y in 0..h {
        let row = &buf[y * line..y * line + w * src_ch * bps];
        for x in 0..w {
            let px = x * src_ch;
            let (r, g, b) = if src_ch >= 3 {
                (sample(row, px), sample(row, px + 1), sample(row, px + 2))
            } else {
                let v = sample(row, px);
                (v, v, v)
            };
            if c == 1 {
                data[y * w + x] = if src_ch >= 3 {
                    0.299 * r + 0.587 * g + 0.114 * b
                } else {
                    r
                };
            } else {
                data[y * w + x] = r;
                data[h * w + y * w + x] = g;
                data[2 * h * w + y * w + x] = b;
            }
        }
    }
    Ok(Tensor {
        shape: shape.to_vec(),
        data,
    })
}

/// Loads a PNG or `.npy` file (recognized by content) as one or more
/// `[C, H, W]` tensors of the given shape: a `.npy` of shape `[B, C, H, W]`
/// gives `B` of them ([`npy_batch`]), anything else one ([`load`]).
pub fn load_batch(path: impl AsRef<Path>, shape: &[usize]) -> Result<Vec<Tensor>, InputError> {
    let path = path.as_ref();
    let bytes = read_capped(path)?;
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(vec![png_tensor(&bytes, shape)?])
    } else if bytes.starts_with(b"\x93NUMPY") {
        npy_batch(&bytes, shape)
    } else {
        Err(InputError::UnknownFormat(path.display().to_string()))
    }
}

/// Parses a `.npy` file as [`npy_tensor`] does, also accepting a stack of
/// shape `[B, C, H, W]` (`B >= 1`, `[C, H, W]` equal to `shape`): one
/// tensor per image.
pub fn npy_batch(bytes: &[u8], shape: &[usize]) -> Result<Vec<Tensor>, InputError> {
    let (dims, data) = npy_parse(bytes)?;
    let images = match dims.as_slice() {
        [b, rest @ ..] if rest == shape && *b >= 1 => *b,
        d if d == shape => 1,
        _ => {
            return Err(InputError::Shape {
                expected: shape.to_vec(),
                got: dims,
            });
        }
    };
    let n: usize = shape.iter().product();
    if data.len() != images * n {
        return Err(InputError::Npy("data does not match its shape".into()));
    }
    Ok(data
        .chunks_exact(n.max(1))
        .map(|c| Tensor {
            shape: shape.to_vec(),
            data: c.to_vec(),
        })
        .collect())
}

/// Parses a `.npy` file holding little-endian `float32` (or `float64`) in C
/// order, of shape `[C, H, W]` or `[1, C, H, W]` equal to `shape`.
pub fn npy_tensor(bytes: &[u8], shape: &[usize]) -> Result<Tensor, InputError> {
    let (dims, data) = npy_parse(bytes)?;
    let per_image: Vec<usize> = match dims.as_slice() {
        [1, rest @ ..] if rest.len() == 3 => rest.to_vec(),
        d if d.len() == 3 => d.to_vec(),
        _ => dims.clone(),
    };
    if per_image != shape {
        return Err(InputError::Shape {
            expected: shape.to_vec(),
            got: dims,
        });
    }
    Ok(Tensor {
        shape: shape.to_vec(),
        data,
    })
}

/// The dimensions and values of a `.npy` file of little-endian floats in C
/// order (sizes checked against the data, values finite).
fn npy_parse(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>), InputError> {
    let bad = |m: &str| InputError::Npy(m.to_string());
    if bytes.len() < 10 || !bytes.starts_with(b"\x93NUMPY") {
        return Err(bad("missing magic"));
    }
    let major = bytes[6];
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(InputError::Npy(format!("unsupported version {v}"))),
    };
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("header is not text"))?;
    let field = |key: &str| -> Result<&str, InputError> {
        let k = format!("'{key}'");
        let at = header
            .find(&k)
            .ok_or_else(|| InputError::Npy(format!("header lacks {key}")))?;
        let rest = header[at + k.len()..].trim_start();
        rest.strip_prefix(':')
            .map(str::trim_start)
            .ok_or_else(|| InputError::Npy(format!("malformed {key}")))
    };
    let descr = field("descr")?;
    let elem = if descr.starts_with("'<f4'") {
        4
    } else if descr.starts_with("'<f8'") {
        8
    } else {
        return Err(InputError::Npy(format!(
            "dtype {} (need little-endian float32 '<f4')",
            descr.split(',').next().unwrap_or("?")
        )));
    };
    if !field("fortran_order")?.starts_with("False") {
        return Err(bad("Fortran order is not supported"));
    }
    let sh = field("shape")?;
    let sh = sh
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("malformed shape"))?;
    let mut dims = Vec::new();
    for part in sh.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let d: usize = part.parse().map_err(|_| bad("malformed shape"))?;
        dims.push(d);
        if dims.len() > 8 {
            return Err(bad("too many dimensions"));
        }
    }
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n.checked_mul(elem).is_some())
        .ok_or_else(|| bad("shape too large"))?;
    let body = &bytes[end..];
    if body.len() != n * elem {
        return Err(InputError::Npy(format!(
            "data holds {} bytes, shape needs {}",
            body.len(),
            n * elem
        )));
    }
    let data: Vec<f64> = if elem == 4 {
        body.chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect()
    } else {
        body.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()
    };
    if data.iter().any(|v| !v.is_finite()) {
        return Err(bad("non-finite values"));
    }
    Ok((dims, data))
}

/// Encodes a `float32` `.npy` file (version 1.0) of the given shape; the
/// inverse of [`npy_tensor`], for tests and tools.
pub fn encode_npy_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_s}, }}");
    // Pad so that the data starts at a multiple of 64 bytes.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(w: u32, h: u32, color: png::ColorType, px: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut e = png::Encoder::new(&mut out, w, h);
            e.set_color(color);
            e.set_depth(png::BitDepth::Eight);
            let mut wr = e.write_header().unwrap();
            wr.write_image_data(px).unwrap();
        }
        out
    }

    #[test]
    fn png_gray_and_rgb() {
        let gray = png_bytes(2, 2, png::ColorType::Grayscale, &[0, 255, 51, 102]);
        let t = png_tensor(&gray, &[1, 2, 2]).unwrap();
        assert_eq!(t.data, vec![0.0, 1.0, 0.2, 0.4]);
        let t3 = png_tensor(&gray, &[3, 2, 2]).unwrap();
        assert_eq!(&t3.data[4..8], &t.data[..]);
        let rgb = png_bytes(1, 1, png::ColorType::Rgb, &[255, 0, 0]);
        let t = png_tensor(&rgb, &[3, 1, 1]).unwrap();
        assert_eq!(t.data, vec![1.0, 0.0, 0.0]);
        let t = png_tensor(&rgb, &[1, 1, 1]).unwrap();
        assert!((t.data[0] - 0.299).abs() < 1e-12);
        assert!(matches!(
            png_tensor(&gray, &[1, 3, 3]),
            Err(InputError::Shape { .. })
        ));
        assert!(png_tensor(&gray[..gray.len() - 8], &[1, 2, 2]).is_err());
    }

    fn png_depth(
        w: u32,
        h: u32,
        color: png::ColorType,
        depth: png::BitDepth,
        px: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut e = png::Encoder::new(&mut out, w, h);
            e.set_color(color);
            e.set_depth(depth);
            if color == png::ColorType::Indexed {
                e.set_palette(vec![0, 0, 0, 255, 128, 0]);
            }
            let mut wr = e.write_header().unwrap();
            wr.write_image_data(px).unwrap();
        }
        out
    }

    #[test]
    fn png_every_bit_depth_at_full_precision() {
        use png::{BitDepth as D, ColorType as C};
        // 1-bit: 0b1010_0000 -> 1, 0, 1, 0 (values / 1).
        let b = png_depth(4, 1, C::Grayscale, D::One, &[0b1010_0000]);
        assert_eq!(
            png_tensor(&b, &[1, 1, 4]).unwrap().data,
            vec![1.0, 0.0, 1.0, 0.0]
        );
        // 2-bit: 0, 1, 2, 3 -> k / 3.
        let b = png_depth(4, 1, C::Grayscale, D::Two, &[0b0001_1011]);
        let t = png_tensor(&b, &[1, 1, 4]).unwrap();
        for (k, v) in t.data.iter().enumerate() {
            assert!((v - k as f64 / 3.0).abs() < 1e-12, "{t:?}");
        }
        // 4-bit: 5 and 15 -> / 15.
        let b = png_depth(2, 1, C::Grayscale, D::Four, &[0x5f]);
        let t = png_tensor(&b, &[1, 1, 2]).unwrap();
        assert!((t.data[0] - 5.0 / 15.0).abs() < 1e-12 && t.data[1] == 1.0);
        // 16-bit gray and RGB: v / 65535, not cut to 8 bits.
        let b = png_depth(1, 1, C::Grayscale, D::Sixteen, &[0x12, 0x34]);
        assert_eq!(
            png_tensor(&b, &[1, 1, 1]).unwrap().data,
            vec![0x1234 as f64 / 65535.0]
        );
        let b = png_depth(1, 1, C::Rgb, D::Sixteen, &[0, 1, 0x80, 0, 0xff, 0xff]);
        let t = png_tensor(&b, &[3, 1, 1]).unwrap();
        assert_eq!(t.data, vec![1.0 / 65535.0, 0x8000 as f64 / 65535.0, 1.0]);
        // Palette: expanded to its colours.
        let b = png_depth(2, 1, C::Indexed, D::Eight, &[0, 1]);
        let t = png_tensor(&b, &[3, 1, 2]).unwrap();
        assert_eq!(t.data, vec![0.0, 1.0, 0.0, 128.0 / 255.0, 0.0, 0.0]);
        // 16-bit gray with alpha: the alpha is dropped.
        let b = png_depth(1, 1, C::GrayscaleAlpha, D::Sixteen, &[0xff, 0xff, 0, 0]);
        assert_eq!(png_tensor(&b, &[1, 1, 1]).unwrap().data, vec![1.0]);
        // Size errors say CxHxW.
        let e = png_tensor(&b, &[1, 2, 1]).unwrap_err().to_string();
        assert!(e.contains("1x1x1") && e.contains("1x2x1"), "{e}");
    }

    #[test]
    fn npy_round_trip_and_errors() {
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        let b = encode_npy_f32(&[3, 2, 2], &data);
        let t = npy_tensor(&b, &[3, 2, 2]).unwrap();
        assert_eq!(t.data[5], 2.5);
        let b4 = encode_npy_f32(&[1, 3, 2, 2], &data);
        assert!(npy_tensor(&b4, &[3, 2, 2]).is_ok());
        assert!(matches!(
            npy_tensor(&b, &[1, 2, 6]),
            Err(InputError::Shape { .. })
        ));
        assert!(npy_tensor(&b[..b.len() - 1], &[3, 2, 2]).is_err());
        let mut bad = b.clone();
        let at = bad.windows(3).position(|w| w == b"<f4").unwrap();
        bad[at + 1] = b'i';
        assert!(matches!(
            npy_tensor(&bad, &[3, 2, 2]),
            Err(InputError::Npy(_))
        ));
        // A huge header length must not be trusted.
        let mut huge = b.clone();
        huge[8] = 0xff;
        huge[9] = 0xff;
        assert!(npy_tensor(&huge, &[3, 2, 2]).is_err());
    }

    #[test]
    fn npy_stack_gives_one_tensor_per_image() {
        let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let b = encode_npy_f32(&[2, 3, 2, 2], &data);
        let ts = npy_batch(&b, &[3, 2, 2]).unwrap();
        assert_eq!(ts.len(), 2);
        assert_eq!(ts[1].data[0], 12.0);
        // One image, with or without the leading 1.
        let one = encode_npy_f32(&[3, 2, 2], &data[..12]);
        assert_eq!(npy_batch(&one, &[3, 2, 2]).unwrap().len(), 1);
        // A stack is not one image, and other shapes are refused.
        assert!(npy_tensor(&b, &[3, 2, 2]).is_err());
        assert!(matches!(
            npy_batch(&b, &[2, 3, 2]),
            Err(InputError::Shape { .. })
        ));
        let empty = encode_npy_f32(&[0, 3, 2, 2], &[]);
        assert!(npy_batch(&empty, &[3, 2, 2]).is_err());
        // A header claiming an enormous shape is refused, not allocated.
        let mut big = b.clone();
        let at = big.windows(4).position(|w| w == b"(2, ").unwrap();
        big[at + 1] = b'9';
        assert!(npy_batch(&big, &[3, 2, 2]).is_err());
    }
}

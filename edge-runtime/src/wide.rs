//! Pre-widened weights: a companion of a model file that holds the int8 weights of chosen conv
//! layers as int16, in the pairing the Cortex-M7 `SMLAD` kernel multiplies, so its inner loop
//! loads weight pairs ready to use instead of sign-extending every word with two `SXTB16`
//! (54 instead of 60 instructions per 64 multiply-accumulates). Derived data only: the results
//! are identical with or without it, and [`Model::with_wide`] checks it value by value against
//! the model, so a companion made from another model, or corrupted, is refused at load.
//!
//! The firmware's build script makes it from the model file ([`write`](fn@write)) and links it into flash
//! next to the model; hosts have no use for it (their SIMD kernels widen in registers).
//!
//! Layout (little-endian):
//!
//! | offset | bytes | field |
//! |---:|---:|---|
//! | 0 | 4 | magic `FERW` |
//! | 4 | 2 | version = [`VERSION`] |
//! | 6 | 2 | 0 |
//! | 8 | 4 | layer mask: bit `i` set when layer `i`'s weights are here |
//! | 12 | 4 | the model file's CRC-32 (its bytes 16..20) |
//! | 16 | … | per chosen layer, in layer order, `2 ×` its weight bytes: each group of four int8 weights `w0 w1 w2 w3` as int16 `w0 w2 w1 w3` |
//!
//! Every layer's part is a multiple of 16 bytes long, so all start word-aligned when the
//! companion does (which [`Model::with_wide`] requires: the kernel reads it with `LDRD`).

use crate::error::{Error, WideProblem};
use crate::format::{Kind, LayerDesc, Model};
use crate::kernels::widened::widen_into;

/// The companion's magic bytes.
pub const MAGIC: [u8; 4] = *b"FERW";
/// The companion's format version.
pub const VERSION: u16 = 1;
/// Bytes before the first layer's weights.
pub const HEADER: usize = 16;

/// Whether the pooled conv kernel can use widened weights for layer `l`: a pooled 3x3 conv with
/// more than one input channel whose `9·cin` weights per output channel are whole groups of
/// eight (so no channel's weights run into the next one's).
pub fn eligible(l: &LayerDesc) -> bool {
    l.kind == Kind::Conv3x3 && l.pool && l.in_c > 1 && (9 * usize::from(l.in_c)).is_multiple_of(8)
}

/// Output positions after the pool: how many quads reuse each weight of the layer.
fn quads(l: &LayerDesc) -> usize {
    usize::from(l.in_h / 2) * usize::from(l.in_w / 2)
}

/// The layers worth widening: eligible ones whose every weight serves at least 16 pool quads.
/// For the paper's network that is conv2 and conv3 (144 and 36 quads; 184 KB of flash). conv4's
/// weights serve 9 quads: widening them saved 0.52 M instructions per inference (1.8%) for
/// 295 KB of flash, which the CNN face detector now needs on the OpenMV Cam H7 (its flash was
/// 78% of 2 MiB with them, over CI's 75%); conv5's (590 KB widened) serve a single quad.
pub fn default_mask(model: &Model<'_>) -> u32 {
    model
        .layers()
        .iter()
        .enumerate()
        .filter(|(_, l)| eligible(l) && quads(l) >= 16)
        .fold(0, |m, (i, _)| m | 1 << i)
}

/// Bytes of the companion holding the layers of `mask`.
///
/// # Errors
/// [`WideProblem::Mask`] when `mask` names a layer that does not exist or is not [`eligible`].
pub fn len(model: &Model<'_>, mask: u32) -> Result<usize, Error> {
    check_mask(model, mask)?;
    Ok(HEADER
        + chosen(model, mask)
            .map(|(_, l)| 2 * l.weights.len as usize)
            .sum::<usize>())
}

/// Writes the companion of the layers in `mask` into `out[..len(model, mask)]`; returns that
/// length.
///
/// # Errors
/// As [`len`], and [`WideProblem::Length`] when `out` is shorter.
pub fn write(model: &Model<'_>, mask: u32, out: &mut [u8]) -> Result<usize, Error> {
    let n = len(model, mask)?;
    let Some(out) = out.get_mut(..n) else {
        return Err(Error::Wide(WideProblem::Length {
            expected: n,
            got: out.len(),
        }));
    };
    out[..4].copy_from_slice(&MAGIC);
    out[4..6].copy_from_slice(&VERSION.to_le_bytes());
    out[6..8].fill(0);
    out[8..12].copy_from_slice(&mask.to_le_bytes());
    out[12..16].copy_from_slice(&model.crc.to_le_bytes());
    let mut at = HEADER;
    for (_, l) in chosen(model, mask) {
        let w = model.blob(l.weights);
        widen_into(w, &mut out[at..at + 2 * w.len()]);
        at += 2 * w.len();
    }
    Ok(n)
}

/// The companion of the model file `model_bytes` for its [`default_mask`] layers: what a
/// firmware build script links next to the model.
///
/// # Errors
/// The model file's own validation error.
#[cfg(any(test, feature = "std"))]
pub fn companion(model_bytes: &[u8]) -> Result<std::vec::Vec<u8>, Error> {
    let model = Model::from_bytes(model_bytes)?;
    let mask = default_mask(&model);
    let mut out = std::vec![0u8; len(&model, mask)?];
    write(&model, mask, &mut out)?;
    Ok(out)
}

fn chosen<'m>(
    model: &'m Model<'_>,
    mask: u32,
) -> impl Iterator<Item = (usize, &'m LayerDesc)> + 'm {
    model
        .layers()
        .iter()
        .enumerate()
        .filter(move |(i, _)| mask >> i & 1 == 1)
}

fn check_mask(model: &Model<'_>, mask: u32) -> Result<(), Error> {
    let layers = model.layers();
    for bit in 0..32 {
        if mask >> bit & 1 == 1 && !layers.get(bit).is_some_and(eligible) {
            return Err(Error::Wide(WideProblem::Mask { layer: bit as u8 }));
        }
    }
    Ok(())
}

/// Where each layer's widened weights start in a checked companion (`None`: not widened).
pub(crate) fn offsets(model: &Model<'_>, mask: u32) -> [Option<u32>; crate::format::MAX_LAYERS] {
    let mut out = [None; crate::format::MAX_LAYERS];
    let mut at = HEADER;
    for (i, l) in chosen(model, mask) {
        out[i] = Some(at as u32);
        at += 2 * l.weights.len as usize;
    }
    out
}

/// Checks that `bytes` is the companion of `model`: header, mask, length, alignment and every
/// value. Returns its mask.
pub(crate) fn check(model: &Model<'_>, bytes: &[u8]) -> Result<u32, Error> {
    let bad = |p| Err(Error::Wide(p));
    if bytes.len() < HEADER || bytes[..4] != MAGIC {
        return bad(WideProblem::Header);
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return bad(WideProblem::Version {
            found: version,
            reads: VERSION,
        });
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (mask, crc) = (word(8), word(12));
    if crc != model.crc {
        return bad(WideProblem::OtherModel);
    }
    let expected = len(model, mask)?;
    if bytes.len() != expected {
        return bad(WideProblem::Length {
            expected,
            got: bytes.len(),
        });
    }
    if !(bytes.as_ptr() as usize).is_multiple_of(4) {
        return bad(WideProblem::Misaligned);
    }
    let mut at = HEADER;
    for (i, l) in chosen(model, mask) {
        let w = model.blob(l.weights);
        let mut pair = [0u8; 8];
        for (g, stored) in w
            .as_chunks::<4>()
            .0
            .iter()
            .zip(bytes[at..].as_chunks::<8>().0)
        {
            widen_into(g, &mut pair);
            if pair != *stored {
                return bad(WideProblem::Values { layer: i as u8 });
            }
        }
        at += 2 * w.len();
    }
    Ok(mask)
}

impl<'a> Model<'a> {
    /// This model with pre-widened weights for the layers its companion holds (see the module
    /// docs); inference results are identical, only faster on the Cortex-M7.
    ///
    /// # Errors
    /// [`Error::Wide`] when `wide` is not this model's companion: bad header or version, made
    /// from another model, wrong length, not word-aligned, or any value differing from the
    /// model's weight.
    pub fn with_wide(mut self, wide: &'a [u8]) -> Result<Self, Error> {
        let mask = check(&self, wide)?;
        self.wide = wide;
        self.wide_at = offsets(&self, mask);
        Ok(self)
    }

    /// Layer `i`'s widened weights, when the model has a companion that holds them.
    pub(crate) fn wide_weights(&self, i: usize) -> Option<&'a [u8]> {
        let at = self.wide_at.get(i).copied().flatten()? as usize;
        let len = 2 * self.layers()[i].weights.len as usize;
        self.wide.get(at..at + len)
    }
}

//! The layout of the input patch of one pool quad (im2col, built by the `im2col` module): for
//! each of the four conv outputs that one 2x2 max pool reads, its 3x3 x cin input window as
//! int16 values `x − zero_point`, with 0 for the taps outside the image (the real value 0). With
//! the zero point subtracted there, borders and the zero point's share of the sum disappear from
//! the dot products, which become plain products of the patch with a channel's weights (`quad`).
//!
//! Layout: four rows of [`padded_len`] int16 values, little-endian, in a byte buffer (the arena
//! is bytes), interleaved by groups of [`GROUP`] values — group 0 of rows 0, 1, 2, 3, then group
//! 1 of each, and so on — so a kernel reads one contiguous stream while it walks the weights
//! once. Values are in the weights' `[ky][kx][cin]` order, except that the `SMLAD` kernel's
//! groups hold `v0 v2 v1 v3` (it pairs weight bytes 0 and 2, and 1 and 3, of a word). Values
//! past `9·cin` are 0. [`offset`] says where each value is.

/// Whether each group of four values is stored as `v0 v2 v1 v3` (the `SMLAD` kernel's pairing).
pub const INTERLEAVED: bool = cfg!(all(feature = "dsp", target_arch = "arm"));

/// Where value `j` of a group of four is stored within the group (also in a dense layer's int16
/// input).
pub const INTERLEAVED_ORDER: [usize; 4] = if INTERLEAVED {
    [0, 2, 1, 3]
} else {
    [0, 1, 2, 3]
};

/// Values of one row per group: one weight word for the `SMLAD` kernel, 16 on x86-64 (one
/// 32-byte AVX2 load of a row, or two SSE2 ones), eight elsewhere (one 16-byte NEON load).
pub const GROUP: usize = if INTERLEAVED {
    4
} else if cfg!(target_arch = "x86_64") {
    16
} else {
    8
};

/// Rows are padded to a multiple of this many values: whole groups, and at least 8.
const PAD: usize = if GROUP > 8 { GROUP } else { 8 };

/// Values per patch row: `9·cin` rounded up to whole groups (a multiple of 8, of 16 on x86-64).
#[inline]
pub const fn padded_len(cin: usize) -> usize {
    padded_values(9 * cin)
}

/// `n` values rounded up to whole groups of a patch row (a multiple of 8, of 16 on x86-64).
#[inline]
pub const fn padded_values(n: usize) -> usize {
    n.div_ceil(PAD) * PAD
}

/// Bytes of a quad's patch: four rows of int16 values.
#[inline]
pub const fn patch_bytes(cin: usize) -> usize {
    4 * 2 * padded_len(cin)
}

/// Byte offset of value `i` of row `r`.
#[inline]
pub const fn offset(r: usize, i: usize) -> usize {
    let (g, j) = (i / GROUP, i % GROUP);
    let j = if INTERLEAVED { [0, 2, 1, 3][j] } else { j };
    2 * ((g * 4 + r) * GROUP + j)
}

/// Value `i` of row `r` of a patch.
#[inline]
pub fn value(patch: &[i8], r: usize, i: usize) -> i32 {
    let at = offset(r, i);
    i32::from(i16::from_le_bytes([patch[at] as u8, patch[at + 1] as u8]))
}

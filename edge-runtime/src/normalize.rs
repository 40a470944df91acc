//! The per-face light normalization: the last step of the model's input rule, applied to the
//! 48x48 face after the crop and the resize, by training data loading, evaluation, `edge-cli`
//! and both firmwares alike ([`crate::pipeline::face_input`]).
//!
//! It is part of the model's contract, like the 48x48 size: [`INPUT_RULE`] is the one the
//! published models were trained with. The other variants are kept for measurement (the choice
//! and its figures: docs/design.md, "One input rule").
//!
//! Integer-only, no heap; a 256-entry histogram and look-up table on the stack.

/// How a face's gray levels are normalized before the network sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Normalize {
    /// The pixels as cropped.
    None,
    /// Global histogram equalization of the face (OpenCV's `equalizeHist` formula, rounded half
    /// up): the cumulative histogram, shifted so the darkest level present maps to 0, scaled so
    /// the brightest maps to 255.
    Equalize,
    /// A linear stretch of the 1st..99th percentile range to 0..255 (clamped).
    Stretch,
    /// Local equalization (CLAHE-like): a clipped histogram per tile of a 4x4 grid, the levels
    /// interpolated bilinearly between tile centres.
    Local,
}

/// The normalization of the published models' input rule.
pub const INPUT_RULE: Normalize = Normalize::Equalize;

/// Every variant, in the order the measurements list them.
pub const ALL: [Normalize; 4] = [
    Normalize::None,
    Normalize::Equalize,
    Normalize::Stretch,
    Normalize::Local,
];

/// Tiles per axis of [`Normalize::Local`].
const TILES: usize = 4;
/// Clip limit of [`Normalize::Local`], in multiples of a tile's mean bin count (OpenCV's CLAHE
/// default is 40 over 64 pixels per tile, here 2 over 144).
const CLIP: u32 = 2;

impl Normalize {
    /// Its name in options, recipes and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Normalize::None => "none",
            Normalize::Equalize => "equalize",
            Normalize::Stretch => "stretch",
            Normalize::Local => "local",
        }
    }

    /// The variant named `name` ([`Normalize::name`]).
    pub fn from_name(name: &str) -> Option<Normalize> {
        ALL.into_iter().find(|n| n.name() == name)
    }

    /// Normalizes the `width × height` gray image `px` (row-major, `width × height` bytes) in
    /// place. Images of fewer pixels than that, or empty ones, are left as they are.
    pub fn apply(self, px: &mut [u8], width: usize, height: usize) {
        let n = width.saturating_mul(height);
        if n == 0 || px.len() < n || n > u32::MAX as usize / 256 {
            return;
        }
        let px = &mut px[..n];
        match self {
            Normalize::None => {}
            Normalize::Equalize => {
                let lut = equalize_lut(&histogram(px.iter().copied()), u32::MAX);
                for p in px.iter_mut() {
                    *p = lut[usize::from(*p)];
                }
            }
            Normalize::Stretch => stretch(px),
            Normalize::Local => local(px, width, height),
        }
    }
}

/// The 256-bin histogram of `pixels`.
fn histogram(pixels: impl Iterator<Item = u8>) -> [u32; 256] {
    let mut hist = [0u32; 256];
    for p in pixels {
        hist[usize::from(p)] += 1;
    }
    hist
}

/// The equalizing look-up table of `hist`, its bins first clipped at `clip` with the excess
/// spread evenly over all bins (no clipping with `u32::MAX`). An image of one gray level keeps
/// it.
fn equalize_lut(hist: &[u32; 256], clip: u32) -> [u8; 256] {
    let mut h = *hist;
    if clip != u32::MAX {
        let excess: u32 = h.iter().map(|&c| c.saturating_sub(clip)).sum();
        let (add, rest) = (excess / 256, (excess % 256) as usize);
        for (i, c) in h.iter_mut().enumerate() {
            *c = (*c).min(clip) + add + u32::from(i < rest);
        }
    }
    let total: u32 = h.iter().sum();
    let mut lut = [0u8; 256];
    let Some(first) = h.iter().position(|&c| c > 0) else {
        return core::array::from_fn(|i| i as u8);
    };
    let base = h[first];
    let den = total - base;
    if den == 0 {
        return core::array::from_fn(|i| i as u8);
    }
    let mut cum = 0u32;
    for (i, (&c, out)) in h.iter().zip(lut.iter_mut()).enumerate() {
        cum += c;
        if i >= first {
            let num = u64::from(cum - base) * 255;
            *out = ((num + u64::from(den) / 2) / u64::from(den)) as u8;
        }
    }
    lut
}

/// The level below which `rank` pixels lie (the smallest level whose cumulative count exceeds
/// `rank`).
fn level_at(hist: &[u32; 256], rank: u32) -> u8 {
    let mut cum = 0u32;
    for (i, &c) in hist.iter().enumerate() {
        cum += c;
        if cum > rank {
            return i as u8;
        }
    }
    255
}

/// [`Normalize::Stretch`].
fn stretch(px: &mut [u8]) {
    let hist = histogram(px.iter().copied());
    let n = px.len() as u32;
    let lo = u32::from(level_at(&hist, n / 100));
    let hi = u32::from(level_at(&hist, n - 1 - n / 100));
    if hi <= lo {
        return;
    }
    let span = hi - lo;
    for p in px.iter_mut() {
        let v = u32::from(*p).clamp(lo, hi) - lo;
        *p = ((v * 255 + span / 2) / span) as u8;
    }
}

/// Start and end (exclusive) of tile `t` of `TILES` along an axis of `len` pixels.
fn tile_range(t: usize, len: usize) -> (usize, usize) {
    (t * len / TILES, (t + 1) * len / TILES)
}

/// [`Normalize::Local`]: one clipped-equalization table per tile; each pixel's level is the
/// bilinear blend (weights in 1/256) of the tables of the four nearest tile centres.
fn local(px: &mut [u8], width: usize, height: usize) {
    if width < TILES || height < TILES {
        let lut = equalize_lut(&histogram(px.iter().copied()), u32::MAX);
        px.iter_mut().for_each(|p| *p = lut[usize::from(*p)]);
        return;
    }
    let mut luts = [[0u8; 256]; TILES * TILES];
    for ty in 0..TILES {
        let (y0, y1) = tile_range(ty, height);
        for tx in 0..TILES {
            let (x0, x1) = tile_range(tx, width);
            let tile = (y0..y1).flat_map(|y| px[y * width + x0..y * width + x1].iter().copied());
            let area = ((y1 - y0) * (x1 - x0)) as u32;
            let clip = (CLIP * area).div_ceil(256).max(1);
            luts[ty * TILES + tx] = equalize_lut(&histogram(tile), clip);
        }
    }
    // Position of a pixel between tile centres: the index of the tile centre at or before it and
    // the weight (1/256) of the next one, clamped at the borders.
    let between = |i: usize, len: usize| -> (usize, u32) {
        // Tile centre t sits at (2t + 1) len / (2 TILES) - 1/2; in units of 1/(2 TILES) pixel:
        let pos = (2 * i + 1) * TILES; // pixel centre, times 2 TILES
        let first = len; // centre of tile 0, times 2 TILES
        if pos <= first {
            return (0, 0);
        }
        let step = 2 * len; // distance between centres, times 2 TILES
        let t = (pos - first) / step;
        if t >= TILES - 1 {
            return (TILES - 1, 0);
        }
        let frac = (pos - first - t * step) as u32;
        (t, (frac * 256 + step as u32 / 2) / step as u32)
    };
    for y in 0..height {
        let (ty, wy) = between(y, height);
        let ty1 = (ty + 1).min(TILES - 1);
        for x in 0..width {
            let (tx, wx) = between(x, width);
            let tx1 = (tx + 1).min(TILES - 1);
            let v = usize::from(px[y * width + x]);
            let at = |a: usize, b: usize| u32::from(luts[a * TILES + b][v]);
            let top = at(ty, tx) * (256 - wx) + at(ty, tx1) * wx;
            let bottom = at(ty1, tx) * (256 - wx) + at(ty1, tx1) * wx;
            let blended = top * (256 - wy) + bottom * wy;
            px[y * width + x] = ((blended + (1 << 15)) >> 16) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(lo: u8, hi: u8) -> [u8; 2304] {
        core::array::from_fn(|i| lo + ((i % 48) * usize::from(hi - lo) / 47) as u8)
    }

    #[test]
    fn equalize_spreads_a_dim_face_over_the_full_range_and_keeps_order() {
        let mut px = ramp(60, 120);
        let before = px;
        Normalize::Equalize.apply(&mut px, 48, 48);
        assert_eq!(px.iter().min(), Some(&0));
        assert_eq!(px.iter().max(), Some(&255));
        // A monotone map: a brighter pixel never becomes darker than a dimmer one.
        for i in 0..2303 {
            if before[i] <= before[i + 1] {
                assert!(px[i] <= px[i + 1], "pixel {i}: {} -> {}", before[i], px[i]);
            }
        }
    }

    #[test]
    fn equalize_is_blind_to_brightness_and_contrast() {
        let face: [u8; 2304] = core::array::from_fn(|i| ((i * 37 + i / 48 * 11) % 200) as u8);
        let mut a = face;
        let mut b = face.map(|p| p / 2 + 40);
        Normalize::Equalize.apply(&mut a, 48, 48);
        Normalize::Equalize.apply(&mut b, 48, 48);
        // Halving merges neighbouring levels, so the tables differ by at most one merged bin.
        let diff = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
        assert!(diff <= 3, "{diff}");
    }

    #[test]
    fn a_flat_face_and_the_none_rule_are_left_alone() {
        for rule in [Normalize::None, Normalize::Equalize, Normalize::Stretch] {
            let mut flat = [77u8; 2304];
            rule.apply(&mut flat, 48, 48);
            assert!(flat == [77u8; 2304], "{}: {:?}", rule.name(), &flat[..4]);
        }
        // The clip limit spreads a flat tile's histogram over all levels: still flat.
        let mut flat = [77u8; 2304];
        Normalize::Local.apply(&mut flat, 48, 48);
        assert!(flat.iter().all(|&p| p == flat[0]), "{:?}", &flat[..4]);
        let mut px = ramp(10, 200);
        let before = px;
        Normalize::None.apply(&mut px, 48, 48);
        assert_eq!(px, before);
        // Too few pixels for the size given: untouched.
        Normalize::Equalize.apply(&mut px[..100], 48, 48);
        assert_eq!(px, before);
    }

    #[test]
    fn stretch_maps_the_percentile_range_to_the_full_scale() {
        let mut px = ramp(100, 147);
        Normalize::Stretch.apply(&mut px, 48, 48);
        assert_eq!(px[0], 0);
        assert_eq!(px[47], 255);
    }

    #[test]
    fn local_equalization_raises_the_contrast_of_each_half_on_its_own() {
        // Left half a dark texture (levels 10-25), right half a bright one (200-215).
        let before: [u8; 2304] = core::array::from_fn(|i| {
            let (x, y) = (i % 48, i / 48);
            let t = ((x * 7 + y * 13) % 16) as u8;
            if x < 24 {
                10 + t
            } else {
                200 + t
            }
        });
        let mut px = before;
        Normalize::Local.apply(&mut px, 48, 48);
        let range = |img: &[u8; 2304], x: usize| {
            let col = (0..48).map(|y| img[y * 48 + x]);
            col.clone().max().unwrap() - col.min().unwrap()
        };
        // Away from the border between the halves, each side's range at least doubles, from its
        // own tiles' histograms.
        for x in [4, 44] {
            assert!(
                range(&px, x) >= 2 * range(&before, x),
                "column {x}: {} -> {}",
                range(&before, x),
                range(&px, x)
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for rule in ALL {
            assert_eq!(Normalize::from_name(rule.name()), Some(rule));
        }
        assert_eq!(Normalize::from_name("histeq"), None);
    }
}

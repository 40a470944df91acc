//! From any image to the model's 48x48 gray input, with edge-runtime's face pipeline (the same
//! code the firmware runs): 8-bit gray, the face square (from [`crate::faces`]), integer
//! bilinear resize with anti-aliasing taps when shrinking, the light normalization.

use anyhow::{anyhow, Result};
use edge_runtime::preprocess::Square;
use edge_runtime::INPUT_PIXELS;

use crate::frame::GrayFrameBuf;

/// The 8-bit gray version of a decoded image (ITU-R BT.601 luma, as the image crate computes it).
pub fn gray_of(img: &image::DynamicImage) -> GrayFrameBuf {
    let g = img.to_luma8();
    GrayFrameBuf {
        width: g.width() as usize,
        height: g.height() as usize,
        pixels: g.into_raw(),
    }
}

/// The model input for one face square of `gray`.
///
/// # Errors
/// A square outside the image (a caller bug, reported rather than panicking).
pub fn face_input(gray: &GrayFrameBuf, square: Square) -> Result<[u8; INPUT_PIXELS]> {
    face_input_with(gray, square, edge_runtime::normalize::INPUT_RULE)
}

/// [`face_input`] with another light normalization (for measurements).
///
/// # Errors
/// As [`face_input`].
pub fn face_input_with(
    gray: &GrayFrameBuf,
    square: Square,
    rule: edge_runtime::normalize::Normalize,
) -> Result<[u8; INPUT_PIXELS]> {
    let frame = gray.view()?;
    let mut out = [0u8; INPUT_PIXELS];
    edge_runtime::pipeline::face_input_with(&frame, square, rule, &mut out)
        .map_err(|e| anyhow!("{e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_48x48_gray_image_is_only_normalized() {
        let px: Vec<u8> = (0..2304).map(|i| (i * 7 % 200) as u8).collect();
        let g = GrayFrameBuf {
            width: 48,
            height: 48,
            pixels: px.clone(),
        };
        let mut expected = px.clone();
        edge_runtime::normalize::INPUT_RULE.apply(&mut expected, 48, 48);
        assert_ne!(expected, px, "the rule changes a face that spans 0-199");
        assert_eq!(
            face_input(&g, Square::centre(48, 48)).unwrap().to_vec(),
            expected
        );
    }
}

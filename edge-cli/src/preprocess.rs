//! From any image to the model's 48x48 gray input. Until the face detector lands, the face region
//! is the centred square of the image (the whole image when it is already square): photos must be
//! framed on the face.

use edge_runtime::INPUT_PIXELS;
use image::DynamicImage;

/// A region of the original image, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FaceBox {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// The centred square of a `w × h` image.
pub fn centre_square(w: u32, h: u32) -> FaceBox {
    let side = w.min(h);
    FaceBox {
        x: (w - side) / 2,
        y: (h - side) / 2,
        w: side,
        h: side,
    }
}

/// Crops `region`, converts to 8-bit gray and resizes to 48x48 (bilinear; area-averaging first
/// when shrinking by more than 2x so large photos do not alias).
pub fn face_input(img: &DynamicImage, region: FaceBox) -> [u8; INPUT_PIXELS] {
    let gray = img
        .crop_imm(region.x, region.y, region.w, region.h)
        .into_luma8();
    let filter = if gray.width() > 96 {
        image::imageops::FilterType::Lanczos3
    } else {
        image::imageops::FilterType::Triangle
    };
    let small = if gray.width() == 48 && gray.height() == 48 {
        gray
    } else {
        image::imageops::resize(&gray, 48, 48, filter)
    };
    let mut out = [0u8; INPUT_PIXELS];
    out.copy_from_slice(small.as_raw());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centre_square_of_landscape_and_portrait() {
        assert_eq!(
            centre_square(640, 480),
            FaceBox {
                x: 80,
                y: 0,
                w: 480,
                h: 480
            }
        );
        assert_eq!(
            centre_square(48, 100),
            FaceBox {
                x: 0,
                y: 26,
                w: 48,
                h: 48
            }
        );
    }

    #[test]
    fn a_48x48_gray_image_passes_unchanged() {
        let px: Vec<u8> = (0..2304).map(|i| (i % 256) as u8).collect();
        let img =
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(48, 48, px.clone()).expect("img"));
        assert_eq!(face_input(&img, centre_square(48, 48)).to_vec(), px);
    }
}

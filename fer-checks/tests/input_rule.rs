//! The one image-to-48x48 rule (`fer_dataset::data::to_gray48`: centred square, edge-runtime's
//! integer resize — what `edge-cli classify` and the firmware do) keeps the published model's
//! accuracy on images that are not 48x48: the test split's faces enlarged to the sizes other
//! FER-2013 copies and face crops come in, then brought back by the rule, classified by the
//! published int8 model. The Lanczos stretch that training and `edge-cli eval` used before is
//! printed beside it for the record (docs/design.md).

use edge_runtime::Model;
use fer_checks::{artifact, test_split};
use fer_dataset::data::{to_gray48, Sample, SIDE};
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage};

fn accuracy(model: &Model<'_>, faces: impl Iterator<Item = ([u8; 2304], usize)>) -> f64 {
    let mut arena = vec![0i8; model.arena_size()];
    let (mut right, mut n) = (0usize, 0usize);
    for (px, label) in faces {
        right += usize::from(model.run(&px, &mut arena).expect("run").argmax().index() == label);
        n += 1;
    }
    right as f64 / n as f64
}

fn enlarged(s: &Sample, w: u32, h: u32) -> GrayImage {
    let g = GrayImage::from_raw(SIDE as u32, SIDE as u32, s.pixels.to_vec()).expect("48x48");
    image::imageops::resize(&g, w, h, FilterType::Lanczos3)
}

#[test]
fn enlarged_faces_brought_back_by_the_one_rule_keep_the_accuracy() {
    let model_file = artifact("fer_cnn.int8.bin");
    let model = Model::from_bytes(&model_file).expect("model");
    let samples = test_split();
    let original = accuracy(&model, samples.iter().map(|s| (*s.pixels, s.label.index())));
    eprintln!(
        "test split, {} faces: 48x48 as stored {:.2}%",
        samples.len(),
        100.0 * original
    );
    for side in [96u32, 150] {
        let rule = accuracy(
            &model,
            samples.iter().map(|s| {
                let img = DynamicImage::ImageLuma8(enlarged(s, side, side));
                let (px, converted) = to_gray48(img).expect("rule");
                assert!(converted);
                (*px, s.label.index())
            }),
        );
        let stretch = accuracy(
            &model,
            samples.iter().map(|s| {
                let back = image::imageops::resize(
                    &enlarged(s, side, side),
                    SIDE as u32,
                    SIDE as u32,
                    FilterType::Lanczos3,
                );
                let mut px = [0u8; 2304];
                px.copy_from_slice(back.as_raw());
                (px, s.label.index())
            }),
        );
        eprintln!(
            "enlarged to {side}x{side}: the rule {:.2}%, Lanczos stretch {:.2}%",
            100.0 * rule,
            100.0 * stretch
        );
        assert!(
            rule >= original - 0.01,
            "{side}x{side}: {rule:.4} loses more than a point against {original:.4}"
        );
    }
}

/// A colour image that is not square: its centred square, in gray.
#[test]
fn a_wide_colour_image_gives_its_centred_square() {
    let mut img = image::RgbImage::new(96, 48);
    for (x, _, p) in img.enumerate_pixels_mut() {
        *p = if (24..72).contains(&x) {
            image::Rgb([200, 200, 200])
        } else {
            image::Rgb([0, 0, 255])
        };
    }
    let (px, converted) = to_gray48(DynamicImage::ImageRgb8(img)).expect("rule");
    assert!(converted);
    assert!(px.iter().all(|&v| v == 200), "{:?}", &px[..8]);
    let empty = DynamicImage::ImageLuma8(GrayImage::new(0, 5));
    let err = to_gray48(empty).unwrap_err().to_string();
    assert!(err.contains("0x5"), "{err}");
}

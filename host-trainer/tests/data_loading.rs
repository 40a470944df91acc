//! Both Kaggle folder layouts, the original CSV, image conversion, the split and its manifest,
//! on real FER-2013 images.

mod common;

use edge_runtime::normalize::{Normalize, INPUT_RULE};
use std::fmt::Write as _;

use common::*;
use edge_runtime::labels::{Emotion, CLASS_COUNT};
use fer_dataset::data::{self, BadImages, PIXELS};
use fer_dataset::split::{self, Manifest};

#[test]
fn kaggle_layout_with_both_spellings_and_png_gives_the_same_pixels() {
    let train = first_images("train", 4);
    let test = first_images("test", 2);
    let jpg = temp();
    copy_layout(jpg.path(), "train", &train, false, false);
    copy_layout(jpg.path(), "test", &test, false, false);
    let png = temp();
    copy_layout(png.path(), "train", &train, true, true);
    copy_layout(png.path(), "test", &test, true, true);

    let a = data::load(jpg.path(), BadImages::Fail).expect("jpg layout loads");
    let b = data::load(png.path(), BadImages::Fail).expect("png layout with alternate names loads");
    assert_eq!(a.samples.len(), 6 * CLASS_COUNT);
    assert_eq!(b.samples.len(), 6 * CLASS_COUNT);
    assert_eq!(a.class_counts(), [6; CLASS_COUNT]);
    assert_eq!(a.converted, 0, "FER-2013 JPEGs are already 48x48 gray");
    for (x, y) in a.samples.iter().zip(&b.samples) {
        assert_eq!(x.label, y.label);
        assert_eq!(x.pixels, y.pixels, "{} and {} differ", x.id, y.id);
    }
    assert!(a.samples.iter().any(|s| s.id.starts_with("test/surprise/")));
    assert!(b.samples.iter().any(|s| s.id.starts_with("train/fearful/")));
}

#[test]
fn larger_colour_images_are_converted_and_counted() {
    let files = first_images("train", 1);
    let dir = temp();
    copy_layout(dir.path(), "train", &files, false, false);
    // Replace the happy face with a 96x96 RGB version of itself.
    let (src, _) = files
        .iter()
        .find(|(_, e)| *e == Emotion::Happy)
        .expect("a happy face");
    let gray = image::open(src).expect("decode").to_luma8();
    let big = image::imageops::resize(&gray, 96, 96, image::imageops::FilterType::Nearest);
    let rgb = image::DynamicImage::ImageLuma8(big).to_rgb8();
    let happy_dir = dir.path().join("train/happy");
    for f in std::fs::read_dir(&happy_dir).expect("list") {
        std::fs::remove_file(f.expect("entry").path()).expect("remove");
    }
    rgb.save(happy_dir.join("big.png")).expect("save");

    // The geometry alone (no light normalization): the pixels compare with the original's.
    let ds = data::load_with(dir.path(), BadImages::Fail, Normalize::None).expect("loads");
    assert_eq!(ds.converted, 1);
    let s = ds
        .samples
        .iter()
        .find(|s| s.id == "train/happy/big.png")
        .expect("converted sample");
    // Downscaling a nearest-neighbour 2x upscale gives back (nearly) the original face.
    let diff: f64 = s
        .pixels
        .iter()
        .zip(gray.as_raw())
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs())
        .sum::<f64>()
        / PIXELS as f64;
    assert!(diff < 6.0, "mean absolute difference {diff}");
}

/// Writes the images as Kaggle's `fer2013.csv` (emotion codes in Kaggle's order).
fn write_csv(files: &[(std::path::PathBuf, Emotion)], usage: &str) -> String {
    let mut csv = String::from("emotion,pixels,Usage\n");
    for (path, e) in files {
        let code = (0..7u8)
            .find(|&c| Emotion::from_csv_code(c) == Some(*e))
            .expect("code");
        let img = image::open(path).expect("decode").to_luma8();
        let pixels: Vec<String> = img.as_raw().iter().map(|p| p.to_string()).collect();
        let _ = writeln!(csv, "{code},{},{usage}", pixels.join(" "));
    }
    csv
}

#[test]
fn original_csv_matches_the_folder_images_and_holds_back_private_test() {
    let files = first_images("train", 3);
    let dir = temp();
    let mut csv = write_csv(&files, "Training");
    csv.push_str(
        write_csv(&files[..2], "PrivateTest").trim_start_matches("emotion,pixels,Usage\n"),
    );
    std::fs::write(dir.path().join("fer2013.csv"), csv).expect("write csv");

    // The folder holding the CSV and the CSV file itself both work.
    for path in [dir.path().to_path_buf(), dir.path().join("fer2013.csv")] {
        let ds = data::load(&path, BadImages::Fail).expect("csv loads");
        assert_eq!(ds.source, "csv");
        assert_eq!(
            ds.samples.len(),
            files.len(),
            "PrivateTest rows are held out"
        );
        for (s, (p, e)) in ds.samples.iter().zip(&files) {
            assert_eq!(s.label, *e);
            // The CSV's rows get the same light normalization as the folder's images.
            let mut img = image::open(p).expect("decode").to_luma8();
            INPUT_RULE.apply(&mut img, 48, 48);
            assert_eq!(&s.pixels[..], img.as_raw().as_slice());
        }
        let raw = data::load_with(&path, BadImages::Fail, Normalize::None).expect("csv loads");
        let img = image::open(&files[0].0).expect("decode").to_luma8();
        assert_eq!(&raw.samples[0].pixels[..], img.as_raw().as_slice());
        assert_eq!(ds.samples[0].id, "fer2013.csv:2");
    }
}

#[test]
fn split_is_stratified_deterministic_and_the_manifest_reloads_the_same_files() {
    let files = first_images("train", 20);
    let dir = temp();
    copy_layout(dir.path(), "train", &files, false, false);
    let ds = data::load(dir.path(), BadImages::Fail).expect("loads");
    let a = split::stratified(ds.samples.clone(), 42);
    let mut shuffled = ds.samples.clone();
    shuffled.reverse();
    let b = split::stratified(shuffled, 42);
    let c = split::stratified(ds.samples, 7);
    let ids = |v: &[data::Sample]| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&a.test),
        ids(&b.test),
        "order of the input does not matter"
    );
    assert_ne!(ids(&a.test), ids(&c.test), "the seed does");
    // 20 per class: 14 / 4 / 2.
    assert_eq!(
        (a.train.len(), a.validation.len(), a.test.len()),
        (98, 28, 14)
    );
    for e in Emotion::ALL {
        assert_eq!(a.test.iter().filter(|s| s.label == e).count(), 2);
    }
    let m = Manifest::new(&a, 42, "folders");
    let path = dir.path().join("split.json");
    std::fs::write(&path, serde_json::to_string(&m).expect("json")).expect("write");
    let m2 = Manifest::read(&path).expect("manifest reads back");
    let test = data::load_ids(dir.path(), &m2.part("test").expect("test part")).expect("reload");
    assert_eq!(ids(&test), ids(&a.test));
    for (x, y) in test.iter().zip(&a.test) {
        assert_eq!(x.pixels, y.pixels);
    }
}

/// A manifest lists each file once, with the model's labels and a known source: one test file
/// repeated 1,000 times would give "100% on 1000 images", one in two parts would leak.
#[test]
fn a_manifest_with_repeated_files_or_other_labels_is_refused() {
    let files = first_images("train", 10);
    let dir = temp();
    copy_layout(dir.path(), "train", &files, false, false);
    let ds = data::load(dir.path(), BadImages::Fail).expect("loads");
    let good = Manifest::new(&split::stratified(ds.samples, 42), 42, "folders");
    assert!(!good.test.is_empty() && !good.train.is_empty());
    let path = dir.path().join("split.json");
    let refused = |m: &Manifest| -> String {
        std::fs::write(&path, serde_json::to_string(m).expect("json")).expect("write");
        format!("{:#}", Manifest::read(&path).expect_err("must be refused"))
    };
    let mut repeated = good.clone();
    let one = repeated.test[0].clone();
    repeated.test = vec![one; 1000];
    let e = refused(&repeated);
    assert!(
        e.contains("listed twice") && e.contains("in test and in test"),
        "{e}"
    );
    let mut leaking = good.clone();
    leaking.test.push(leaking.train[0].clone());
    let e = refused(&leaking);
    assert!(e.contains("in train and in test"), "{e}");
    let mut labels = good.clone();
    labels.labels.swap(0, 1);
    let e = refused(&labels);
    assert!(
        e.contains("labels are") && e.contains("output order"),
        "{e}"
    );
    let mut source = good.clone();
    source.source = "somewhere".into();
    let e = refused(&source);
    assert!(e.contains("source is 'somewhere'"), "{e}");
    std::fs::write(&path, serde_json::to_string(&good).expect("json")).expect("write");
    Manifest::read(&path).expect("the good one reads");
}

//! Loading FER-2013 from Kaggle's folder layout or from the original `fer2013.csv`.
//!
//! Every image becomes a 48x48 8-bit gray [`Sample`]; images of another size or colour are
//! converted (and counted). Errors name the file, line or folder and what was expected.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use edge_runtime::labels::{Emotion, CLASS_COUNT};
use edge_runtime::normalize::{Normalize, INPUT_RULE};
use edge_runtime::preprocess::Square;

/// Side of the square input image, in pixels.
pub const SIDE: usize = 48;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;

/// One labelled 48x48 gray face.
#[derive(Clone)]
pub struct Sample {
    /// Where it came from, relative to the data root: `train/happy/Training_1.jpg`, or
    /// `fer2013.csv:123` (line number) for the CSV.
    pub id: String,
    pub label: Emotion,
    pub pixels: Box<[u8; PIXELS]>,
}

impl fmt::Debug for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sample({}, {})", self.id, self.label.name())
    }
}

/// How the loader treats images it cannot decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadImages {
    /// Stop with an error naming the file.
    Fail,
    /// Skip it and count it.
    Skip,
}

/// The merged data set, with what the loader had to do to it.
#[derive(Debug, Default)]
pub struct Dataset {
    pub samples: Vec<Sample>,
    /// Images that were not 48x48 8-bit gray and were converted.
    pub converted: usize,
    /// Images skipped because they could not be read (only with [`BadImages::Skip`]).
    pub skipped: Vec<String>,
    /// `folders` or `csv`.
    pub source: String,
}

impl Dataset {
    /// Number of samples per class, in [`Emotion::ALL`] order.
    pub fn class_counts(&self) -> [usize; CLASS_COUNT] {
        let mut counts = [0; CLASS_COUNT];
        for s in &self.samples {
            counts[s.label.index()] += 1;
        }
        counts
    }
}

/// Loads FER-2013 from `path`: a folder with `train/` and `test/` (Kaggle layout, merged as the
/// paper does), a folder of class folders, a folder holding `fer2013.csv`, or the CSV file itself.
///
/// # Errors
/// A missing path, an unknown class folder, an empty class, an unreadable image (with
/// [`BadImages::Fail`]) or a malformed CSV row, each named.
pub fn load(path: &Path, bad: BadImages) -> Result<Dataset> {
    load_with(path, bad, INPUT_RULE)
}

/// [`load`] with the faces normalized by `rule` instead of the published [`INPUT_RULE`] (for a
/// training run that measures another rule).
///
/// # Errors
/// As [`load`].
pub fn load_with(path: &Path, bad: BadImages, rule: Normalize) -> Result<Dataset> {
    if !path.exists() {
        bail!(
            "data path {} does not exist; pass --data with FER-2013 in Kaggle's folder layout \
             (train/ and test/ with one folder per class) or the original fer2013.csv",
            path.display()
        );
    }
    if path.is_file() {
        return load_csv(path, rule);
    }
    let csv = path.join("fer2013.csv");
    let has_splits = path.join("train").is_dir() || path.join("test").is_dir();
    if !has_splits && csv.is_file() {
        return load_csv(&csv, rule);
    }
    load_folders(path, bad, rule)
}

/// The labelled image files of a folder layout, before anything is decoded.
#[derive(Debug, Default)]
pub struct Listing {
    /// Each image file with the class of its folder, in sorted order.
    pub files: Vec<(PathBuf, Emotion)>,
    /// Entries named like images that are not regular files (dangling links, FIFOs, devices,
    /// folders): never opened, reported by the caller.
    pub not_files: Vec<PathBuf>,
}

/// Lists the folder layout `root/{train,test}/<class>/*.{jpg,png}` or `root/<class>/*`: every
/// class folder must be known and hold images, and every class must be present.
///
/// # Errors
/// An unknown or empty class folder, a missing class, or an unreadable folder.
pub fn list_folders(root: &Path) -> Result<Listing> {
    let mut split_dirs: Vec<PathBuf> = ["train", "test"]
        .iter()
        .map(|s| root.join(s))
        .filter(|p| p.is_dir())
        .collect();
    if split_dirs.is_empty() {
        // Maybe the class folders sit directly in root.
        split_dirs.push(root.to_path_buf());
    }
    let mut files: Vec<(PathBuf, Emotion)> = Vec::new();
    let mut not_files: Vec<PathBuf> = Vec::new();
    for dir in &split_dirs {
        let mut per_class = BTreeMap::new();
        for entry in read_dir_sorted(dir)? {
            if !entry.is_dir() {
                continue;
            }
            let name = entry
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let Some(emotion) = Emotion::from_folder_name(&name) else {
                bail!(
                    "unknown class folder {}: expected one of {} (Kaggle also spells them \
                     disgusted, fearful, surprised)",
                    entry.display(),
                    Emotion::ALL.map(|e| e.name()).join(", ")
                );
            };
            let (images, odd): (Vec<PathBuf>, Vec<PathBuf>) = read_dir_sorted(&entry)?
                .into_iter()
                .filter(|p| is_image_name(p))
                .partition(|p| p.is_file());
            // Named like an image but not a regular file (a dangling link, a FIFO, a device, a
            // folder): never opened, and never dropped without a word.
            not_files.extend(odd);
            if images.is_empty() {
                bail!(
                    "class folder {} holds no images (expected .jpg, .jpeg or .png files)",
                    entry.display()
                );
            }
            *per_class.entry(emotion).or_insert(0usize) += images.len();
            files.extend(images.into_iter().map(|p| (p, emotion)));
        }
        if per_class.is_empty() {
            bail!(
                "{} has no class folders: expected folders named {} (and train/ and test/ \
                 above them in Kaggle's layout), or a fer2013.csv",
                dir.display(),
                Emotion::ALL.map(|e| e.name()).join(", ")
            );
        }
    }
    // Every class must be present in the merged set: an empty class cannot be split or learned.
    for e in Emotion::ALL {
        if !files.iter().any(|(_, l)| *l == e) {
            let found: Vec<&str> = Emotion::ALL
                .iter()
                .filter(|c| files.iter().any(|(_, l)| l == *c))
                .map(|c| c.name())
                .collect();
            bail!(
                "class '{}' has no images under {} (expected a folder named {}); found images \
                 of {}: the model learns all seven classes",
                e.name(),
                root.display(),
                e.folder_names(),
                found.join(", ")
            );
        }
    }
    Ok(Listing { files, not_files })
}

/// The folder layout, decoded ([`list_folders`]).
fn load_folders(root: &Path, bad: BadImages, rule: Normalize) -> Result<Dataset> {
    let Listing { files, not_files } = list_folders(root)?;
    let mut data = Dataset {
        source: "folders".into(),
        ..Dataset::default()
    };
    for p in &not_files {
        let e = format!(
            "{}: named like an image but not a regular file (a dangling link, FIFO, device or \
             folder)",
            p.display()
        );
        if bad == BadImages::Fail {
            bail!("{e} (pass --skip-bad to skip it)");
        }
        data.skipped.push(e);
    }
    let decoded = decode_all(&files, rule);
    for ((path, label), result) in files.iter().zip(decoded) {
        let Some(id) = relative_id(root, path) else {
            // The manifest records file names as text: a name that is not UTF-8 could not be
            // found again by the report, the quantizer or edge-cli.
            let e = format!(
                "{}: the file name is not valid UTF-8; rename it (the split manifest stores \
                 names as text)",
                path.display()
            );
            if bad == BadImages::Skip {
                data.skipped.push(e);
                continue;
            }
            bail!("{e} (or pass --skip-bad to skip it)");
        };
        match result {
            Ok((pixels, converted)) => {
                data.converted += usize::from(converted);
                data.samples.push(Sample {
                    id,
                    label: *label,
                    pixels,
                });
            }
            Err(e) if bad == BadImages::Skip => data.skipped.push(format!("{id}: {e:#}")),
            Err(e) => {
                return Err(e.context(format!(
                    "cannot read image {} (pass --skip-bad to skip unreadable images)",
                    path.display()
                )))
            }
        }
    }
    Ok(data)
}

/// Decodes every file, on all cores (decoding is the slow part of loading).
fn decode_all(
    files: &[(PathBuf, Emotion)],
    rule: Normalize,
) -> Vec<Result<(Box<[u8; PIXELS]>, bool)>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().map(|(p, _)| decode_file(p, rule)).collect())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| -> Vec<_> { h.join().unwrap_or_default() })
            .collect()
    })
}

/// Reads one image file as the model's 48x48 gray input, normalized by `rule`; the flag says
/// whether it had to be converted.
pub fn decode_file(path: &Path, rule: Normalize) -> Result<(Box<[u8; PIXELS]>, bool)> {
    to_gray48_with(crate::safe_read::read_image(path)?, rule)
        .with_context(|| path.display().to_string())
}

/// Converts any image to the model's 48x48 8-bit gray input with the one image-to-input rule of
/// the project: BT.601 luma, the centred square (a data set image is a face crop), edge-runtime's
/// integer resize and light normalization ([`edge_runtime::pipeline::face_input`], what
/// `edge-cli classify` and the firmware do). The flag says whether the image had to be converted
/// to 48x48 gray (the normalization is not counted).
///
/// # Errors
/// An image without pixels (0 wide or high).
pub fn to_gray48(img: image::DynamicImage) -> Result<(Box<[u8; PIXELS]>, bool)> {
    to_gray48_with(img, INPUT_RULE)
}

/// [`to_gray48`] with the light normalization `rule`.
///
/// # Errors
/// An image without pixels (0 wide or high).
pub fn to_gray48_with(
    img: image::DynamicImage,
    rule: Normalize,
) -> Result<(Box<[u8; PIXELS]>, bool)> {
    let already = img.width() as usize == SIDE
        && img.height() as usize == SIDE
        && matches!(img, image::DynamicImage::ImageLuma8(_));
    let gray = img.into_luma8();
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let mut pixels = Box::new([0u8; PIXELS]);
    let frame = edge_runtime::preprocess::GrayFrame::new(gray.as_raw(), w, h)
        .map_err(|e| anyhow::anyhow!("{w}x{h} image: {e}"))?;
    edge_runtime::pipeline::face_input_with(&frame, Square::centre(w, h), rule, &mut pixels)
        .map_err(|e| anyhow::anyhow!("{w}x{h} image has no pixels to use: {e}"))?;
    Ok((pixels, !already))
}

/// The original Kaggle CSV: `emotion,pixels,Usage`, emotion 0..6 in Kaggle's order, pixels as
/// 2304 space-separated values. Rows with Usage `PrivateTest` are held out like the folder layout
/// holds them out (see the data README); `Training` and `PublicTest` are merged.
fn load_csv(path: &Path, rule: Normalize) -> Result<Dataset> {
    let text = crate::safe_read::read_to_string(path, crate::safe_read::Kind::Csv)?;
    let name = path
        .file_name()
        .map_or_else(|| "csv".into(), |n| n.to_string_lossy().to_string());
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        bail!(
            "{} is empty: expected the header emotion,pixels,Usage",
            path.display()
        );
    };
    let columns: Vec<&str> = header.trim().split(',').map(str::trim).collect();
    let col = |want: &str| columns.iter().position(|c| c.eq_ignore_ascii_case(want));
    let (Some(ce), Some(cp)) = (col("emotion"), col("pixels")) else {
        bail!(
            "{} line 1: header is '{}', expected columns emotion,pixels,Usage",
            path.display(),
            header.trim()
        );
    };
    let cu = col("usage");
    let mut data = Dataset {
        source: "csv".into(),
        ..Dataset::default()
    };
    for (i, line) in lines {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            bail!(
                "{}:{lineno}: expected {} comma-separated fields ({}), found {}",
                path.display(),
                columns.len(),
                columns.join(","),
                fields.len()
            );
        }
        if let Some(cu) = cu {
            match fields[cu] {
                "Training" | "PublicTest" => {}
                "PrivateTest" => continue,
                other => bail!(
                    "{}:{lineno}: Usage is '{}', expected Training, PublicTest or PrivateTest",
                    path.display(),
                    crate::safe_read::shown_field(other)
                ),
            }
        }
        let label = fields[ce]
            .parse::<u8>()
            .ok()
            .and_then(Emotion::from_csv_code)
            .with_context(|| {
                format!(
                    "{}:{lineno}: emotion is '{}', expected an integer 0-6",
                    path.display(),
                    crate::safe_read::shown_field(fields[ce])
                )
            })?;
        let mut pixels = Box::new([0u8; PIXELS]);
        let mut n = 0;
        for value in fields[cp].split_ascii_whitespace() {
            let v: u8 = value.parse().with_context(|| {
                format!(
                    "{}:{lineno}: pixel {} is '{}', expected an integer 0-255",
                    path.display(),
                    n + 1,
                    crate::safe_read::shown_field(value)
                )
            })?;
            if n < PIXELS {
                pixels[n] = v;
            }
            n += 1;
        }
        if n != PIXELS {
            bail!(
                "{}:{lineno}: {n} pixel values, expected {PIXELS} (48x48)",
                path.display()
            );
        }
        rule.apply(&mut pixels[..], SIDE, SIDE);
        data.samples.push(Sample {
            id: format!("{name}:{lineno}"),
            label,
            pixels,
        });
    }
    for e in Emotion::ALL {
        if !data.samples.iter().any(|s| s.label == e) {
            bail!("{}: class '{}' has no rows", path.display(), e.name());
        }
    }
    Ok(data)
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in
        fs::read_dir(dir).with_context(|| format!("cannot list folder {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("cannot list folder {}", dir.display()))?;
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

fn is_image_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

/// `root/train/happy/x.jpg` → `train/happy/x.jpg`, with `/` on every platform; `None` when a
/// component is not UTF-8.
fn relative_id(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// The file a manifest id names under `root`, refusing ids that would leave it (absolute paths,
/// `..`): a manifest is data, and must not make the tools read elsewhere.
fn manifest_path(root: &Path, id: &str) -> Result<PathBuf> {
    let rel = Path::new(id);
    if id.is_empty()
        || !rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        bail!(
            "manifest entry '{id}' is not a relative path inside the data folder {}",
            root.display()
        );
    }
    Ok(root.join(rel))
}

/// Loads the files a split manifest names (relative ids) from `root`, as [`Sample`]s.
///
/// # Errors
/// A file that is missing or unreadable, or a CSV line that is not in the CSV.
pub fn load_ids(root: &Path, ids: &[(String, Emotion)]) -> Result<Vec<Sample>> {
    load_ids_with(root, ids, INPUT_RULE)
}

/// [`load_ids`] with the faces normalized by `rule`.
///
/// # Errors
/// As [`load_ids`].
pub fn load_ids_with(
    root: &Path,
    ids: &[(String, Emotion)],
    rule: Normalize,
) -> Result<Vec<Sample>> {
    let mut out = Vec::with_capacity(ids.len());
    for_each_id(root, ids, rule, |s| {
        out.push(s);
        Ok(())
    })?;
    Ok(out)
}

/// [`load_ids_with`] one sample at a time: `f` gets each in order, and memory does not grow
/// with the number of ids (a CSV's rows are read once, as they are all in one file).
///
/// # Errors
/// As [`load_ids_with`], or the first error of `f`.
pub fn for_each_id(
    root: &Path,
    ids: &[(String, Emotion)],
    rule: Normalize,
    mut f: impl FnMut(Sample) -> Result<()>,
) -> Result<()> {
    let mut csv_rows: Option<BTreeMap<String, Sample>> = None;
    for (id, label) in ids {
        if let Some((file, _line)) = id.rsplit_once(':').filter(|(f, _)| f.ends_with(".csv")) {
            if csv_rows.is_none() {
                let csv_path = if root.is_file() {
                    root.to_path_buf()
                } else {
                    root.join(file)
                };
                let data = load_csv(&csv_path, rule)?;
                csv_rows = Some(
                    data.samples
                        .into_iter()
                        .map(|s| (s.id.clone(), s))
                        .collect(),
                );
            }
            let s = csv_rows
                .as_ref()
                .and_then(|rows| rows.get(id))
                .with_context(|| format!("manifest row {id} is not in the CSV"))?;
            f(s.clone())?;
        } else {
            let path = manifest_path(root, id)?;
            let (pixels, _) =
                decode_file(&path, rule).with_context(|| format!("manifest file {id}"))?;
            f(Sample {
                id: id.clone(),
                label: *label,
                pixels,
            })?;
        }
    }
    Ok(())
}

/// [`load_with`] one sample at a time for a folder layout (decoded as they come, so memory does
/// not grow with the data set); a CSV is read whole, as [`load_with`] reads it. Unreadable
/// images are skipped with `bad == Skip` (returned as messages) or stop the walk.
///
/// # Errors
/// As [`load_with`], or the first error of `f`.
pub fn for_each_with(
    path: &Path,
    bad: BadImages,
    rule: Normalize,
    mut f: impl FnMut(Sample) -> Result<()>,
) -> Result<Vec<String>> {
    let csv = path.join("fer2013.csv");
    let has_splits = path.join("train").is_dir() || path.join("test").is_dir();
    if !path.is_dir() || (!has_splits && csv.is_file()) {
        let ds = load_with(path, bad, rule)?;
        for s in ds.samples {
            f(s)?;
        }
        return Ok(ds.skipped);
    }
    let Listing { files, not_files } = list_folders(path)?;
    let mut skipped = Vec::new();
    let mut refuse_or_skip = |e: String| -> Result<()> {
        if bad == BadImages::Fail {
            bail!("{e} (pass --skip-bad to skip it)");
        }
        skipped.push(e);
        Ok(())
    };
    for p in &not_files {
        refuse_or_skip(format!(
            "{}: named like an image but not a regular file",
            crate::safe_read::shown_path(p)
        ))?;
    }
    for (file, label) in &files {
        match decode_file(file, rule) {
            Ok((pixels, _)) => f(Sample {
                id: crate::safe_read::shown_path(file.strip_prefix(path).unwrap_or(file)),
                label: *label,
                pixels,
            })?,
            Err(e) => refuse_or_skip(format!("{e:#}"))?,
        }
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_entries_stay_inside_the_data_folder() {
        let root = Path::new("/data/fer");
        assert_eq!(
            manifest_path(root, "train/happy/a.jpg").expect("inside"),
            root.join("train/happy/a.jpg")
        );
        for bad in [
            "../secret.jpg",
            "/etc/passwd",
            "train/../../x.jpg",
            "",
            "./a.jpg",
        ] {
            let e = manifest_path(root, bad).expect_err(bad).to_string();
            assert!(e.contains("not a relative path inside"), "{bad}: {e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_file_name_that_is_not_utf8_has_no_id() {
        use std::os::unix::ffi::OsStrExt;
        let root = Path::new("/data");
        let bad = root.join(std::ffi::OsStr::from_bytes(b"train/happy/caf\xe9.jpg"));
        assert_eq!(relative_id(root, &bad), None);
        let good = root.join("train/happy/cafe.jpg");
        assert_eq!(
            relative_id(root, &good).as_deref(),
            Some("train/happy/cafe.jpg")
        );
    }
}

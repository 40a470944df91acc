//! The deterministic, stratified 70/20/10 split and its manifest.

use std::path::Path;

use anyhow::{bail, Context, Result};
use edge_runtime::labels::{Emotion, CLASS_COUNT};
use serde::{Deserialize, Serialize};

use crate::data::Sample;
use crate::rng::Rng;

/// The three parts of the merged data set.
#[derive(Debug, Default)]
pub struct Split {
    pub train: Vec<Sample>,
    pub validation: Vec<Sample>,
    pub test: Vec<Sample>,
}

impl Split {
    /// Checks that every part holds images: training needs train and validation, the report
    /// and the int8 checks need test. Called before anything is written for a run.
    ///
    /// # Errors
    /// An empty part, with the three sizes and how many images each class needs.
    pub fn check_parts(&self, seed: u64) -> Result<()> {
        let parts = [
            ("train", self.train.len()),
            ("validation", self.validation.len()),
            ("test", self.test.len()),
        ];
        if let Some((empty, _)) = parts.iter().find(|(_, n)| *n == 0) {
            bail!(
                "the split (seed {seed}) gives {} train, {} validation and {} test images: the \
                 {empty} part is empty. Each class is split 70/20/10, so a class needs at least \
                 {MIN_PER_CLASS} images for every part to get one",
                parts[0].1,
                parts[1].1,
                parts[2].1
            );
        }
        Ok(())
    }
}

/// The fewest images of one class that give each part at least one (7 / 2 / 1 at 70/20/10).
pub const MIN_PER_CLASS: usize = 10;

/// Fractions of each class that go to train and validation; the rest is the test split.
pub const TRAIN_FRACTION: f64 = 0.7;
pub const VALIDATION_FRACTION: f64 = 0.2;

/// Splits each class separately (stratified): the class's samples, sorted by id, are shuffled with
/// `seed`, then the first 70% (rounded) go to train, the next 20% (rounded) to validation, the rest
/// to test. The result depends only on the ids, labels and seed, not on file-system order.
pub fn stratified(mut samples: Vec<Sample>, seed: u64) -> Split {
    samples.sort_by(|a, b| a.id.cmp(&b.id));
    let mut by_class: Vec<Vec<Sample>> = vec![Vec::new(); CLASS_COUNT];
    for s in samples {
        by_class[s.label.index()].push(s);
    }
    let mut split = Split::default();
    for (class, mut items) in by_class.into_iter().enumerate() {
        Rng::derive(seed, &[class as u64]).shuffle(&mut items);
        let n = items.len();
        let n_train = (n as f64 * TRAIN_FRACTION).round() as usize;
        let n_val = ((n as f64 * VALIDATION_FRACTION).round() as usize).min(n - n_train);
        let mut rest = items.split_off(n_train);
        let test = rest.split_off(n_val);
        split.train.extend(items);
        split.validation.extend(rest);
        split.test.extend(test);
    }
    split
}

/// One file of a split, by its id relative to the data root.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub file: String,
    pub label: String,
}

/// What a split manifest (`split.json`) holds: enough to rebuild exactly the same three parts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub seed: u64,
    pub source: String,
    pub fractions: [f64; 3],
    pub labels: Vec<String>,
    pub train: Vec<Entry>,
    pub validation: Vec<Entry>,
    pub test: Vec<Entry>,
}

impl Manifest {
    pub fn new(split: &Split, seed: u64, source: &str) -> Self {
        let entries = |v: &[Sample]| {
            v.iter()
                .map(|s| Entry {
                    file: s.id.clone(),
                    label: s.label.name().into(),
                })
                .collect()
        };
        Manifest {
            seed,
            source: source.into(),
            fractions: [
                TRAIN_FRACTION,
                VALIDATION_FRACTION,
                1.0 - TRAIN_FRACTION - VALIDATION_FRACTION,
            ],
            labels: Emotion::ALL.iter().map(|e| e.name().into()).collect(),
            train: entries(&split.train),
            validation: entries(&split.validation),
            test: entries(&split.test),
        }
    }

    /// Reads a manifest and checks it: its `labels` are the model's classes in output order,
    /// its `source` is one the loader writes, every entry's label is a class, and no file is
    /// listed twice (in one part or in two: a repeated test file would count twice, a file in
    /// both training and test would leak).
    ///
    /// # Errors
    /// Unreadable file, bad JSON, other labels or source, an unknown label or a repeated file
    /// (named with its entry).
    pub fn read(path: &Path) -> Result<Self> {
        let text = crate::safe_read::read_to_string(path, crate::safe_read::Kind::Json)
            .with_context(|| format!("cannot read split manifest {}", path.display()))?;
        let m: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid split manifest", path.display()))?;
        let classes: Vec<&str> = Emotion::ALL.iter().map(|e| e.name()).collect();
        if m.labels != classes {
            bail!(
                "{}: labels are {:?}, expected the model's classes in output order {:?}",
                path.display(),
                m.labels,
                classes
            );
        }
        if !matches!(m.source.as_str(), "folders" | "csv") {
            bail!(
                "{}: source is '{}', expected folders or csv",
                path.display(),
                m.source
            );
        }
        let mut seen = std::collections::HashMap::new();
        for (part, entries) in [
            ("train", &m.train),
            ("validation", &m.validation),
            ("test", &m.test),
        ] {
            for e in entries {
                if let Some(first) = seen.insert(e.file.as_str(), part) {
                    bail!(
                        "{}: {} is listed twice (in {first} and in {part}): each file belongs to \
                         one part once",
                        path.display(),
                        e.file
                    );
                }
            }
        }
        for e in m.train.iter().chain(&m.validation).chain(&m.test) {
            if Emotion::from_folder_name(&e.label).is_none() {
                bail!(
                    "{}: entry {} has label '{}', expected one of {}",
                    path.display(),
                    e.file,
                    e.label,
                    Emotion::ALL.map(|e| e.name()).join(", ")
                );
            }
        }
        Ok(m)
    }

    /// The `(id, label)` pairs of one part: "train", "validation" or "test".
    ///
    /// # Errors
    /// Another name, or a part that lists no file (nothing to evaluate or calibrate on).
    pub fn part(&self, name: &str) -> Result<Vec<(String, Emotion)>> {
        let entries = match name {
            "train" => &self.train,
            "validation" => &self.validation,
            "test" => &self.test,
            other => bail!("unknown split '{other}', expected train, validation or test"),
        };
        if entries.is_empty() {
            bail!(
                "the {name} part of the split lists no images (seed {}, {} train, {} validation, \
                 {} test)",
                self.seed,
                self.train.len(),
                self.validation.len(),
                self.test.len()
            );
        }
        Ok(entries
            .iter()
            .filter_map(|e| Emotion::from_folder_name(&e.label).map(|l| (e.file.clone(), l)))
            .collect())
    }
}

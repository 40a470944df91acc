//! Knowledge distillation: a recipe can train the network towards the averaged predictions of
//! finished models ("teachers") as well as towards the labels.
//!
//! `host-trainer teach` runs each teacher once over the training split, on every image and its
//! mirror, and writes the mean of their softmax scores at a temperature `T` into
//! `<out>/teacher-targets.json` (one row per training image, by file id). A recipe with a
//! `distill` part then minimises, per batch,
//!
//! `(1 - weight) · CE(labels) + weight · T² · KL(teacher ‖ softmax(logits / T))`
//!
//! (Hinton et al.'s loss; `T²` keeps the soft term's gradient at the scale of the hard one). The
//! teachers' soft targets belong to the clean image: the student's augmented view of it is
//! close enough for the geometric and photometric jitter of the recipes, and averaging over the
//! mirror makes the target the same for both flips.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::augment::{push_mirrored, push_plain};
use crate::evaluate::EVAL_BATCH;
use crate::model::Net;
use crate::recipe::Distill;
use edge_runtime::labels::CLASS_COUNT;
use fer_dataset::data::{Sample, SIDE};

/// The file `teach` writes into the student's output folder and training reads.
pub const TARGETS_FILE: &str = "teacher-targets.json";

/// One teacher, as `teach` measured it on the validation split.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TeacherSummary {
    /// The weights file, as given on the command line.
    pub model: String,
    /// The recipe it was trained with.
    pub recipe: String,
    /// Its validation accuracy on the images as they are.
    pub validation_accuracy: f64,
    /// Its validation accuracy with the mean of each image's and its mirror's scores.
    pub validation_accuracy_mirrored: f64,
}

/// One training image's soft target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    /// The sample id (`train/happy/Training_1.jpg`).
    pub id: String,
    /// The teachers' mean softmax scores at the file's temperature.
    pub p: [f32; CLASS_COUNT],
}

/// The teachers' soft targets of a run's training samples, in their order, and the temperature
/// they were computed at (training checks it against the recipe it actually runs: on `--resume`
/// that is the checkpoint's).
#[derive(Clone, Debug, PartialEq)]
pub struct SoftTargets {
    pub temperature: f64,
    pub rows: Vec<[f32; CLASS_COUNT]>,
}

/// What `teach` writes: the teachers, the ensemble's validation accuracy, and the targets.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TeacherTargets {
    pub temperature: f64,
    pub teachers: Vec<TeacherSummary>,
    /// Validation accuracy of the mean of all teachers' scores (temperature 1) over each image
    /// and its mirror: what the student is pulled towards.
    pub ensemble_validation_accuracy: f64,
    pub targets: Vec<Target>,
}

impl TeacherTargets {
    /// Reads `path`, checking that every row is a probability vector.
    ///
    /// # Errors
    /// Missing or malformed file, or a row that does not sum to 1.
    pub fn read(path: &Path) -> Result<Self> {
        let targets: TeacherTargets = crate::fsutil::read_json(path)
            .with_context(|| format!("{} is not a teacher-targets file", path.display()))?;
        if !(targets.temperature.is_finite() && targets.temperature > 0.0) {
            bail!(
                "{}: temperature {} is not a positive number",
                path.display(),
                targets.temperature
            );
        }
        for t in &targets.targets {
            let sum: f32 = t.p.iter().sum();
            if t.p.iter().any(|&p| !(0.0..=1.0).contains(&p)) || (sum - 1.0).abs() > 1e-3 {
                bail!(
                    "{}: the target of {} is not a probability vector: {:?}",
                    path.display(),
                    t.id,
                    t.p
                );
            }
        }
        Ok(targets)
    }

    /// The targets of `samples`, in their order.
    ///
    /// # Errors
    /// A sample the file has no target for (the teachers were run on another split), or a
    /// temperature other than `temperature`.
    pub fn aligned(
        &self,
        samples: &[Sample],
        temperature: f64,
        path: &Path,
    ) -> Result<SoftTargets> {
        if (self.temperature - temperature).abs() > 1e-9 {
            bail!(
                "{} holds targets at temperature {}, the recipe distills at {}: run \
                 `host-trainer teach` again with --temperature {temperature}",
                path.display(),
                self.temperature,
                temperature
            );
        }
        let by_id: HashMap<&str, &[f32; CLASS_COUNT]> =
            self.targets.iter().map(|t| (t.id.as_str(), &t.p)).collect();
        let rows = samples
            .iter()
            .map(|s| {
                by_id.get(s.id.as_str()).map(|p| **p).with_context(|| {
                    format!(
                        "{} has no target for training image {}: it was made for another split",
                        path.display(),
                        s.id
                    )
                })
            })
            .collect::<Result<_>>()?;
        Ok(SoftTargets {
            temperature: self.temperature,
            rows,
        })
    }
}

/// Softmax scores of `net` at `temperature` for every sample (row-major `[n, 7]`), of the
/// images as they are or mirrored.
pub fn scores(
    net: &Net,
    samples: &[Sample],
    mirrored: bool,
    temperature: f64,
    device: &Device,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(samples.len() * CLASS_COUNT);
    for chunk in samples.chunks(EVAL_BATCH) {
        let mut pixels = Vec::with_capacity(chunk.len() * SIDE * SIDE);
        for s in chunk {
            if mirrored {
                push_mirrored(&s.pixels, &mut pixels);
            } else {
                push_plain(&s.pixels, &mut pixels);
            }
        }
        let images = Tensor::<4>::from_data(
            TensorData::new(pixels, [chunk.len(), 1, SIDE, SIDE]),
            device,
        );
        let probs = softmax(net.forward(images).div_scalar(temperature), 1);
        out.extend(probs.into_data().iter::<f32>());
    }
    out
}

/// Accuracy of row-major `[n, 7]` scores against the samples' labels (the classification
/// report's figure).
pub fn accuracy(scores: &[f32], samples: &[Sample]) -> f64 {
    let predicted = fer_dataset::metrics::argmax_rows(scores);
    fer_dataset::metrics::Report::from_pairs(samples.iter().map(|s| s.label.index()).zip(predicted))
        .accuracy
}

/// Element-wise mean of equally long score vectors.
pub fn mean(all: &[Vec<f32>]) -> Vec<f32> {
    let n = all.len().max(1) as f32;
    let len = all.first().map_or(0, Vec::len);
    (0..len)
        .map(|i| all.iter().map(|v| v[i]).sum::<f32>() / n)
        .collect()
}

/// The distillation loss of a batch: `weight · T² · KL(teacher ‖ softmax(logits / T))`, mean
/// over the batch. `teacher` is `[n, 7]`, rows summing to 1.
pub fn soft_loss(logits: Tensor<2>, teacher: Tensor<2>, distill: Distill) -> Tensor<1> {
    let t = distill.temperature;
    let student = log_softmax(logits.div_scalar(t), 1);
    // Teacher scores are softmax outputs, never exactly 0 in f32 unless they underflow: the
    // clamp keeps log(0) out of the constant part of the KL.
    let teacher_log = teacher.clone().clamp_min(1e-12).log();
    (teacher * (teacher_log - student))
        .sum_dim(1)
        .mean()
        .mul_scalar(distill.weight * t * t)
}

/// Rows `idx` of `targets` as a `[n, 7]` tensor on `device`.
pub fn batch_targets(targets: &[[f32; CLASS_COUNT]], idx: &[usize], device: &Device) -> Tensor<2> {
    let rows: Vec<f32> = idx.iter().flat_map(|&i| targets[i]).collect();
    Tensor::<2>::from_data(TensorData::new(rows, [idx.len(), CLASS_COUNT]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_runtime::labels::Emotion;
    use fer_dataset::data::PIXELS;

    fn sample(id: &str) -> Sample {
        Sample {
            id: id.into(),
            label: Emotion::Happy,
            pixels: Box::new([0; PIXELS]),
        }
    }

    fn one_hot(i: usize) -> [f32; CLASS_COUNT] {
        let mut p = [0.0; CLASS_COUNT];
        p[i] = 1.0;
        p
    }

    #[test]
    fn targets_align_by_id_and_errors_name_what_is_wrong() {
        let file = TeacherTargets {
            temperature: 4.0,
            teachers: vec![],
            ensemble_validation_accuracy: 0.5,
            targets: vec![
                Target {
                    id: "a".into(),
                    p: one_hot(0),
                },
                Target {
                    id: "b".into(),
                    p: one_hot(3),
                },
            ],
        };
        let path = Path::new("out/teacher-targets.json");
        let got = file
            .aligned(&[sample("b"), sample("a"), sample("b")], 4.0, path)
            .expect("aligned");
        assert_eq!(got.rows, [one_hot(3), one_hot(0), one_hot(3)]);
        assert_eq!(got.temperature, 4.0);
        let e = file.aligned(&[sample("c")], 4.0, path).unwrap_err();
        assert!(
            format!("{e:#}").contains("no target for training image c"),
            "{e:#}"
        );
        let e = file.aligned(&[sample("a")], 2.0, path).unwrap_err();
        assert!(format!("{e:#}").contains("temperature 4"), "{e:#}");

        let dir = tempfile::tempdir().expect("temp dir");
        let written = dir.path().join(TARGETS_FILE);
        std::fs::write(&written, serde_json::to_vec(&file).expect("json")).expect("write");
        assert_eq!(
            TeacherTargets::read(&written).expect("read").targets.len(),
            2
        );
        let mut bad = file.clone();
        bad.targets[1].p[1] = 0.5;
        std::fs::write(&written, serde_json::to_vec(&bad).expect("json")).expect("write");
        let e = TeacherTargets::read(&written).unwrap_err();
        assert!(
            format!("{e:#}").contains("the target of b is not a probability vector"),
            "{e:#}"
        );
    }

    #[test]
    fn soft_loss_is_zero_at_the_teacher_and_its_gradient_points_to_it() {
        let device = crate::device();
        let teacher_logits = Tensor::<2>::from_data(
            TensorData::new(
                vec![2.0f32, 0.5, -1.0, 0.0, 0.3, -0.2, 1.0],
                [1, CLASS_COUNT],
            ),
            &device,
        );
        let d = Distill {
            weight: 0.5,
            temperature: 4.0,
        };
        let teacher = softmax(teacher_logits.clone().div_scalar(4.0), 1);
        let at_teacher: f32 = soft_loss(teacher_logits, teacher.clone(), d).into_scalar();
        assert!(
            at_teacher.abs() < 1e-6,
            "KL of identical distributions: {at_teacher}"
        );

        let ad = device.clone().autodiff();
        let student = Tensor::<2>::zeros([1, CLASS_COUNT], &ad).set_require_grad(true);
        let loss = soft_loss(student.clone(), teacher.clone().to_device(&ad), d);
        let value: f32 = loss.clone().into_scalar();
        assert!(value > 0.0);
        let grad = student.grad(&loss.backward()).expect("gradient");
        // d/dz of w·T²·KL(q ‖ softmax(z/T)) = w·T·(softmax(z/T) - q); at z = 0 softmax is uniform.
        let q: Vec<f32> = teacher.into_data().iter::<f32>().collect();
        let g: Vec<f32> = grad.into_data().iter::<f32>().collect();
        for (gi, qi) in g.iter().zip(&q) {
            let expected = 0.5 * 4.0 * (1.0 / CLASS_COUNT as f32 - qi);
            assert!((gi - expected).abs() < 1e-5, "{gi} vs {expected}");
        }
    }
}

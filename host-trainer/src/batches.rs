//! Batches: assembling images on the host (with the epoch's augmentation), copying them to the
//! device, and preparing the next training batch on a worker thread while the current step runs.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::mpsc;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::augment::{push_augmented, push_distorted, push_plain};
use crate::recipe::Augment;
use edge_runtime::normalize::Normalize;
use fer_dataset::data::{Sample, PIXELS, SIDE};
use fer_dataset::rng::Rng;

/// One batch on the host: network inputs (x/255, augmented), class indices, and which samples
/// they are.
pub struct HostBatch {
    pub pixels: Vec<f32>,
    pub labels: Vec<i64>,
    /// Each image's index in the sample list it was assembled from.
    pub samples: Vec<usize>,
}

/// The raw faces (no light rule) a camera-degrading recipe starts from, in the order of the
/// samples, and the light rule applied after the degradations.
#[derive(Clone, Copy)]
pub struct RawFaces<'a> {
    pub samples: &'a [Sample],
    pub rule: Normalize,
}

impl HostBatch {
    /// Assembles the samples `idx` of `samples`, augmented when `augment` is given. With
    /// `augment.camera` and `raw`, each face is the raw one degraded like a camera frame
    /// ([`crate::camera_like`]) and then normalized by the light rule, before the other
    /// augmentation.
    pub fn assemble(
        samples: &[Sample],
        idx: &[usize],
        augment: Option<(Augment, &mut Rng)>,
        raw: Option<RawFaces<'_>>,
    ) -> Self {
        let mut pixels = Vec::with_capacity(idx.len() * SIDE * SIDE);
        let faces: Vec<Cow<'_, [u8; PIXELS]>> = match (&augment, raw) {
            (
                Some((
                    Augment {
                        camera: Some(_), ..
                    },
                    _,
                )),
                Some(_),
            ) => Vec::new(),
            _ => idx
                .iter()
                .map(|&i| Cow::Borrowed(&*samples[i].pixels))
                .collect(),
        };
        let faces = match (augment, raw) {
            (
                Some((
                    aug @ Augment {
                        camera: Some(c), ..
                    },
                    rng,
                )),
                Some(raw),
            ) => {
                let degraded: Vec<Cow<'_, [u8; PIXELS]>> = idx
                    .iter()
                    .map(|&i| {
                        let mut px: [u8; PIXELS] = *raw.samples[i].pixels;
                        crate::camera_like::degrade(&mut px, &c, rng);
                        raw.rule.apply(&mut px, SIDE, SIDE);
                        Cow::Owned(px)
                    })
                    .collect();
                push_all(&degraded, Some((aug, rng)), &mut pixels);
                degraded
            }
            (augment, _) => {
                push_all(&faces, augment, &mut pixels);
                faces
            }
        };
        debug_assert_eq!(faces.len(), idx.len());
        let labels = idx
            .iter()
            .map(|&i| samples[i].label.index() as i64)
            .collect();
        HostBatch {
            pixels,
            labels,
            samples: idx.to_vec(),
        }
    }

    /// The `[n, 1, 48, 48]` input and the `[n]` targets on `device`.
    pub fn to_device(self, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        let n = self.labels.len();
        let images =
            Tensor::<4>::from_data(TensorData::new(self.pixels, [n, 1, SIDE, SIDE]), device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(self.labels, [n]), device);
        (images, targets)
    }
}

/// Appends the network inputs of `faces` to `out`: distorted, shifted or plain per `augment`.
fn push_all(
    faces: &[Cow<'_, [u8; PIXELS]>],
    augment: Option<(Augment, &mut Rng)>,
    out: &mut Vec<f32>,
) {
    match augment {
        Some((
            Augment {
                flip,
                distort: Some(d),
                ..
            },
            rng,
        )) => {
            for f in faces {
                push_distorted(f, flip, &d, rng, out);
            }
        }
        Some((aug, rng)) if aug.flip || aug.max_shift > 0 => {
            for f in faces {
                push_augmented(f, aug.flip, aug.max_shift, rng, out);
            }
        }
        _ => {
            for f in faces {
                push_plain(f, out);
            }
        }
    }
}

/// Builds the `[n, 1, 48, 48]` input (x/255, augmented when `augment` is given) and the targets.
pub fn make_batch(
    samples: &[Sample],
    idx: &[usize],
    augment: Option<(Augment, &mut Rng)>,
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>) {
    HostBatch::assemble(samples, idx, augment, None).to_device(device)
}

/// What the training batches of one epoch are made of.
pub struct EpochBatches<'a> {
    pub samples: &'a [Sample],
    /// The epoch's shuffled sample order.
    pub order: &'a [usize],
    pub batch_size: usize,
    pub augment: Augment,
    /// Batch `b`'s augmentation draws come from `Rng::derive(seed, &[2, epoch, b])`, so a batch
    /// is the same whichever thread makes it and wherever a resumed epoch starts.
    pub seed: u64,
    pub epoch: usize,
    /// The raw faces camera degradations start from (recipes with `camera`).
    pub raw: Option<RawFaces<'a>>,
}

impl EpochBatches<'_> {
    /// Batch `b` of the epoch.
    pub fn batch(&self, b: usize) -> HostBatch {
        let end = ((b + 1) * self.batch_size).min(self.order.len());
        let idx = &self.order[b * self.batch_size..end];
        let mut rng = Rng::derive(self.seed, &[2, self.epoch as u64, b as u64]);
        HostBatch::assemble(self.samples, idx, Some((self.augment, &mut rng)), self.raw)
    }

    /// Runs `consume` over batches `range`, each assembled on a worker thread while the one
    /// before it is consumed (at most two wait ready). Stopping early is fine: the worker ends
    /// when the receiving side is gone.
    pub fn prefetched<T>(
        &self,
        range: Range<usize>,
        consume: impl FnOnce(&mut dyn Iterator<Item = (usize, HostBatch)>) -> T,
    ) -> T {
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::sync_channel(2);
            let worker_range = range.clone();
            scope.spawn(move || {
                for b in worker_range {
                    if tx.send((b, self.batch(b))).is_err() {
                        return;
                    }
                }
            });
            let mut batches = rx.into_iter();
            let result = consume(&mut batches);
            // Dropping the receiver ends a worker that is still making batches.
            drop(batches);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_runtime::labels::Emotion;

    fn samples(n: usize) -> Vec<Sample> {
        let mut rng = Rng::new(9);
        (0..n)
            .map(|i| {
                let mut pixels = Box::new([0u8; fer_dataset::data::PIXELS]);
                pixels.iter_mut().for_each(|p| *p = rng.below(256) as u8);
                Sample {
                    id: format!("s{i}"),
                    label: Emotion::ALL[i % Emotion::ALL.len()],
                    pixels,
                }
            })
            .collect()
    }

    #[test]
    fn prefetched_batches_are_the_batches_in_order() {
        let samples = samples(23);
        let order: Vec<usize> = (0..23).rev().collect();
        let epoch = EpochBatches {
            samples: &samples,
            order: &order,
            batch_size: 5,
            augment: crate::recipe::Recipe::v2().augment_at(0),
            seed: 42,
            epoch: 3,
            raw: None,
        };
        let got: Vec<(usize, HostBatch)> = epoch.prefetched(1..5, |it| it.collect());
        assert_eq!(
            got.iter().map(|(b, _)| *b).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        for (b, batch) in &got {
            let direct = epoch.batch(*b);
            assert_eq!(batch.pixels, direct.pixels, "batch {b}");
            assert_eq!(batch.labels, direct.labels, "batch {b}");
            assert_eq!(batch.samples, direct.samples, "batch {b}");
        }
        // Batch 1 is samples 5-9 of the order: 17, 16, 15, 14, 13.
        assert_eq!(got[0].1.samples, [17, 16, 15, 14, 13]);
        // The last batch is short: 23 = 4·5 + 3.
        assert_eq!(got[3].1.labels.len(), 3);
        assert_eq!(got[3].1.pixels.len(), 3 * SIDE * SIDE);
        // Stopping after one batch does not hang.
        let first = epoch.prefetched(0..5, |it| it.next().map(|(b, _)| b));
        assert_eq!(first, Some(0));
    }

    #[test]
    fn camera_degradations_start_from_the_raw_faces_and_end_with_the_light_rule() {
        use edge_runtime::normalize::Normalize;
        let raw = samples(6);
        let mut ruled = raw.clone();
        for s in &mut ruled {
            Normalize::Equalize.apply(&mut s.pixels[..], SIDE, SIDE);
        }
        let camera = crate::recipe::Camera {
            blur_p: 1.0,
            ..crate::recipe::Camera::OFF
        };
        let augment = Augment {
            flip: false,
            max_shift: 0,
            distort: None,
            camera: Some(camera),
        };
        let faces = RawFaces {
            samples: &raw,
            rule: Normalize::Equalize,
        };
        let idx = [4, 1, 2];
        let got = HostBatch::assemble(&ruled, &idx, Some((augment, &mut Rng::new(3))), Some(faces));
        let mut want = Vec::new();
        for &i in &idx {
            let mut px = *raw[i].pixels;
            crate::camera_like::blur(&mut px);
            Normalize::Equalize.apply(&mut px, SIDE, SIDE);
            crate::augment::push_plain(&px, &mut want);
        }
        assert_eq!(got.pixels, want);
        assert_eq!(got.samples, idx);
        // Without the raw faces (evaluation batches) the ruled faces are taken as they are.
        let plain = HostBatch::assemble(&ruled, &idx, None, None);
        let mut want = Vec::new();
        for &i in &idx {
            crate::augment::push_plain(&ruled[i].pixels, &mut want);
        }
        assert_eq!(plain.pixels, want);
    }
}

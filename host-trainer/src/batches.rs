//! Batches: assembling images on the host (with the epoch's augmentation), copying them to the
//! device, and preparing the next training batch on a worker thread while the current step runs.

use std::ops::Range;
use std::sync::mpsc;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::augment::{push_augmented, push_distorted, push_plain};
use crate::recipe::Augment;
use fer_dataset::data::{Sample, SIDE};
use fer_dataset::rng::Rng;

/// One batch on the host: network inputs (x/255, augmented), class indices, and which samples
/// they are.
pub struct HostBatch {
    pub pixels: Vec<f32>,
    pub labels: Vec<i64>,
    /// Each image's index in the sample list it was assembled from.
    pub samples: Vec<usize>,
}

impl HostBatch {
    /// Assembles the samples `idx` of `samples`, augmented when `augment` is given.
    pub fn assemble(
        samples: &[Sample],
        idx: &[usize],
        augment: Option<(Augment, &mut Rng)>,
    ) -> Self {
        let mut pixels = Vec::with_capacity(idx.len() * SIDE * SIDE);
        match augment {
            Some((
                Augment {
                    flip,
                    distort: Some(d),
                    ..
                },
                rng,
            )) => {
                for &i in idx {
                    push_distorted(&samples[i].pixels, flip, &d, rng, &mut pixels);
                }
            }
            Some((aug, rng)) if aug.is_active() => {
                for &i in idx {
                    push_augmented(
                        &samples[i].pixels,
                        aug.flip,
                        aug.max_shift,
                        rng,
                        &mut pixels,
                    );
                }
            }
            _ => {
                for &i in idx {
                    push_plain(&samples[i].pixels, &mut pixels);
                }
            }
        }
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

/// Builds the `[n, 1, 48, 48]` input (x/255, augmented when `augment` is given) and the targets.
pub fn make_batch(
    samples: &[Sample],
    idx: &[usize],
    augment: Option<(Augment, &mut Rng)>,
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>) {
    HostBatch::assemble(samples, idx, augment).to_device(device)
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
}

impl EpochBatches<'_> {
    /// Batch `b` of the epoch.
    pub fn batch(&self, b: usize) -> HostBatch {
        let end = ((b + 1) * self.batch_size).min(self.order.len());
        let idx = &self.order[b * self.batch_size..end];
        let mut rng = Rng::derive(self.seed, &[2, self.epoch as u64, b as u64]);
        HostBatch::assemble(self.samples, idx, Some((self.augment, &mut rng)))
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
}

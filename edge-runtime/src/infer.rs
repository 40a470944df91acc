//! Running a validated model on one 48x48 gray image.

use crate::error::Error;
use crate::format::{Kind, LayerDesc, Model, INPUT_SIDE};
use crate::kernels::{conv, dense, shape};
use crate::labels::{Emotion, CLASS_COUNT};

/// Pixels of the model input (48 × 48).
pub const INPUT_PIXELS: usize = INPUT_SIDE as usize * INPUT_SIDE as usize;
// The preprocessing makes inputs of this size.
const _: () = assert!(INPUT_PIXELS == crate::preprocess::SIDE * crate::preprocess::SIDE);

/// The int8 logits of one inference, and what they mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Logits(pub [i8; CLASS_COUNT]);

impl Logits {
    /// The predicted class: the largest logit (the first one on ties). Integer-exact.
    pub fn argmax(&self) -> Emotion {
        first_largest(&self.0)
    }
}

/// The logits of a face and of its mirror image (flipped left to right), summed: flip test-time
/// augmentation, integer-exact, for twice the MACs of one inference ([`Model::run_mirrored`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MirroredLogits(pub [i16; CLASS_COUNT]);

impl MirroredLogits {
    /// The predicted class: the largest sum (the first one on ties). Integer-exact.
    pub fn argmax(&self) -> Emotion {
        first_largest(&self.0)
    }
}

/// The class of the largest value, the first one on ties.
pub(crate) fn first_largest<T: PartialOrd>(v: &[T; CLASS_COUNT]) -> Emotion {
    let mut best = 0;
    for i in 1..CLASS_COUNT {
        if v[i] > v[best] {
            best = i;
        }
    }
    Emotion::ALL[best]
}

/// Converts a gray pixel to the int8 input: `q = p − 128` (scale 1/255, zero point −128, which
/// is exactly p/255; docs/design.md).
#[inline]
pub fn pixel_to_input(p: u8) -> i8 {
    (p ^ 0x80) as i8
}

impl Model<'_> {
    /// Classifies a 48x48 gray image (row-major `u8` pixels) using `arena` as scratch memory.
    ///
    /// # Errors
    /// [`Error::InputSize`] or [`Error::ArenaTooSmall`]; nothing else can fail on a validated model.
    pub fn run(&self, pixels: &[u8], arena: &mut [i8]) -> Result<Logits, Error> {
        self.run_observed(pixels, arena, |_, _, _| {})
    }

    /// Classifies a face and its mirror image and sums their logits ([`MirroredLogits`]): flip
    /// test-time augmentation, two inferences.
    ///
    /// # Errors
    /// As [`Model::run`].
    pub fn run_mirrored(&self, pixels: &[u8], arena: &mut [i8]) -> Result<MirroredLogits, Error> {
        let a = self.run(pixels, arena)?;
        let side = usize::from(INPUT_SIDE);
        let mut mirror = [0u8; INPUT_PIXELS];
        for (dst, src) in mirror.chunks_exact_mut(side).zip(pixels.chunks_exact(side)) {
            for (d, &p) in dst.iter_mut().zip(src.iter().rev()) {
                *d = p;
            }
        }
        let b = self.run(&mirror, arena)?;
        Ok(MirroredLogits(core::array::from_fn(|i| {
            i16::from(a.0[i]) + i16::from(b.0[i])
        })))
    }

    /// Like [`Model::run`], calling `observe(layer_index, layer, output)` after every layer.
    ///
    /// # Errors
    /// As [`Model::run`].
    pub fn run_observed(
        &self,
        pixels: &[u8],
        arena: &mut [i8],
        mut observe: impl FnMut(usize, &LayerDesc, &[i8]),
    ) -> Result<Logits, Error> {
        if pixels.len() != INPUT_PIXELS {
            return Err(Error::InputSize {
                expected: INPUT_PIXELS,
                got: pixels.len(),
            });
        }
        if arena.len() < self.arena_size() {
            return Err(Error::ArenaTooSmall {
                needed: self.arena_size(),
                got: arena.len(),
            });
        }
        let (arena, scratch) = arena[..self.arena_size()].split_at_mut(self.activations);
        // The input of layer i sits at the front of the arena when i is even and at the back when
        // i is odd; its output goes to the other end. `validate` made in + out fit for every layer.
        for (dst, &p) in arena.iter_mut().zip(pixels) {
            *dst = pixel_to_input(p);
        }
        let total = arena.len();
        let mut logits = [0i8; CLASS_COUNT];
        for (i, l) in self.layers().iter().enumerate() {
            let (in_len, out_len) = (l.in_len(), l.out_len());
            let (input, output) = if i % 2 == 0 {
                let (front, back) = arena.split_at_mut(total - out_len);
                (&front[..in_len], back)
            } else {
                let (front, back) = arena.split_at_mut(out_len);
                (&back[back.len() - in_len..], front)
            };
            let (weights, bias, stages) =
                (self.blob(l.weights), self.blob(l.bias), self.blob(l.stages));
            match l.kind {
                Kind::Conv3x3 => {
                    let shape = shape::ConvShape {
                        h: usize::from(l.in_h),
                        w: usize::from(l.in_w),
                        cin: usize::from(l.in_c),
                        cout: usize::from(l.out_c),
                        input_zero: i32::from(l.input.zero),
                        relu: l.relu,
                        pool: l.pool,
                    };
                    let wide = self.wide_weights(i);
                    conv::conv3x3(input, weights, bias, stages, &shape, output, scratch, wide);
                }
                Kind::Dense => dense::dense(
                    input,
                    weights,
                    bias,
                    stages,
                    i32::from(l.input.zero),
                    l.relu,
                    output,
                    scratch,
                ),
            }
            observe(i, l, output);
            if i + 1 == self.layers().len() {
                logits.copy_from_slice(&output[..CLASS_COUNT]);
            }
        }
        Ok(Logits(logits))
    }
}

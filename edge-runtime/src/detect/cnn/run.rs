//! Runs a [`CnnDetector`] on a gray frame: the arena planned for the frame size (every tensor at
//! an offset where it does not meet another tensor alive at the same time), then the layers in
//! order. No heap; the caller owns the arena.

use core::fmt;
use core::ops::Range;

use super::file::{CnnDetector, LayerKind, MAX_TENSORS};
use super::ops::{self, AddParams, MapShape};
use crate::kernels::i32_at;
use crate::requant::{Stage, STAGE_BYTES};

/// Why a frame cannot go through the detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RunError {
    /// The frame's sides are not positive multiples of the detector's largest stride.
    FrameSize {
        width: usize,
        height: usize,
        multiple: usize,
    },
    /// The frame buffer does not hold `width × height` pixels.
    FrameLength { expected: usize, got: usize },
    /// At this frame size, layer `layer`'s inputs differ in shape, or a head map is not
    /// `height / stride × width / stride`.
    Shapes { layer: u16 },
    /// The caller's arena is smaller than [`Plan::arena_len`].
    ArenaTooSmall { needed: usize, got: usize },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RunError::FrameSize {
                width,
                height,
                multiple,
            } => write!(
                f,
                "a {width}x{height} frame: the detector needs sides that are positive multiples of {multiple}"
            ),
            RunError::FrameLength { expected, got } => {
                write!(f, "the frame holds {got} pixels, its size says {expected}")
            }
            RunError::Shapes { layer } => write!(
                f,
                "at this frame size the detector's layer {layer} (or a head map) does not get the shapes it needs"
            ),
            RunError::ArenaTooSmall { needed, got } => write!(
                f,
                "the detector's arena has {got} bytes, this frame size needs {needed}"
            ),
        }
    }
}

/// Where every tensor lives in the arena for one frame size.
#[derive(Clone, Debug)]
pub struct Plan {
    pub width: usize,
    pub height: usize,
    shapes: [MapShape; MAX_TENSORS],
    offsets: [usize; MAX_TENSORS],
    /// Start of the pointwise layers' scratch.
    scratch_at: usize,
    len: usize,
}

impl Plan {
    /// Bytes of arena the frame size needs.
    pub fn arena_len(&self) -> usize {
        self.len
    }

    /// Tensor `t`'s shape.
    pub fn shape(&self, t: usize) -> MapShape {
        self.shapes[t]
    }

    /// Tensor `t`'s place in the arena (empty for tensor 0, the frame, which is not in it).
    pub fn range(&self, t: usize) -> Range<usize> {
        if t == 0 {
            return 0..0;
        }
        self.offsets[t]..self.offsets[t] + self.shapes[t].len()
    }
}

const EMPTY: MapShape = MapShape { h: 0, w: 0, c: 0 };

impl CnnDetector<'_> {
    /// Plans the arena for `width × height` frames.
    pub fn plan(&self, width: usize, height: usize) -> Result<Plan, RunError> {
        let multiple = self.max_stride();
        if width == 0
            || height == 0
            || !width.is_multiple_of(multiple)
            || !height.is_multiple_of(multiple)
        {
            return Err(RunError::FrameSize {
                width,
                height,
                multiple,
            });
        }
        let n = self.tensor_count();
        let mut shapes = [EMPTY; MAX_TENSORS];
        shapes[0] = MapShape {
            h: height,
            w: width,
            c: 1,
        };
        // The last layer reading each tensor (heads: read after the last layer).
        let mut last = [0usize; MAX_TENSORS];
        let mut scratch = 0;
        for (k, l) in self.layers().enumerate() {
            let bad = RunError::Shapes { layer: k as u16 };
            let i = shapes[l.input];
            let c = self.tensor(l.output).channels;
            shapes[l.output] = match l.kind {
                LayerKind::Stem => MapShape::stem_output(i.h, i.w, c),
                LayerKind::Pointwise | LayerKind::Depthwise => MapShape { c, ..i },
                LayerKind::MaxPool2 => MapShape {
                    h: i.h / 2,
                    w: i.w / 2,
                    c,
                },
                // Never larger than the frame: a file of many upsamplings is refused here, not
                // allowed to overflow the sizes below.
                LayerKind::Upsample2 if 2 * i.h > height || 2 * i.w > width => return Err(bad),
                LayerKind::Upsample2 => MapShape {
                    h: 2 * i.h,
                    w: 2 * i.w,
                    c,
                },
                LayerKind::Add => {
                    if shapes[l.other] != i {
                        return Err(bad);
                    }
                    i
                }
            };
            let o = shapes[l.output];
            // Every map, and so every sum of offsets below, stays far from overflowing (on the
            // 32-bit M7 too: 128 maps of at most 2^24 values).
            let fits = o.h.checked_mul(o.w).and_then(|v| v.checked_mul(o.c));
            if o.is_empty() || fits.is_none_or(|v| v > 1 << 24) {
                return Err(bad);
            }
            if l.kind == LayerKind::Pointwise {
                scratch = scratch.max(ops::pointwise_scratch(i.c));
            }
            last[l.input] = k;
            last[l.other] = last[l.other].max(if l.kind == LayerKind::Add { k } else { 0 });
        }
        let layers = self.layer_count();
        for h in 0..self.head_count() {
            let head = self.head(h);
            let s = shapes[head.tensor];
            if (s.h, s.w) != (height / head.stride, width / head.stride) {
                return Err(RunError::Shapes {
                    layer: layers as u16,
                });
            }
            last[head.tensor] = layers;
        }
        // First fit, in production order: tensor t lives from layer t − 1 to last[t].
        let mut offsets = [0usize; MAX_TENSORS];
        let mut len = 0;
        for t in 1..n {
            let size = shapes[t].len().next_multiple_of(4);
            let live = |u: usize| u < t && u >= 1 && last[u] >= t - 1;
            let overlaps = |at: usize| {
                (1..t)
                    .any(|u| live(u) && at < offsets[u] + shapes[u].len() && offsets[u] < at + size)
            };
            let mut at = 0;
            if overlaps(0) {
                // Candidates: just after each live tensor; the lowest free one.
                at = usize::MAX;
                for u in 1..t {
                    if live(u) {
                        let c = (offsets[u] + shapes[u].len()).next_multiple_of(4);
                        if c < at && !overlaps(c) {
                            at = c;
                        }
                    }
                }
            }
            offsets[t] = at;
            len = len.max(at + size);
        }
        Ok(Plan {
            width,
            height,
            shapes,
            offsets,
            scratch_at: len,
            len: len + scratch,
        })
    }

    /// Runs the layers on `frame` (`plan.width × plan.height` gray pixels, row by row); the
    /// head maps are then at [`Plan::range`] of their tensors in `arena`.
    pub fn run(&self, plan: &Plan, frame: &[u8], arena: &mut [i8]) -> Result<(), RunError> {
        self.run_observed(plan, frame, arena, |_, _| {})
    }

    /// [`CnnDetector::run`], calling `observe(k, kind)` after layer `k` (per-layer instruction
    /// counts on the emulated Cortex-M7).
    pub fn run_observed(
        &self,
        plan: &Plan,
        frame: &[u8],
        arena: &mut [i8],
        mut observe: impl FnMut(usize, LayerKind),
    ) -> Result<(), RunError> {
        let expected = plan.width * plan.height;
        if frame.len() != expected {
            return Err(RunError::FrameLength {
                expected,
                got: frame.len(),
            });
        }
        if arena.len() < plan.len {
            return Err(RunError::ArenaTooSmall {
                needed: plan.len,
                got: arena.len(),
            });
        }
        let (main, scratch) = arena.split_at_mut(plan.scratch_at);
        for l in self.layers() {
            let (out, a, b) = io(
                main,
                plan.range(l.output),
                plan.range(l.input),
                plan.range(l.other),
            );
            let s = plan.shape(l.input);
            let zero = self.tensor(l.input).zero;
            match l.kind {
                LayerKind::Stem => ops::stem(frame, plan.height, plan.width, &l.params, out),
                LayerKind::Pointwise => ops::pointwise(a, s.c, zero, &l.params, out, scratch),
                LayerKind::Depthwise => ops::depthwise(a, s, zero, &l.params, out),
                LayerKind::MaxPool2 => ops::max_pool2(a, s, out),
                LayerKind::Upsample2 => ops::upsample2(a, s, out),
                LayerKind::Add => {
                    let w = l.params.weights;
                    let mut st = [0u8; STAGE_BYTES];
                    st.copy_from_slice(&l.params.stages[..STAGE_BYTES]);
                    let p = AddParams {
                        a_zero: zero,
                        b_zero: self.tensor(l.other).zero,
                        a_mul: i32_at(w, 0),
                        b_mul: i32_at(w, 1),
                        stage: Stage::from_le_bytes(&st),
                    };
                    ops::add(a, b, &p, out);
                }
            }
            observe(l.output - 1, l.kind);
        }
        Ok(())
    }
}

/// The output range of `arena` mutably and two input ranges (which do not overlap it) shared.
/// An input range of tensor 0 (the frame, not in the arena) comes back empty.
fn io(
    arena: &mut [i8],
    out: Range<usize>,
    a: Range<usize>,
    b: Range<usize>,
) -> (&mut [i8], &[i8], &[i8]) {
    let (before, rest) = arena.split_at_mut(out.start);
    let (out_slice, after) = rest.split_at_mut(out.end - out.start);
    let pick = |r: Range<usize>| -> &[i8] {
        if r.end <= out.start {
            &before[r]
        } else if r.start >= out.end {
            &after[r.start - out.end..r.end - out.end]
        } else {
            &[]
        }
    };
    let (a, b) = (pick(a), pick(b));
    (out_slice, a, b)
}

//! The CNN face-detector file: the int8 layers of a small detector graph (YuNet's layout),
//! converted by `host-trainer detector`, read in place and validated once, like the model and
//! cascade files.
//!
//! ```text
//! preamble (16 bytes)  magic "FERD", version u16, reserved u16 (0), payload length u32,
//!                      CRC-32 of the payload u32
//! payload              tensor count u16, layer count u16, head count u16, reserved u16
//!   tensors            channels u16, zero point i16 (an int8 value)            (4 bytes each)
//!                      tensor 0 is the gray frame: 1 channel, zero point 0, values 0-255
//!   layers             kind u8, relu u8, input u16, second input u16 (adds; else 0)
//!                      (6 bytes each); layer k writes tensor k + 1
//!   heads              kind u8, stride u8, tensor u16                          (4 bytes each)
//!   parameters         layer by layer, each starting at a multiple of 4 bytes of the payload
//!                      (zero bytes between), sizes from the kind and the channels:
//!                        stem       cout·9 weights i8, cout biases i32, cout stages (16 bytes)
//!                        pointwise  cout·cin weights, cout biases, cout stages
//!                        depthwise  c·9 weights, c biases, c stages
//!                        add        first and second input multipliers i32, one stage
//!                        max pool, upsample: none
//!   head tables        head by head: scores (class, objectness) 256 × u16, the sigmoid of
//!                      each int8 value in Q16 (65535 for 1); box: offset step i32 (Q16 strides
//!                      per int8 step) and 256 × u32, exp of each value in Q16 strides;
//!                      landmarks: offset step i32
//! ```
//!
//! All little-endian. Every count, channel, index and stage is checked at load: a file that
//! loads runs without a panic and without an overflow on any frame.

use core::fmt;

use crate::container::{u16_at, u32_at, Framing, FramingError};
use crate::kernels::i32_at;
use crate::requant::{check_channel, ChannelProblem, Stage, STAGE_BYTES};

use super::ops::{ConvParams, ADD_MUL_MAX};

/// Magic bytes of a detector file.
pub const MAGIC: [u8; 4] = *b"FERD";
/// The format version this runtime reads.
pub const VERSION: u16 = 1;
/// Preamble size.
pub const PREAMBLE: usize = 16;
/// The most tensors a file may have (tensor 0 included).
pub const MAX_TENSORS: usize = 128;
/// The most heads a file may have.
pub const MAX_HEADS: usize = 16;
const COUNTS: usize = 8;
const TENSOR: usize = 4;
const LAYER: usize = 6;
const HEAD: usize = 4;
const ADD: usize = 8 + STAGE_BYTES;
const FRAMING: Framing = Framing {
    magic: MAGIC,
    version: VERSION,
    preamble: PREAMBLE,
};

/// What a layer does ([`super::ops`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LayerKind {
    Stem = 1,
    Pointwise = 2,
    Depthwise = 3,
    MaxPool2 = 4,
    Upsample2 = 5,
    Add = 6,
}

impl LayerKind {
    fn from_u8(v: u8) -> Option<LayerKind> {
        Some(match v {
            1 => LayerKind::Stem,
            2 => LayerKind::Pointwise,
            3 => LayerKind::Depthwise,
            4 => LayerKind::MaxPool2,
            5 => LayerKind::Upsample2,
            6 => LayerKind::Add,
            _ => return None,
        })
    }
}

/// What a head map holds per cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HeadKind {
    /// Face class logit.
    Class = 1,
    /// Objectness logit.
    Objectness = 2,
    /// Box: centre offset and log size, in strides.
    Box = 3,
    /// Five landmarks `(x, y)`, in strides from the cell.
    Landmarks = 4,
}

impl HeadKind {
    fn from_u8(v: u8) -> Option<HeadKind> {
        Some(match v {
            1 => HeadKind::Class,
            2 => HeadKind::Objectness,
            3 => HeadKind::Box,
            4 => HeadKind::Landmarks,
            _ => return None,
        })
    }

    /// Channels of the map.
    pub const fn channels(self) -> usize {
        match self {
            HeadKind::Class | HeadKind::Objectness => 1,
            HeadKind::Box => 4,
            HeadKind::Landmarks => 10,
        }
    }

    /// Bytes of its table.
    const fn table_bytes(self) -> usize {
        match self {
            HeadKind::Class | HeadKind::Objectness => 512,
            HeadKind::Box => 4 + 1024,
            HeadKind::Landmarks => 4,
        }
    }
}

/// Why a detector file was rejected.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DetectorError {
    /// Shorter than its header says.
    Truncated { needed: usize, got: usize },
    /// Does not start with `FERD`.
    BadMagic,
    /// Another format version.
    UnsupportedVersion { found: u16, supported: u16 },
    /// The payload's CRC-32 does not match.
    ChecksumMismatch { stored: u32, computed: u32 },
    /// Bytes after the payload.
    TrailingBytes { extra: usize },
    /// No layers, no heads, or more tensors or heads than the format allows.
    BadCounts,
    /// Tensor `tensor` has no channels, or tensor 0 is not the 1-channel gray frame.
    BadTensor { tensor: u16 },
    /// Layer `layer` has an unknown kind, reads a tensor not computed before it, or its
    /// channels or zero points do not fit its kind.
    BadLayer { layer: u16 },
    /// Channel `channel` of layer `layer` could overflow its accumulator, or its stage is out
    /// of range.
    BadRequant { layer: u16, channel: u16 },
    /// Head `head` has an unknown kind, a stride that is not a power of two from 2 to 128, a
    /// tensor of the wrong channels, or the heads are not four per stride (class, objectness,
    /// box, landmarks).
    BadHead { head: u16 },
}

impl From<FramingError> for DetectorError {
    fn from(e: FramingError) -> Self {
        match e {
            FramingError::Truncated { needed, got } => DetectorError::Truncated { needed, got },
            FramingError::BadMagic => DetectorError::BadMagic,
            FramingError::UnsupportedVersion { found, supported } => {
                DetectorError::UnsupportedVersion { found, supported }
            }
            FramingError::TrailingBytes { extra } => DetectorError::TrailingBytes { extra },
            FramingError::ChecksumMismatch { stored, computed } => {
                DetectorError::ChecksumMismatch { stored, computed }
            }
        }
    }
}

impl fmt::Display for DetectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DetectorError::Truncated { needed, got } => write!(
                f,
                "truncated detector file: {got} bytes, the header needs {needed}"
            ),
            DetectorError::BadMagic => {
                f.write_str("not a detector file (expected the magic bytes FERD)")
            }
            DetectorError::UnsupportedVersion { found, supported } => write!(
                f,
                "detector format version {found}, this runtime reads version {supported}"
            ),
            DetectorError::ChecksumMismatch { stored, computed } => write!(
                f,
                "detector file damaged: CRC-32 {computed:#010x}, header says {stored:#010x}"
            ),
            DetectorError::TrailingBytes { extra } => {
                write!(f, "{extra} unexpected bytes after the detector data")
            }
            DetectorError::BadCounts => write!(
                f,
                "detector header: expected 1-{} tensors, at least one layer and 4-{MAX_HEADS} heads",
                MAX_TENSORS
            ),
            DetectorError::BadTensor { tensor } => write!(
                f,
                "detector tensor {tensor}: no channels, or tensor 0 is not the gray frame (1 channel, zero point 0)"
            ),
            DetectorError::BadLayer { layer } => write!(
                f,
                "detector layer {layer}: unknown kind, or inputs, channels or zero points that do not fit it"
            ),
            DetectorError::BadRequant { layer, channel } => write!(
                f,
                "detector layer {layer}, channel {channel}: the accumulator could overflow or the output stage is out of range"
            ),
            DetectorError::BadHead { head } => write!(
                f,
                "detector head {head}: expected class, objectness, box and landmark maps of 1, 1, 4 and 10 channels per stride (a power of two, 2-128)"
            ),
        }
    }
}

/// One tensor's channels and zero point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub channels: usize,
    pub zero: i32,
}

/// One layer, as read from the file.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a> {
    pub kind: LayerKind,
    pub input: usize,
    /// The second input of an add.
    pub other: usize,
    /// Its output tensor (the layer's index + 1).
    pub output: usize,
    /// Weights, biases and stages (convolutions); for an add, the two multipliers as the
    /// weights (8 bytes) and the stage.
    pub params: ConvParams<'a>,
}

/// One head map and its decode table.
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    pub kind: HeadKind,
    pub stride: usize,
    pub tensor: usize,
    pub table: &'a [u8],
}

/// A validated detector file, read in place.
#[derive(Clone, Copy, Debug)]
pub struct CnnDetector<'a> {
    payload: &'a [u8],
    tensors: usize,
    layers: usize,
    heads: usize,
    /// Where the parameters of layer 0 start (in the payload).
    params_at: usize,
    tables_at: usize,
}

fn params_len(kind: LayerKind, cin: usize, cout: usize) -> usize {
    let stages = cout * (4 + STAGE_BYTES);
    match kind {
        LayerKind::Stem | LayerKind::Depthwise => cout * 9 + stages,
        LayerKind::Pointwise => cout * cin + stages,
        LayerKind::Add => ADD,
        LayerKind::MaxPool2 | LayerKind::Upsample2 => 0,
    }
}

impl<'a> CnnDetector<'a> {
    /// Validates `bytes` as a detector file.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, DetectorError> {
        FRAMING.check_head(bytes)?;
        let len = u32_at(bytes, 8) as usize;
        FRAMING.check_body(bytes, PREAMBLE.saturating_add(len), 12)?;
        let payload = &bytes[PREAMBLE..];
        let short = |needed: usize| DetectorError::Truncated {
            needed: PREAMBLE + needed,
            got: bytes.len(),
        };
        if payload.len() < COUNTS {
            return Err(short(COUNTS));
        }
        let (tensors, layers, heads) = (
            usize::from(u16_at(payload, 0)),
            usize::from(u16_at(payload, 2)),
            usize::from(u16_at(payload, 4)),
        );
        if tensors > MAX_TENSORS
            || layers == 0
            || layers + 1 != tensors
            || !(4..=MAX_HEADS).contains(&heads)
        {
            return Err(DetectorError::BadCounts);
        }
        let params_at = COUNTS + tensors * TENSOR + layers * LAYER + heads * HEAD;
        if payload.len() < params_at {
            return Err(short(params_at));
        }
        let mut d = CnnDetector {
            payload,
            tensors,
            layers,
            heads,
            params_at,
            tables_at: 0,
        };
        d.check_tensors()?;
        let mut at = params_at;
        for k in 0..layers {
            at = d.check_layer(k, at)?;
        }
        d.tables_at = at;
        let end = d.check_heads(at)?;
        if end != payload.len() {
            return Err(if end > payload.len() {
                short(end)
            } else {
                DetectorError::TrailingBytes {
                    extra: payload.len() - end,
                }
            });
        }
        Ok(d)
    }

    /// Tensors, the gray frame included.
    pub fn tensor_count(&self) -> usize {
        self.tensors
    }

    /// Layers, in the order they run.
    pub fn layer_count(&self) -> usize {
        self.layers
    }

    /// Head maps.
    pub fn head_count(&self) -> usize {
        self.heads
    }

    /// Tensor `i`'s channels and zero point.
    pub fn tensor(&self, i: usize) -> TensorInfo {
        let at = COUNTS + i * TENSOR;
        TensorInfo {
            channels: usize::from(u16_at(self.payload, at)),
            zero: i32::from(u16_at(self.payload, at + 2) as i16),
        }
    }

    fn layer_fields(&self, k: usize) -> (Option<LayerKind>, bool, usize, usize) {
        let at = COUNTS + self.tensors * TENSOR + k * LAYER;
        let p = self.payload;
        (
            LayerKind::from_u8(p[at]),
            p[at + 1] != 0,
            usize::from(u16_at(p, at + 2)),
            usize::from(u16_at(p, at + 4)),
        )
    }

    /// The largest head stride: frame sides must be multiples of it.
    pub fn max_stride(&self) -> usize {
        (0..self.heads)
            .map(|h| self.head(h).stride)
            .max()
            .unwrap_or(1)
    }

    /// Head `h` with its table.
    pub fn head(&self, h: usize) -> Head<'a> {
        let at = COUNTS + self.tensors * TENSOR + self.layers * LAYER + h * HEAD;
        let p = self.payload;
        let kind = HeadKind::from_u8(p[at]).unwrap_or(HeadKind::Class);
        let table_at = self.tables_at
            + (0..h)
                .map(|j| {
                    let a = COUNTS + self.tensors * TENSOR + self.layers * LAYER + j * HEAD;
                    HeadKind::from_u8(p[a]).map_or(0, HeadKind::table_bytes)
                })
                .sum::<usize>();
        Head {
            kind,
            stride: usize::from(p[at + 1]),
            tensor: usize::from(u16_at(p, at + 2)),
            table: &p[table_at..table_at + kind.table_bytes()],
        }
    }

    /// All layers, in order, with their parameters.
    pub fn layers(&self) -> impl Iterator<Item = Layer<'a>> + '_ {
        let mut at = self.params_at;
        (0..self.layers).map(move |k| {
            let (kind, relu, input, other) = self.layer_fields(k);
            let kind = kind.unwrap_or(LayerKind::MaxPool2);
            let (cin, cout) = (self.tensor(input).channels, self.tensor(k + 1).channels);
            let n = params_len(kind, cin, cout);
            at = at.next_multiple_of(4);
            let p = &self.payload[at..at + n];
            at += n;
            let taps = match kind {
                LayerKind::Stem | LayerKind::Depthwise => 9 * cout,
                LayerKind::Pointwise => cin * cout,
                LayerKind::Add => 8,
                _ => 0,
            };
            let biases = match kind {
                LayerKind::Stem | LayerKind::Pointwise | LayerKind::Depthwise => 4 * cout,
                _ => 0,
            };
            Layer {
                kind,
                input,
                other,
                output: k + 1,
                params: ConvParams {
                    weights: &p[..taps],
                    bias: &p[taps..taps + biases],
                    stages: &p[taps + biases..],
                    relu,
                },
            }
        })
    }

    fn check_tensors(&self) -> Result<(), DetectorError> {
        let first = self.tensor(0);
        if first.channels != 1 || first.zero != 0 {
            return Err(DetectorError::BadTensor { tensor: 0 });
        }
        for i in 0..self.tensors {
            let t = self.tensor(i);
            if t.channels == 0 || !(-128..=127).contains(&t.zero) {
                return Err(DetectorError::BadTensor { tensor: i as u16 });
            }
        }
        Ok(())
    }

    /// Checks layer `k` whose parameters start at `at` rounded up to 4 bytes (the bytes between
    /// must be 0); returns where that layer's parameters end.
    fn check_layer(&self, k: usize, at: usize) -> Result<usize, DetectorError> {
        let bad = DetectorError::BadLayer { layer: k as u16 };
        let aligned = at.next_multiple_of(4);
        if self
            .payload
            .get(at..aligned)
            .is_none_or(|pad| pad.iter().any(|&b| b != 0))
        {
            return Err(bad);
        }
        let at = aligned;
        let (kind, relu, input, other) = self.layer_fields(k);
        let kind = kind.ok_or(bad)?;
        let relu_byte = self.payload[COUNTS + self.tensors * TENSOR + k * LAYER + 1];
        let out = k + 1;
        if relu_byte > 1 {
            return Err(bad);
        }
        // An add's second input is computed before it; every other layer's is 0.
        let other_ok = if kind == LayerKind::Add {
            other < out
        } else {
            other == 0
        };
        if input >= out || !other_ok {
            return Err(bad);
        }
        let (i, o) = (self.tensor(input), self.tensor(out));
        let fits = match kind {
            LayerKind::Stem => input == 0,
            LayerKind::Pointwise => input != 0,
            LayerKind::Depthwise => input != 0 && i.channels == o.channels,
            LayerKind::MaxPool2 | LayerKind::Upsample2 => {
                input != 0 && i.channels == o.channels && i.zero == o.zero && !relu
            }
            LayerKind::Add => {
                let b = self.tensor(other);
                input != 0
                    && other != 0
                    && i.channels == o.channels
                    && b.channels == o.channels
                    && !relu
            }
        };
        if !fits {
            return Err(bad);
        }
        let n = params_len(kind, i.channels, o.channels);
        let end = at.checked_add(n).ok_or(bad)?;
        if end > self.payload.len() {
            return Err(DetectorError::Truncated {
                needed: PREAMBLE + end,
                got: PREAMBLE + self.payload.len(),
            });
        }
        let p = &self.payload[at..end];
        let requant = |c: usize| DetectorError::BadRequant {
            layer: k as u16,
            channel: c as u16,
        };
        let stage_at = |blob: &[u8], c: usize| {
            let mut s = [0u8; STAGE_BYTES];
            s.copy_from_slice(&blob[c * STAGE_BYTES..][..STAGE_BYTES]);
            Stage::from_le_bytes(&s)
        };
        match kind {
            LayerKind::Stem | LayerKind::Pointwise | LayerKind::Depthwise => {
                let taps = if kind == LayerKind::Pointwise {
                    i.channels
                } else {
                    9
                };
                let cout = o.channels;
                let (w, rest) = p.split_at(taps * cout);
                let (bias, stages) = rest.split_at(4 * cout);
                // The depthwise kernel sums `bias − zero·Σw` and `Σ w·x` separately: room for
                // one more step of |x|.
                let max_dx = if kind == LayerKind::Depthwise {
                    256
                } else {
                    255
                };
                for c in 0..cout {
                    let row = &w[c * taps..][..taps];
                    check_channel(row, i32_at(bias, c), &stage_at(stages, c), max_dx).map_err(
                        |e| match e {
                            ChannelProblem::Overflow | ChannelProblem::BadStage => requant(c),
                        },
                    )?;
                }
            }
            LayerKind::Add => {
                let (ma, mb) = (i32_at(p, 0), i32_at(p, 1));
                let ok = ma.unsigned_abs() <= ADD_MUL_MAX as u32
                    && mb.unsigned_abs() <= ADD_MUL_MAX as u32
                    && stage_at(&p[8..], 0).is_safe_for(2 * 255 * ADD_MUL_MAX as u64);
                if !ok {
                    return Err(requant(0));
                }
            }
            LayerKind::MaxPool2 | LayerKind::Upsample2 => {}
        }
        Ok(end)
    }

    /// Checks the heads and their tables (starting at `at`); returns the end of the tables.
    fn check_heads(&self, mut at: usize) -> Result<usize, DetectorError> {
        let base = COUNTS + self.tensors * TENSOR + self.layers * LAYER;
        let p = self.payload;
        for h in 0..self.heads {
            let bad = DetectorError::BadHead { head: h as u16 };
            let a = base + h * HEAD;
            let kind = HeadKind::from_u8(p[a]).ok_or(bad)?;
            let stride = usize::from(p[a + 1]);
            let tensor = usize::from(u16_at(p, a + 2));
            // Heads in groups of four per stride, strides rising, kinds in order.
            let expected = [
                HeadKind::Class,
                HeadKind::Objectness,
                HeadKind::Box,
                HeadKind::Landmarks,
            ][h % 4];
            let first_stride = usize::from(p[base + (h - h % 4) * HEAD + 1]);
            let previous_stride = if h >= 4 {
                usize::from(p[base + (h - 4) * HEAD + 1])
            } else {
                0
            };
            let ok = kind == expected
                && stride.is_power_of_two()
                && (2..=128).contains(&stride)
                && stride == first_stride
                && stride > previous_stride
                && (1..self.tensors).contains(&tensor)
                && self.tensor(tensor).channels == kind.channels();
            if !ok || !self.heads.is_multiple_of(4) {
                return Err(bad);
            }
            at = at.checked_add(kind.table_bytes()).ok_or(bad)?;
        }
        Ok(at)
    }
}

/// A detector to encode (the converter's side): tensors, layers with their parameter bytes,
/// heads with their tables, in the file's layout.
#[cfg(any(test, feature = "std"))]
#[derive(Clone, Debug, PartialEq)]
pub struct DetectorSpec {
    /// Channels and zero point of every tensor (tensor 0: the gray frame, `(1, 0)`).
    pub tensors: std::vec::Vec<(u16, i8)>,
    pub layers: std::vec::Vec<LayerSpec>,
    pub heads: std::vec::Vec<HeadSpec>,
}

/// One layer to encode: layer `k` writes tensor `k + 1`.
#[cfg(any(test, feature = "std"))]
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    pub kind: LayerKind,
    pub relu: bool,
    pub input: u16,
    /// An add's second input (else 0).
    pub other: u16,
    /// Weights, biases, stages (or an add's two multipliers and stage), as laid out in the file.
    pub params: std::vec::Vec<u8>,
}

/// One head to encode.
#[cfg(any(test, feature = "std"))]
#[derive(Clone, Debug, PartialEq)]
pub struct HeadSpec {
    pub kind: HeadKind,
    pub stride: u8,
    pub tensor: u16,
    pub table: std::vec::Vec<u8>,
}

#[cfg(any(test, feature = "std"))]
impl DetectorSpec {
    /// Encodes the file, and validates it with [`CnnDetector::from_bytes`].
    pub fn encode(&self) -> Result<std::vec::Vec<u8>, DetectorError> {
        let count = |n: usize| u16::try_from(n).map_err(|_| DetectorError::BadCounts);
        let mut p = std::vec::Vec::new();
        p.extend_from_slice(&count(self.tensors.len())?.to_le_bytes());
        p.extend_from_slice(&count(self.layers.len())?.to_le_bytes());
        p.extend_from_slice(&count(self.heads.len())?.to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        for &(c, z) in &self.tensors {
            p.extend_from_slice(&c.to_le_bytes());
            p.extend_from_slice(&i16::from(z).to_le_bytes());
        }
        for l in &self.layers {
            p.extend_from_slice(&[l.kind as u8, u8::from(l.relu)]);
            p.extend_from_slice(&l.input.to_le_bytes());
            p.extend_from_slice(&l.other.to_le_bytes());
        }
        for h in &self.heads {
            p.extend_from_slice(&[h.kind as u8, h.stride]);
            p.extend_from_slice(&h.tensor.to_le_bytes());
        }
        for l in &self.layers {
            p.resize(p.len().next_multiple_of(4), 0);
            p.extend_from_slice(&l.params);
        }
        for h in &self.heads {
            p.extend_from_slice(&h.table);
        }
        let mut out = std::vec![0u8; PREAMBLE];
        FRAMING.write_head(&mut out);
        let len = u32::try_from(p.len()).map_err(|_| DetectorError::BadCounts)?;
        out[8..12].copy_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&p);
        FRAMING.seal(&mut out, 12);
        CnnDetector::from_bytes(&out)?;
        Ok(out)
    }
}

//! The int8 model file: a fixed 20-byte preamble, a postcard-encoded layer table, then the
//! weight data, which the runtime reads in place (from flash on a microcontroller).
//!
//! ```text
//! offset  size  field
//!      0     4  magic "FERQ"
//!      4     2  format version (u16 LE) = VERSION
//!      6     2  reserved, 0
//!      8     4  header length H (u32 LE): bytes of the postcard layer table
//!     12     4  data length D (u32 LE)
//!     16     4  CRC-32 of bytes 20.. (header, padding, data)
//!     20     H  postcard(Header)
//!   20+H     P  zero padding so the data starts at a multiple of 16
//!  20+H+P    D  data: int8 weights, int32 biases, 16-byte output stages (all little-endian)
//! ```
//!
//! Activations are stored height × width × channels (channels last). Conv weights are
//! `[out][ky][kx][in]`, dense weights `[out][in]` with `in` in the previous layer's HWC order.

use heapless::Vec;
use serde::{Deserialize, Serialize};

use crate::container::{u32_at, Framing};
use crate::error::Error;
use crate::labels::CLASS_COUNT;
use crate::requant::{check_channel, ChannelProblem, Stage, STAGE_BYTES};

/// Magic bytes at the start of every model file.
pub const MAGIC: [u8; 4] = *b"FERQ";
/// The format version this runtime reads and writes.
pub const VERSION: u16 = 1;
/// Bytes before the layer table.
pub const PREAMBLE: usize = 20;
/// Alignment of the data section within the file.
pub const DATA_ALIGN: usize = 16;
/// Most layers a model may have.
pub const MAX_LAYERS: usize = 12;
/// Input side and the input zero point fixed by the pixel convention `q = p - 128`.
pub const INPUT_SIDE: u16 = 48;
pub const INPUT_ZERO: i8 = -128;

/// A byte range of the data section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    pub offset: u32,
    pub len: u32,
}

/// Scale and zero point of an int8 tensor: real = scale · (q − zero).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QParams {
    pub scale: f32,
    pub zero: i8,
}

/// What a layer computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// 3x3 convolution, stride 1, 'same' zero padding; then ReLU (if `relu`), the output stage,
    /// and a 2x2 max pool with stride 2 (if `pool`; odd sizes are floored: 3x3 pools to 1x1).
    Conv3x3,
    /// Fully connected; then ReLU (if `relu`) and the output stage.
    Dense,
}

/// One layer of the table.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerDesc {
    pub kind: Kind,
    /// Input height, width, channels (a dense layer's input is `[1, 1, n]`).
    pub in_h: u16,
    pub in_w: u16,
    pub in_c: u16,
    pub out_c: u16,
    pub relu: bool,
    pub pool: bool,
    pub input: QParams,
    pub output: QParams,
    /// int8 weights.
    pub weights: Blob,
    /// int32 bias per output channel, at scale `s_in · s_w[c]`.
    pub bias: Blob,
    /// One [`Stage`] per output channel.
    pub stages: Blob,
}

impl LayerDesc {
    /// Output height, width, channels.
    pub fn out_shape(&self) -> (usize, usize, usize) {
        match self.kind {
            Kind::Conv3x3 if self.pool => (
                usize::from(self.in_h) / 2,
                usize::from(self.in_w) / 2,
                usize::from(self.out_c),
            ),
            Kind::Conv3x3 => (
                usize::from(self.in_h),
                usize::from(self.in_w),
                usize::from(self.out_c),
            ),
            Kind::Dense => (1, 1, usize::from(self.out_c)),
        }
    }

    /// Input elements.
    pub fn in_len(&self) -> usize {
        usize::from(self.in_h) * usize::from(self.in_w) * usize::from(self.in_c)
    }

    /// Output elements.
    pub fn out_len(&self) -> usize {
        let (h, w, c) = self.out_shape();
        h * w * c
    }

    /// Weights per output channel.
    pub fn fan_in(&self) -> usize {
        match self.kind {
            Kind::Conv3x3 => 9 * usize::from(self.in_c),
            Kind::Dense => self.in_len(),
        }
    }

    /// Multiply-accumulates per inference.
    pub fn macs(&self) -> usize {
        match self.kind {
            Kind::Conv3x3 => {
                usize::from(self.in_h)
                    * usize::from(self.in_w)
                    * self.fan_in()
                    * usize::from(self.out_c)
            }
            Kind::Dense => self.fan_in() * usize::from(self.out_c),
        }
    }
}

/// The layer table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub layers: Vec<LayerDesc, MAX_LAYERS>,
}

/// A validated model whose weights stay in the caller's bytes.
#[derive(Clone, Debug)]
pub struct Model<'a> {
    pub(crate) header: Header,
    pub(crate) data: &'a [u8],
    /// Bytes of the activations' ping-pong area: the largest layer input plus output.
    pub(crate) activations: usize,
    /// Bytes of kernel scratch after it (the largest conv layer's quad patch).
    pub(crate) scratch: usize,
    /// The file's CRC-32 (what a [`crate::wide`] companion names its model by).
    pub(crate) crc: u32,
    /// The checked [`crate::wide`] companion (empty: none) and where each layer's part starts.
    pub(crate) wide: &'a [u8],
    pub(crate) wide_at: [Option<u32>; MAX_LAYERS],
}

/// Magic, version and checksum of the model file.
const FRAMING: Framing = Framing {
    magic: MAGIC,
    version: VERSION,
    preamble: PREAMBLE,
};

/// Start of the data section for a header of `header_len` bytes.
pub const fn data_start(header_len: usize) -> usize {
    (PREAMBLE + header_len).div_ceil(DATA_ALIGN) * DATA_ALIGN
}

impl<'a> Model<'a> {
    /// Parses and validates a model file. Everything inference relies on is checked here —
    /// checksum, shapes, blob bounds and sizes, shifts, accumulator ranges — so that
    /// [`Model::run`](crate::Model::run) cannot fail or read out of bounds afterwards.
    ///
    /// # Errors
    /// The first problem found, as a specific [`Error`].
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        FRAMING.check_head(bytes)?;
        let header_len = u32_at(bytes, 8) as usize;
        let data_len = u32_at(bytes, 12) as usize;
        let start = data_start(header_len.min(u32::MAX as usize));
        FRAMING.check_body(bytes, start.saturating_add(data_len), 16)?;
        let header: Header = postcard::from_bytes(&bytes[PREAMBLE..PREAMBLE + header_len])
            .map_err(|_| Error::BadHeader)?;
        let data = &bytes[start..];
        let (activations, scratch) = validate(&header, data)?;
        Ok(Model {
            header,
            data,
            activations,
            scratch,
            crc: crate::container::u32_at(bytes, 16),
            wide: &[],
            wide_at: [None; MAX_LAYERS],
        })
    }

    /// The layer table.
    pub fn layers(&self) -> &[LayerDesc] {
        &self.header.layers
    }

    /// Bytes of arena [`Model::run`](crate::Model::run) needs: the activations (the largest
    /// layer input plus output) and the kernels' scratch.
    pub fn arena_size(&self) -> usize {
        self.activations + self.scratch
    }

    /// Bytes of weights, biases and output stages.
    pub fn weight_bytes(&self) -> usize {
        self.data.len()
    }

    /// Multiply-accumulates per inference.
    pub fn macs(&self) -> usize {
        self.layers().iter().map(LayerDesc::macs).sum()
    }

    pub(crate) fn blob(&self, b: Blob) -> &'a [u8] {
        // In bounds: checked by `validate`.
        &self.data[b.offset as usize..(b.offset + b.len) as usize]
    }
}

fn blob_ok(data: &[u8], b: Blob, len: usize) -> bool {
    b.len as usize == len
        && (b.offset as usize)
            .checked_add(len)
            .is_some_and(|end| end <= data.len())
}

/// Checks the whole table against the data; returns the bytes of the activations' area and of
/// the kernels' scratch.
fn validate(header: &Header, data: &[u8]) -> Result<(usize, usize), Error> {
    let layers = &header.layers;
    if layers.is_empty() {
        return Err(Error::LayerCount {
            count: 0,
            max: MAX_LAYERS,
        });
    }
    let first = layers[0];
    if first.kind != Kind::Conv3x3
        || (first.in_h, first.in_w, first.in_c) != (INPUT_SIDE, INPUT_SIDE, 1)
        || first.input.zero != INPUT_ZERO
    {
        return Err(Error::BadIo);
    }
    let last = layers[layers.len() - 1];
    if last.kind != Kind::Dense || usize::from(last.out_c) != CLASS_COUNT || last.relu {
        return Err(Error::BadIo);
    }
    let mut arena = 0usize;
    let mut scratch = 0usize;
    let mut prev: Option<&LayerDesc> = None;
    for (i, l) in layers.iter().enumerate() {
        let li = i as u8;
        if l.in_h == 0 || l.in_w == 0 || l.in_c == 0 || l.out_c == 0 {
            return Err(Error::BadLayer { layer: li });
        }
        match l.kind {
            // Pooling floors odd sizes (the last row/column is dropped), as Keras' 'valid' pool.
            Kind::Conv3x3 if l.pool && (l.in_h < 2 || l.in_w < 2) => {
                return Err(Error::BadLayer { layer: li })
            }
            Kind::Dense if l.pool || l.in_h != 1 || l.in_w != 1 => {
                return Err(Error::BadLayer { layer: li })
            }
            _ => {}
        }
        if let Some(p) = prev {
            let (h, w, c) = p.out_shape();
            let chained = match l.kind {
                Kind::Conv3x3 => {
                    (
                        usize::from(l.in_h),
                        usize::from(l.in_w),
                        usize::from(l.in_c),
                    ) == (h, w, c)
                }
                Kind::Dense => l.in_len() == h * w * c,
            };
            if !chained || l.input.zero != p.output.zero {
                return Err(Error::ShapeMismatch { layer: li });
            }
        }
        let out_c = usize::from(l.out_c);
        if !blob_ok(data, l.weights, out_c * l.fan_in())
            || !blob_ok(data, l.bias, out_c * 4)
            || !blob_ok(data, l.stages, out_c * STAGE_BYTES)
        {
            return Err(Error::BadBlob { layer: li });
        }
        let weights = &data[l.weights.offset as usize..][..l.weights.len as usize];
        let biases = &data[l.bias.offset as usize..][..l.bias.len as usize];
        let stages = &data[l.stages.offset as usize..][..l.stages.len as usize];
        // |x - z_in| <= 255 for int8 x and zero point.
        for c in 0..out_c {
            let ch = c as u16;
            let mut s = [0u8; STAGE_BYTES];
            s.copy_from_slice(&stages[c * STAGE_BYTES..][..STAGE_BYTES]);
            let w = &weights[c * l.fan_in()..][..l.fan_in()];
            let bias = crate::kernels::i32_at(biases, c);
            match check_channel(w, bias, &Stage::from_le_bytes(&s), 255) {
                Ok(()) => {}
                Err(ChannelProblem::Overflow) => {
                    return Err(Error::AccumulatorOverflow {
                        layer: li,
                        channel: ch,
                    })
                }
                Err(ChannelProblem::BadStage) => {
                    return Err(Error::BadRequant {
                        layer: li,
                        channel: ch,
                    })
                }
            }
        }
        arena = arena.max(l.in_len() + l.out_len());
        scratch = scratch.max(match l.kind {
            Kind::Conv3x3 => crate::kernels::conv::scratch_bytes(usize::from(l.in_c), l.pool),
            Kind::Dense => crate::kernels::dense::scratch_bytes(l.in_len()),
        });
        prev = Some(l);
    }
    Ok((arena, scratch))
}

/// Serializes a model file from its layer table and data section (host side).
///
/// # Errors
/// [`Error::BadHeader`] if the table cannot be encoded, or any validation error of the result.
#[cfg(any(test, feature = "std"))]
pub fn encode(header: &Header, data: &[u8]) -> Result<std::vec::Vec<u8>, Error> {
    let mut buf = [0u8; 4096];
    let table = postcard::to_slice(header, &mut buf).map_err(|_| Error::BadHeader)?;
    let start = data_start(table.len());
    let mut out = std::vec![0u8; start + data.len()];
    FRAMING.write_head(&mut out);
    out[8..12].copy_from_slice(&(table.len() as u32).to_le_bytes());
    out[12..16].copy_from_slice(&(data.len() as u32).to_le_bytes());
    out[PREAMBLE..PREAMBLE + table.len()].copy_from_slice(table);
    out[start..].copy_from_slice(data);
    FRAMING.seal(&mut out, 16);
    Model::from_bytes(&out)?;
    Ok(out)
}

/// Assembles a model file layer by layer (host side: the quantizer and tests).
#[cfg(any(test, feature = "std"))]
#[derive(Default)]
pub struct Builder {
    header: std::vec::Vec<LayerDesc>,
    data: std::vec::Vec<u8>,
}

/// The integer parameters of one layer, for [`Builder::push`].
#[cfg(any(test, feature = "std"))]
pub struct LayerParams<'p> {
    pub weights: &'p [i8],
    pub bias: &'p [i32],
    pub stages: &'p [Stage],
}

#[cfg(any(test, feature = "std"))]
impl Builder {
    fn blob(&mut self, bytes: &[u8]) -> Blob {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
        let offset = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        Blob {
            offset,
            len: bytes.len() as u32,
        }
    }

    /// Appends a layer; `desc`'s blobs are filled in from `params`.
    pub fn push(&mut self, mut desc: LayerDesc, params: &LayerParams<'_>) {
        let w: std::vec::Vec<u8> = params.weights.iter().map(|&v| v as u8).collect();
        desc.weights = self.blob(&w);
        let b: std::vec::Vec<u8> = params.bias.iter().flat_map(|v| v.to_le_bytes()).collect();
        desc.bias = self.blob(&b);
        let s: std::vec::Vec<u8> = params.stages.iter().flat_map(|v| v.to_le_bytes()).collect();
        desc.stages = self.blob(&s);
        self.header.push(desc);
    }

    /// The finished, validated model file.
    ///
    /// # Errors
    /// Too many layers, or any validation error.
    pub fn finish(self) -> Result<std::vec::Vec<u8>, Error> {
        let count = self.header.len();
        let layers = Vec::from_slice(&self.header).map_err(|_| Error::LayerCount {
            count,
            max: MAX_LAYERS,
        })?;
        encode(&Header { layers }, &self.data)
    }
}

//! The one error type of the runtime: what is wrong with a model file or an inference call.

use crate::container::FramingError;
use crate::preprocess::PreprocessError;
use core::fmt;

/// Why a model file was rejected or an inference call refused.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The file is shorter than its header says (`needed` bytes, `got`).
    Truncated { needed: usize, got: usize },
    /// The file does not start with the magic bytes `FERQ`.
    BadMagic,
    /// The file's format version is not the one this runtime reads.
    UnsupportedVersion { found: u16, supported: u16 },
    /// The CRC-32 of the file body does not match the header.
    ChecksumMismatch { stored: u32, computed: u32 },
    /// The file is longer than header + data: trailing bytes.
    TrailingBytes { extra: usize },
    /// The layer table could not be decoded.
    BadHeader,
    /// The model has no layers, or more than `max` (the format's limit).
    LayerCount { count: usize, max: usize },
    /// Layer `layer`'s input shape does not follow from the previous layer's output.
    ShapeMismatch { layer: u8 },
    /// Layer `layer` has an unsupported shape or option (zero size, odd size before a pool, ...).
    BadLayer { layer: u8 },
    /// A weight, bias or output-stage blob of layer `layer` lies outside the data section or has
    /// the wrong length.
    BadBlob { layer: u8 },
    /// An output-stage shift or offset of layer `layer`, channel `channel` is out of range.
    BadRequant { layer: u8, channel: u16 },
    /// The int32 accumulator of layer `layer`, channel `channel` could overflow.
    AccumulatorOverflow { layer: u8, channel: u16 },
    /// The model's input is not 48x48x1 gray with zero point -128, or its output not 7 scores.
    BadIo,
    /// The caller's arena is smaller than [`crate::Model::arena_size`].
    ArenaTooSmall { needed: usize, got: usize },
    /// The caller's input does not have the model's input size.
    InputSize { expected: usize, got: usize },
    /// A pre-widened weights companion ([`crate::wide`]) that does not belong to the model.
    Wide(WideProblem),
    /// A frame or face square the preprocessing cannot use ([`crate::pipeline`]).
    Frame(PreprocessError),
}

/// What is wrong with a [`crate::wide`] companion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WideProblem {
    /// Shorter than its header, or the magic bytes are not `FERW`.
    Header,
    /// A format version this runtime does not read.
    Version { found: u16, reads: u16 },
    /// Made from a model file with another CRC-32.
    OtherModel,
    /// Its mask names layer `layer`, which is missing or cannot use widened weights.
    Mask { layer: u8 },
    /// `got` bytes where its mask needs `expected`.
    Length { expected: usize, got: usize },
    /// Not at a 4-byte aligned address (the kernel reads it with `LDRD`).
    Misaligned,
    /// A value of layer `layer` differs from the model's weight.
    Values { layer: u8 },
}

impl From<FramingError> for Error {
    fn from(e: FramingError) -> Self {
        match e {
            FramingError::Truncated { needed, got } => Error::Truncated { needed, got },
            FramingError::BadMagic => Error::BadMagic,
            FramingError::UnsupportedVersion { found, supported } => {
                Error::UnsupportedVersion { found, supported }
            }
            FramingError::TrailingBytes { extra } => Error::TrailingBytes { extra },
            FramingError::ChecksumMismatch { stored, computed } => {
                Error::ChecksumMismatch { stored, computed }
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { needed, got } => {
                write!(f, "model file truncated: needs {needed} bytes, has {got}")
            }
            Error::BadMagic => write!(f, "not a model file: magic bytes are not FERQ"),
            Error::UnsupportedVersion { found, supported } => write!(
                f,
                "model format version {found} is not supported (this runtime reads version {supported})"
            ),
            Error::ChecksumMismatch { stored, computed } => write!(
                f,
                "model file corrupted: CRC-32 is {computed:#010x}, header says {stored:#010x}"
            ),
            Error::TrailingBytes { extra } => {
                write!(f, "model file has {extra} unexpected trailing bytes")
            }
            Error::BadHeader => write!(f, "model layer table cannot be decoded"),
            Error::LayerCount { count, max } => {
                write!(f, "model has {count} layers, expected 1 to {max}")
            }
            Error::ShapeMismatch { layer } => {
                write!(f, "layer {layer}: input shape does not match the previous layer's output")
            }
            Error::BadLayer { layer } => write!(f, "layer {layer}: unsupported shape or options"),
            Error::BadBlob { layer } => {
                write!(f, "layer {layer}: a weight blob is outside the data section or has the wrong size")
            }
            Error::BadRequant { layer, channel } => {
                write!(f, "layer {layer}, channel {channel}: requantization parameters out of range")
            }
            Error::AccumulatorOverflow { layer, channel } => {
                write!(f, "layer {layer}, channel {channel}: the accumulator could overflow")
            }
            Error::BadIo => write!(
                f,
                "model input must be 48x48x1 with zero point -128 and output 7 class scores"
            ),
            Error::ArenaTooSmall { needed, got } => {
                write!(f, "arena of {got} bytes is too small: the model needs {needed}")
            }
            Error::InputSize { expected, got } => {
                write!(f, "input has {got} pixels, the model expects {expected}")
            }
            Error::Frame(p) => write!(f, "{p}"),
            Error::Wide(p) => {
                write!(f, "pre-widened weights do not fit the model: ")?;
                match p {
                    WideProblem::Header => write!(f, "no FERW header"),
                    WideProblem::Version { found, reads } => {
                        write!(f, "format version {found} (this runtime reads {reads})")
                    }
                    WideProblem::OtherModel => {
                        write!(f, "made from another model file (CRC-32 differs)")
                    }
                    WideProblem::Mask { layer } => {
                        write!(f, "layer {layer} is missing or cannot use widened weights")
                    }
                    WideProblem::Length { expected, got } => {
                        write!(f, "{got} bytes, expected {expected}")
                    }
                    WideProblem::Misaligned => write!(f, "not at a 4-byte aligned address"),
                    WideProblem::Values { layer } => {
                        write!(f, "layer {layer}'s values differ from the model's weights")
                    }
                }
            }
        }
    }
}

impl core::error::Error for Error {}

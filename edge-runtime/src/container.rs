//! The framing both file formats share (the int8 model and the face-detector cascade): four magic
//! bytes, a u16 format version, declared lengths, and a CRC-32 of everything after the preamble.
//! Each format keeps its own preamble layout and error type; this checks the common part once.

use crate::crc32::crc32;

/// A framing problem, converted into the format's own error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FramingError {
    Truncated { needed: usize, got: usize },
    BadMagic,
    UnsupportedVersion { found: u16, supported: u16 },
    TrailingBytes { extra: usize },
    ChecksumMismatch { stored: u32, computed: u32 },
}

/// One format's framing: magic at offset 0, version at offset 4, the payload after `preamble`.
pub(crate) struct Framing {
    pub magic: [u8; 4],
    pub version: u16,
    pub preamble: usize,
}

impl Framing {
    /// Checks that the preamble is there and that magic and version match.
    pub fn check_head(&self, bytes: &[u8]) -> Result<(), FramingError> {
        // A file of another kind is named as such even when it is shorter than the preamble
        // (a 5-byte text file is not a "truncated" model).
        if bytes.len() >= 4 && bytes[..4] != self.magic {
            return Err(FramingError::BadMagic);
        }
        if bytes.len() < self.preamble {
            return Err(FramingError::Truncated {
                needed: self.preamble,
                got: bytes.len(),
            });
        }
        if bytes[..4] != self.magic {
            return Err(FramingError::BadMagic);
        }
        let found = u16_at(bytes, 4);
        if found != self.version {
            return Err(FramingError::UnsupportedVersion {
                found,
                supported: self.version,
            });
        }
        Ok(())
    }

    /// Checks that the file is exactly `needed` bytes long and that the CRC-32 stored at `crc_at`
    /// matches the bytes after the preamble. Call after [`Framing::check_head`].
    pub fn check_body(
        &self,
        bytes: &[u8],
        needed: usize,
        crc_at: usize,
    ) -> Result<(), FramingError> {
        if bytes.len() < needed {
            return Err(FramingError::Truncated {
                needed,
                got: bytes.len(),
            });
        }
        if bytes.len() > needed {
            return Err(FramingError::TrailingBytes {
                extra: bytes.len() - needed,
            });
        }
        let (stored, computed) = (u32_at(bytes, crc_at), crc32(&bytes[self.preamble..]));
        if stored != computed {
            return Err(FramingError::ChecksumMismatch { stored, computed });
        }
        Ok(())
    }

    /// Writes magic and version into a preamble (the reserved u16 after them stays as it is).
    #[cfg(any(test, feature = "std"))]
    pub fn write_head(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.magic);
        out[4..6].copy_from_slice(&self.version.to_le_bytes());
    }

    /// Stores the CRC-32 of the bytes after the preamble at `crc_at`.
    #[cfg(any(test, feature = "std"))]
    pub fn seal(&self, out: &mut [u8], crc_at: usize) {
        let crc = crc32(&out[self.preamble..]);
        out[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Little-endian u16 at `i`.
pub(crate) fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

/// Little-endian u32 at `i`.
pub(crate) fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

//! The random cases of the kernel checks.

/// A small xorshift generator: the cases are the same on every platform. The one generator of
/// the kernel checks (the conformance cases here, the x86 kernels' own test).
pub(crate) struct Cases(u32);

impl Cases {
    /// The generator the conformance suite starts from.
    pub(crate) const fn new() -> Cases {
        Cases(0x2545_f491)
    }
    pub(crate) fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
    /// Random bytes; with `extremes`, the first and last are 0x80 (−128).
    pub(crate) fn fill(&mut self, bytes: &mut [u8], extremes: bool) {
        for b in bytes.iter_mut() {
            *b = self.next() as u8;
        }
        if extremes && !bytes.is_empty() {
            let n = bytes.len();
            (bytes[0], bytes[n - 1]) = (0x80, 0x80);
        }
    }
}

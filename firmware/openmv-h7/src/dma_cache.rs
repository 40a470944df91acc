//! Keeping the Cortex-M7 data cache coherent with the DMA that writes camera frames.
//!
//! The D-cache is on (inference reads the weights and the arena through it, several times
//! faster than uncached). The DCMI's DMA writes the frame buffer behind the cache's back, so
//! after each capture the buffer's cache lines are invalidated before the CPU reads it.

use cortex_m::peripheral::SCB;

/// Cache line of the Cortex-M7 D-cache.
pub const LINE: usize = 32;

/// A DMA target: 32-byte aligned and a whole number of cache lines long, so invalidating it
/// cannot discard a neighbour's data.
#[repr(C, align(32))]
pub struct DmaBuffer<const WORDS: usize>(pub [u32; WORDS]);

impl<const WORDS: usize> DmaBuffer<WORDS> {
    const WHOLE_LINES: () = assert!(
        (WORDS * 4).is_multiple_of(LINE),
        "DMA buffer must be whole cache lines"
    );

    pub const fn new() -> Self {
        let () = Self::WHOLE_LINES;
        DmaBuffer([0; WORDS])
    }

    /// Drops any cached copy of the buffer so the next reads see what the DMA wrote.
    pub fn invalidate(&mut self, scb: &mut SCB) {
        // SAFETY: the buffer is 32-byte aligned and a multiple of 32 bytes long (checked at
        // compile time above), so the invalidated lines hold only this buffer; we hold it by
        // `&mut`, so no other code has pending writes to it that the invalidation could drop, and
        // the CPU never writes it (only the DMA does), so no dirty line is lost.
        unsafe { scb.invalidate_dcache_by_slice(&mut self.0) };
    }

    /// Writes back any data the CPU wrote into the buffer (the firmware reuses the frame buffer
    /// for the gray plane) so no dirty line can be evicted over the next DMA transfer.
    pub fn clean(&mut self, scb: &mut SCB) {
        scb.clean_dcache_by_slice(&self.0);
    }

    /// The buffer as bytes, in the order the DCMI received them (little-endian words).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.0)
    }
}

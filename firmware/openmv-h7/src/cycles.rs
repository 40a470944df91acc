//! Latency from the Cortex-M7 DWT cycle counter.

use cortex_m::peripheral::{DCB, DWT};

use crate::board::CORE_HZ;

/// Starts the cycle counter (it runs until reset).
pub fn start(dcb: &mut DCB, dwt: &mut DWT) {
    dcb.enable_trace();
    DWT::unlock();
    dwt.enable_cycle_counter();
}

/// The current cycle count (wraps every 2^32 cycles, ~8.9 s at 480 MHz).
#[inline]
pub fn now() -> u32 {
    DWT::cycle_count()
}

/// Microseconds between two counts (wrapping).
pub fn micros(from: u32, to: u32) -> u32 {
    let cycles = u64::from(to.wrapping_sub(from));
    (cycles * 1_000_000 / u64::from(CORE_HZ)) as u32
}

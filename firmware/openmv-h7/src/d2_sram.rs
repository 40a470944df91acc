//! The D2 domain's SRAM1-3 (288 KiB at 0x3000_0000): the CNN face detector's arena, which the
//! AXI SRAM cannot hold beside the camera frame, the expression model's arena and the stack.
//! The memory is clocked by [`enable`] (off after reset) and its section is not loaded by the
//! start-up code (memory.x), so the arena is zeroed here before anyone reads it.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

/// Bytes of the CNN detector's arena: its plan at 160x128 (the QVGA frame halved) needs
/// 205,315.
pub const CNN_ARENA: usize = 208 * 1024;

#[link_section = ".d2sram"]
static mut ARENA: MaybeUninit<[i8; CNN_ARENA]> = MaybeUninit::uninit();

/// Proof that the D2 SRAMs are clocked.
pub struct D2Sram(());

/// Turns the clocks of SRAM1, SRAM2 and SRAM3 on (RCC_AHB2ENR; off after reset).
pub fn enable() -> D2Sram {
    embassy_stm32::pac::RCC.ahb2enr().modify(|w| {
        w.set_sram1en(true);
        w.set_sram2en(true);
        w.set_sram3en(true);
    });
    cortex_m::asm::dsb();
    D2Sram(())
}

impl D2Sram {
    /// The detector's arena, zeroed. Hands it out once.
    ///
    /// # Panics
    /// On a second call.
    pub fn cnn_arena(&self) -> &'static mut [i8; CNN_ARENA] {
        static TAKEN: AtomicBool = AtomicBool::new(false);
        assert!(
            !TAKEN.swap(true, Ordering::AcqRel),
            "the CNN arena is taken once"
        );
        // SAFETY: `TAKEN` (in .bss, zeroed at start-up) lets exactly one call through, so this is
        // the only reference ever made to `ARENA`; `self` proves its memory is clocked; every
        // byte is zeroed in place (a memset, no copy through the stack) before the reference to
        // the initialised array is made.
        unsafe {
            let arena = core::ptr::addr_of_mut!(ARENA);
            core::ptr::write_bytes(arena.cast::<i8>(), 0, CNN_ARENA);
            (*arena).assume_init_mut()
        }
    }
}

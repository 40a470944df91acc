//! Runs the published int8 model on the golden inputs on an emulated Cortex-M7 and prints the
//! logits over semihosting, one line per input:
//!
//! ```text
//! golden 0: -12 -80 3 41 -7 -20 -33 -> happy
//! ```
//!
//! The host check (`fer-checks`, test `qemu`) compares them bit for bit with
//! `models/golden/logits.json`. Exit status: 0 on success, 1 if the model is rejected or a fault
//! occurs.
#![no_std]
#![no_main]

use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprintln};
use edge_runtime::{Model, INPUT_PIXELS};

/// The published model, read in place from (emulated) flash.
static MODEL: &[u8] = include_bytes!("../../../models/fer_cnn.int8.bin");
/// The golden inputs: 2304 gray pixels each.
static GOLDEN: &[u8] = include_bytes!("../../../models/golden/inputs.bin");

/// Arena for the activations; the model reports what it needs (27 KiB for the published one).
const ARENA: usize = 32 * 1024;

/// Marks the start and the end of each inference for the instruction-counting QEMU plugin
/// (`plugin/insn_count.c`), which finds this function by its symbol name.
#[inline(never)]
#[no_mangle]
pub extern "C" fn fer_mark(tag: u32) {
    core::hint::black_box(tag);
}

fn mark(tag: u32) {
    fer_mark(tag);
}

fn fail() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[entry]
fn main() -> ! {
    let model = match Model::from_bytes(MODEL) {
        Ok(m) => m,
        Err(e) => {
            hprintln!("model rejected: {}", e);
            fail()
        }
    };
    hprintln!(
        "model: {} layers, {} weight bytes, arena {} bytes, {} MACs",
        model.layers().len(),
        model.weight_bytes(),
        model.arena_size(),
        model.macs()
    );
    let mut arena = [0i8; ARENA];
    for (i, face) in GOLDEN.chunks_exact(INPUT_PIXELS).enumerate() {
        mark(i as u32);
        let result = model.run(face, &mut arena);
        mark(i as u32);
        match result {
            Ok(l) => {
                let v = l.0;
                hprintln!(
                    "golden {}: {} {} {} {} {} {} {} -> {}",
                    i,
                    v[0],
                    v[1],
                    v[2],
                    v[3],
                    v[4],
                    v[5],
                    v[6],
                    l.argmax().name()
                );
            }
            Err(e) => {
                hprintln!("golden {}: inference failed: {}", i, e);
                fail()
            }
        }
    }
    hprintln!("done");
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("hard fault at pc {:#010x}", frame.pc());
    fail()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("panic: {}", info);
    fail()
}

//! Any byte string given to the model parser is either rejected with an error or yields a model
//! on which inference runs to completion: no panic, no out-of-bounds access, no hang.
//! A model that validates also gets its pre-widened weights attached, with the same logits.
//! Each input is tried as is and with its CRC-32 fixed up, so that mutations reach the layer-table
//! decoder and the validator behind the checksum.
#![no_main]

use edge_runtime::format::PREAMBLE;
use edge_runtime::{Model, INPUT_PIXELS};
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    if let Ok(model) = Model::from_bytes(bytes) {
        // Only run small models so the fuzzer stays fast; validation bounds the work anyway.
        if model.macs() <= 20_000_000 && model.arena_size() <= 1 << 20 {
            let mut arena = vec![0i8; model.arena_size()];
            let face = [128u8; INPUT_PIXELS];
            let logits = model
                .run(&face, &mut arena)
                .expect("a validated model runs");
            let _ = logits.argmax();
            // Its pre-widened weights (edge_runtime::wide) are accepted and change nothing.
            let wide = edge_runtime::wide::companion(bytes).expect("companion of a valid model");
            // At a word-aligned address, as the kernel requires.
            let mut buf = vec![0u8; wide.len() + 3];
            let at = buf.as_ptr().align_offset(4);
            buf[at..at + wide.len()].copy_from_slice(&wide);
            let with = model
                .clone()
                .with_wide(&buf[at..at + wide.len()])
                .expect("its own companion");
            assert_eq!(with.run(&face, &mut arena), Ok(logits));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= PREAMBLE {
        let mut fixed = data.to_vec();
        let crc = edge_runtime::crc32::crc32(&fixed[PREAMBLE..]);
        fixed[16..20].copy_from_slice(&crc.to_le_bytes());
        check(&fixed);
    }
});

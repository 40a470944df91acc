//! Any byte string given to the CNN face-detector parser is either rejected with an error or
//! yields a detector that plans, runs and decodes two small frames to completion: no panic, no
//! out-of-bounds access, no overflow, no hang. Each input is tried as is and with its length and
//! CRC-32 fixed up, so that mutations reach the layer, stage and head validation behind the
//! checksum. Seeds: `fuzz/seeds/cnn_detector` (the published detector).
#![no_main]

use edge_runtime::detect::cnn::decode::{decode, DecodeParams, Detection};
use edge_runtime::detect::cnn::file::{CnnDetector, PREAMBLE};
use libfuzzer_sys::fuzz_target;

/// The largest arena tried (a detector of huge layers is valid but not run here).
const MAX_ARENA: usize = 16 << 20;

fn check(bytes: &[u8]) {
    let Ok(det) = CnnDetector::from_bytes(bytes) else {
        return;
    };
    let s = det.max_stride();
    for (w, h) in [(s, s), (2 * s, s)] {
        if w > 256 || h > 256 {
            continue;
        }
        let Ok(plan) = det.plan(w, h) else {
            continue;
        };
        if plan.arena_len() > MAX_ARENA {
            continue;
        }
        let frame: Vec<u8> = (0..w * h).map(|i| (i * 7 % 251) as u8).collect();
        let mut arena = vec![0i8; plan.arena_len()];
        det.run(&plan, &frame, &mut arena)
            .expect("a planned frame runs");
        let mut out = [Detection::EMPTY; 8];
        let n = decode(&det, &plan, &arena, &DecodeParams::default(), &mut out);
        assert!(n <= out.len());
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= PREAMBLE {
        // The declared payload length and its CRC-32 made right.
        let mut fixed = data.to_vec();
        let len = (data.len() - PREAMBLE) as u32;
        fixed[8..12].copy_from_slice(&len.to_le_bytes());
        let crc = edge_runtime::crc32::crc32(&fixed[PREAMBLE..]);
        fixed[12..16].copy_from_slice(&crc.to_le_bytes());
        check(&fixed);
    }
});

//! Any byte string given to the face-detector cascade parser is either rejected with an error or
//! yields a cascade the detector runs to completion with on a frame: no panic, no out-of-bounds
//! access, no hang. Each input is tried as is and with its length and CRC-32 fixed up, so that mutations
//! reach the stage and feature validation behind the checksum.
#![no_main]

use edge_runtime::detect::cascade::PREAMBLE;
use edge_runtime::detect::{detect, Cascade, DetectParams, Face};
use edge_runtime::preprocess::GrayFrame;
use libfuzzer_sys::fuzz_target;

/// A 64x48 frame with some structure (a gradient and a dark block), so features see contrast.
fn frame_pixels() -> Vec<u8> {
    (0..64 * 48)
        .map(|i| {
            let (x, y) = (i % 64, i / 64);
            if (20..40).contains(&x) && (12..30).contains(&y) {
                30
            } else {
                (x * 3 + y * 2) as u8
            }
        })
        .collect()
}

fn check(bytes: &[u8], pixels: &[u8]) {
    if let Ok(cascade) = Cascade::from_bytes(bytes) {
        let frame = GrayFrame::new(pixels, 64, 48).expect("a whole frame");
        let mut scratch = vec![0u32; 65 * 49];
        let (mut hits, mut faces) = ([Face::EMPTY; 64], [Face::EMPTY; 8]);
        let params = DetectParams {
            min_size: 0,
            ..DetectParams::default()
        };
        let stats = detect(
            &cascade,
            &frame,
            &params,
            &mut scratch,
            &mut hits,
            &mut faces,
        );
        assert!(stats.faces <= faces.len());
    }
}

fuzz_target!(|data: &[u8]| {
    let pixels = frame_pixels();
    check(data, &pixels);
    if data.len() >= PREAMBLE {
        // The declared payload length and its CRC-32 made right.
        let mut fixed = data.to_vec();
        let len = (data.len() - PREAMBLE) as u32;
        fixed[8..12].copy_from_slice(&len.to_le_bytes());
        let crc = edge_runtime::crc32::crc32(&fixed[PREAMBLE..]);
        fixed[12..16].copy_from_slice(&crc.to_le_bytes());
        check(&fixed, &pixels);
    }
});

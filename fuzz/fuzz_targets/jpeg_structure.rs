//! Any byte string checked as JPEG: `fer_dataset::jpeg::check_whole` (the marker walk, the size
//! its scan data can hold, the decode-twice test for missing scan data) and `decode_image`,
//! which runs it. Must hold: no panic, no hang; the verdict is the same on a second call; a
//! JPEG the check refuses is never decoded into an image.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let verdict = fer_dataset::jpeg::check_whole(data, 8192);
    assert_eq!(verdict, fer_dataset::jpeg::check_whole(data, 8192));
    let looks_jpeg = data.starts_with(&[0xFF, 0xD8, 0xFF]);
    if let Ok(img) = fer_dataset::safe_read::decode_image(data, "fuzz input") {
        assert!(img.width() > 0 && img.height() > 0);
        assert!(img.width() <= 8192 && img.height() <= 8192);
        if looks_jpeg {
            assert!(
                verdict.is_ok(),
                "decoded a JPEG the check refused: {verdict:?}"
            );
        }
    }
});

//! JPEG / PNG decoding as the capture sources do it (size limit, format sniffing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use spotter::capture::decode::decode_bytes;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = decode_bytes(data, "fuzz") {
        assert_eq!(img.data.len(), img.width * img.height * 3);
    }
});

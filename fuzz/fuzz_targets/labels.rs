//! Label files (plain lists, `id name` maps, pbtxt label maps): parse and look every id up.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use spotter::vision::labels::Labels;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(labels) = Labels::parse(text, Path::new("fuzz-labels.txt")) {
        for id in 0..labels.len().min(4096) + 2 {
            let _ = labels.get(id);
        }
    }
});

//! `spotter run` TOML config: parse + validate; an error must name the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spotter::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, "fuzz.toml") {
        Ok(config) => {
            let _ = config.validate();
        }
        Err(e) => assert!(e.to_string().contains("fuzz.toml"), "{e}"),
    }
});

//! Fuzz target: any text as a configuration file. Loading may list
//! problems, never panic, and every problem it lists has a key.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = dbss_exporter::config::load_str(text, "fuzz.toml") {
        assert!(e.problems.iter().all(|p| !p.key.is_empty()));
    }
});

//! Fuzz target: any bytes as an upgrade-status answer or an error body.
//! Decoding may refuse them, never panic; what it accepts must render.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let _ = dbss_exporter::api::decode_error_body(body);
    if let Ok(answer) = dbss_exporter::api::decode(body) {
        for instance in &answer.instances {
            assert!(!instance.instance_id.is_empty());
        }
    }
});

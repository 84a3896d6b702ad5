#![no_main]
// The target and what it checks: crates/fuzzing (fuzzing::web_request).
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::web_request(data));

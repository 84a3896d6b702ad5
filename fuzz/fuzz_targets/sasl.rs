#![no_main]
// The target and what it checks: crates/fuzzing (fuzzing::sasl).
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::sasl(data));

#![no_main]
// The target and what it checks: crates/fuzzing (fuzzing::smtp_command).
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::smtp_command(data));

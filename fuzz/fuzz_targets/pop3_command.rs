#![no_main]
// The target and what it checks: crates/fuzzing (fuzzing::pop3_command).
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::pop3_command(data));

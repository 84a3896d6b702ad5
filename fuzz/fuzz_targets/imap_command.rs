#![no_main]
// The target and what it checks: crates/fuzzing (fuzzing::imap_command).
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::imap_command(data));

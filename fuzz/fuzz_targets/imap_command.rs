//! IMAP framer + parser: any byte stream, split anywhere, must never panic, spin, or make
//! the framer hand out bytes it was not given.
#![no_main]

use imap_proto::{CommandFramer, Decoded, FrameLimits, parse_command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_command(data);
    // The first byte picks the split point and the limits, so both are explored.
    let Some((&knob, input)) = data.split_first() else {
        return;
    };
    let cut = usize::from(knob) % (input.len() + 1);
    let limits = if knob & 1 == 0 {
        FrameLimits::default()
    } else {
        FrameLimits {
            max_line: 40,
            max_literal: 16,
            max_command: 80,
            max_non_sync_literal: 8,
        }
    };
    let mut framer = CommandFramer::new(limits);
    let mut buf = Vec::new();
    for part in [&input[..cut], &input[cut..]] {
        buf.extend_from_slice(part);
        for step in 0.. {
            assert!(step < 100_000, "framer does not make progress");
            match framer.decode(&buf) {
                Ok(Decoded::Complete {
                    line_with_literals,
                    consumed,
                }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    let _ = parse_command(line_with_literals);
                    buf.drain(..consumed);
                }
                Ok(Decoded::Discard { consumed }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    buf.drain(..consumed);
                }
                Ok(Decoded::NeedsContinuation { .. }) => {}
                Ok(Decoded::Incomplete) => break,
                Err(e) => {
                    assert!(e.skip() <= buf.len());
                    buf.drain(..e.skip());
                }
            }
        }
    }
});

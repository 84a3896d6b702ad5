//! One function per parser, `fn(&[u8])`, for fuzzing: each drives the real code on arbitrary
//! bytes and panics when it finds a bug — a panic inside the code under test, or a broken
//! property the target checks (a round trip that does not come back, a framer that hands out
//! bytes it was not given, an encoded response with unbalanced parentheses).
//!
//! Two drivers call them:
//! - `fuzz/` (cargo-fuzz, libFuzzer, nightly): `fuzz/fuzz_targets/<name>.rs` is one call into
//!   this crate, for long coverage-guided runs by hand;
//! - [`harness`] (stable, no coverage feedback): replays the seed corpus `fuzz/corpus/<name>/`
//!   and runs a bounded, seeded mutation loop; `tests/fuzz.rs` runs it under `cargo test`.
//!
//! The config target lives in the `yubin` crate (a binary, whose config types no library
//! can reach); its test drives it with this crate's [`harness`].
//!
//! How to run them and what they check: `docs/fuzzing.md`.

pub mod harness;
mod imap;
mod mime;
mod pop3;
mod sasl_target;
mod smtp;
mod web_target;

pub use imap::imap_command;
pub use mime::imap_mime;
pub use pop3::pop3_command;
pub use sasl_target::sasl;
pub use smtp::{smtp_command, smtp_session};
pub use web_target::web_request;

/// A target: its name (of its corpus folder and cargo-fuzz target) and its function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target of this crate.
pub const TARGETS: &[Target] = &[
    ("smtp_command", smtp_command),
    ("smtp_session", smtp_session),
    ("imap_command", imap_command),
    ("imap_mime", imap_mime),
    ("pop3_command", pop3_command),
    ("sasl", sasl),
    ("web_request", web_request),
];

/// Splits `data` in two at a point its first byte picks, for targets that want two inputs
/// (or one input fed in two reads).
pub(crate) fn knob_split(data: &[u8]) -> (u8, &[u8], &[u8]) {
    let Some((&knob, rest)) = data.split_first() else {
        return (0, &[], &[]);
    };
    let cut = usize::from(knob) * rest.len() / 255;
    let (a, b) = rest.split_at(cut.min(rest.len()));
    (knob, a, b)
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
}

/// Runs `f` on this thread's runtime (one per thread, made once: a target runs millions of
/// times).
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(f))
}

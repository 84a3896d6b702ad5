//! The config fuzz target: any bytes as `yubin.toml` — TOML parsing into [`Config`], then
//! its validation — give a configuration or a one-line error, never a panic. It lives here
//! because the config types are the binary's; the fuzzing crate's harness drives it (seed
//! corpus `fuzz/corpus/config/`, `YUBIN_FUZZ_SECS`; docs/fuzzing.md). cargo-fuzz cannot
//! link a binary crate, so this target has no libFuzzer twin.

use crate::config::Config;

/// One input: an accepted configuration parses again the same way; a refused one has an
/// error of one line (it is printed as the reason `yubin` does not start).
pub(crate) fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text) {
        Ok(c) => {
            let again = Config::parse(&text).expect("an accepted config parses again");
            assert_eq!(format!("{c:?}"), format!("{again:?}"));
            let _ = c.hostname();
            let _ = c.limits.trusted_networks();
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains('\n'), "a multi-line error: {message:?}");
        }
    }
}

#[test]
fn seed_corpus_replays_and_bounded_mutation_finds_nothing() {
    use fuzzing::harness;
    if !harness::selected("config") {
        return;
    }
    let report = harness::fuzz(
        "config",
        config,
        harness::secs_from_env(2.0),
        harness::seed_from_env(),
    );
    harness::announce(&report.to_string());
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}

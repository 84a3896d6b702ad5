//! Every fuzz target under `cargo test` (stable): the seed corpus must replay cleanly, then a
//! bounded mutation run per target (`YUBIN_FUZZ_SECS`, 2 s by default) must find nothing.
//! See docs/fuzzing.md.

use fuzzing::harness::{self, Report};

/// Seconds of mutation per target in the CI-sized run.
const CI_SECS: f64 = 2.0;

#[test]
fn every_target_has_a_seed_corpus_and_a_cargo_fuzz_target() {
    for (name, _) in fuzzing::TARGETS {
        let target = harness::repo_root().join(format!("fuzz/fuzz_targets/{name}.rs"));
        assert!(
            target.is_file(),
            "no cargo-fuzz target {}",
            target.display()
        );
    }
    // `config` is run by the yubin crate's test (its types are the binary's).
    for name in fuzzing::TARGETS.iter().map(|t| t.0).chain(["config"]) {
        let seeds = harness::load_corpus(name);
        assert!(seeds.len() >= 3, "{name}: fewer than 3 seeds");
    }
}

#[test]
fn seed_corpus_replays_and_bounded_mutation_finds_nothing() {
    let secs = harness::secs_from_env(CI_SECS);
    let seed = harness::seed_from_env();
    harness::announce(&format!(
        "fuzz: {secs} s per target, YUBIN_FUZZ_SEED={seed}"
    ));
    let mut reports: Vec<Report> = Vec::new();
    for &(name, run) in fuzzing::TARGETS {
        if !harness::selected(name) {
            continue;
        }
        let report = harness::fuzz(name, run, secs, seed);
        harness::announce(&report.to_string());
        reports.push(report);
    }
    let failed: Vec<_> = reports.iter().filter(|r| !r.failures.is_empty()).collect();
    assert!(
        failed.is_empty(),
        "fuzz failures (replay with the saved inputs): {:?}",
        failed
            .iter()
            .map(|r| (&r.target, &r.failures))
            .collect::<Vec<_>>()
    );
}

/// The harness itself: a panicking target is caught, reported and its input saved.
#[test]
fn a_panic_is_caught_and_its_input_saved() {
    fn boom(data: &[u8]) {
        assert!(!data.starts_with(b"boom"), "found it");
    }
    assert!(harness::run_one("selftest", boom, b"fine").is_ok());
    let saved = harness::run_one("selftest", boom, b"boom!").unwrap_err();
    assert_eq!(std::fs::read(&saved).unwrap(), b"boom!");
    let _ = std::fs::remove_file(saved);
}

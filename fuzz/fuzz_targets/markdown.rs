//! Fuzz target `markdown`: the invariants are asserted by `perennial::fuzz_checks::markdown`, which
//! `tests/it/fuzz_regressions.rs` also runs over the seeds and kept crash inputs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| perennial::fuzz_checks::markdown(data));

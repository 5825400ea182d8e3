//! Signed commands and reports from arbitrary bytes: never a panic, never accepted
//! (the fuzzer cannot sign with the trusted key).

#![no_main]

use lattice_protocol::trust::{Admission, CommandVerifier, ReportPolicy, VerifierConfig};
use libfuzzer_sys::fuzz_target;
use nkeys::{KeyPair, KeyPairType};

fuzz_target!(|data: &[u8]| {
    let lattice = KeyPair::new_from_raw(KeyPairType::Cluster, [1; 32]).unwrap();
    let host = KeyPair::new_from_raw(KeyPairType::Server, [2; 32]).unwrap();
    let trusted = [lattice.public_key()];
    let mut verifier =
        CommandVerifier::new("default", &host.public_key(), trusted, VerifierConfig::default())
            .unwrap();
    assert!(verifier.verify_bytes(data, 1_000_000).is_err());
    let policy = ReportPolicy::new("default", Admission::default());
    assert!(policy.check(data, 1_000_000).is_err());
});

//! Parse arbitrary text as a manifest. The parser must never panic, and whatever it
//! accepts must revalidate to itself (as the controller's API does with JSON).

#![no_main]

use lattice_protocol::manifest::{parse, revalidate, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(manifest) = parse(&text) {
        let again = revalidate(&manifest, &Limits::default()).expect("parsed manifests revalidate");
        assert_eq!(again, manifest);
    }
});

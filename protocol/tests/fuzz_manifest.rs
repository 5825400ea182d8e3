//! Bounded fuzzing of the manifest parser on stable Rust: random text and
//! structured mutations of the sample manifests never panic, finish quickly, and
//! whatever parses survives a JSON round trip and revalidates to itself.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

#[allow(dead_code)] // only the cases are needed here
mod common;

use lattice_protocol::manifest::{parse, revalidate, Limits, Manifest};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use std::time::{Duration, Instant};

/// Longest one parse may take, even unoptimized on a loaded machine.
const BOUND: Duration = Duration::from_secs(2);

fn bounded_parse(text: &str) -> Option<Manifest> {
    let start = Instant::now();
    let result = parse(text);
    assert!(start.elapsed() < BOUND, "parse took {:?}", start.elapsed());
    if let Ok(m) = &result {
        let json = serde_json::to_string(m).unwrap();
        assert_eq!(&serde_json::from_str::<Manifest>(&json).unwrap(), m);
        // The same manifest sent as JSON passes the same checks.
        assert_eq!(revalidate(m, &Limits::default()).as_ref(), Ok(m));
    }
    result.ok()
}

fn samples() -> Vec<String> {
    common::cases().iter().map(|c| c.text()).collect()
}

/// Pieces of YAML and of manifests that stress the parser when spliced in.
const PIECES: &[&str] = &[
    "instances: 4294967295",
    "instances: -1",
    "replicas: 18446744073709551616",
    "weight: 99999999999",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ": ",
    "&a [x, x, x, x]",
    "*a",
    "<<: *a",
    "!!binary aGk=",
    "!custom {}",
    "~",
    "null",
    "\"\\u0000\"",
    "'",
    "\t",
    "\n  - type: link\n    properties: {target: x}",
    "\n    - {name: x, type: component, properties: {image: file://x.wasm}}",
    "target: {name: [1]}",
    "config: [{name: a}, 3, {properties: []}]",
    "image: builtin://",
    "image: file://",
    "interfaces: []",
    "---\n",
    "...\n",
    "? complex key\n: value",
];

/// One edit of a text, chosen by proptest.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, piece: &'static str },
    DuplicateLine { line: usize },
    DropLine { line: usize },
    Byte { at: usize, byte: u8 },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..40usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), select(PIECES)).prop_map(|(at, piece)| Edit::Insert { at, piece }),
        any::<usize>().prop_map(|line| Edit::DuplicateLine { line }),
        any::<usize>().prop_map(|line| Edit::DropLine { line }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Byte { at, byte }),
    ]
}

fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, e: &Edit) {
    match *e {
        Edit::Delete { at, len } => {
            let start = boundary(text, at);
            let end = boundary(text, start + len).max(start);
            text.replace_range(start..end, "");
        }
        Edit::Insert { at, piece } => {
            let at = boundary(text, at);
            text.insert_str(at, piece);
        }
        Edit::DuplicateLine { line } | Edit::DropLine { line } => {
            let mut lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                return;
            }
            let i = line % lines.len();
            if matches!(e, Edit::DuplicateLine { .. }) {
                lines.insert(i, lines[i]);
            } else {
                lines.remove(i);
            }
            *text = lines.join("\n");
        }
        Edit::Byte { at, byte } => {
            let mut bytes = std::mem::take(text).into_bytes();
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] = byte;
            }
            *text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_text_never_panics(bytes in vec(any::<u8>(), 0..512)) {
        bounded_parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_manifests_never_panic(
        sample in any::<prop::sample::Index>(),
        edits in vec(edit(), 1..6),
    ) {
        let samples = samples();
        let mut text = samples[sample.index(samples.len())].clone();
        for e in &edits {
            apply(&mut text, e);
        }
        bounded_parse(&text);
    }
}

#[test]
fn alias_bombs_are_refused_quickly() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    text.push_str("spec: {components: *a11}\n");
    assert!(bounded_parse(&text).is_none());
}

#[test]
fn deep_nesting_is_refused_quickly() {
    // Unbounded, 100,000 `[` keep the YAML reader busy for half a minute.
    for n in [4096, 100_000, 500_000] {
        let text = format!("spec: {}{}", "[".repeat(n), "]".repeat(n));
        assert!(bounded_parse(&text).is_none());
    }
}

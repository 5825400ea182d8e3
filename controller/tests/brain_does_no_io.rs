//! Architecture invariant: `src/brain/` does no IO. No file there names an IO crate
//! or module, nor the runtime; `runtime/` feeds the brain and applies what it answers.
//! Tests (`*_tests.rs`, `#[cfg(test)]` modules) may read the clock.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use std::path::Path;

/// What a file of the brain must not name, with why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("tokio", "tasks, timers and sockets belong to runtime/"),
    ("async_nats", "NATS belongs to runtime/"),
    ("lattice_bus", "NATS belongs to runtime/"),
    ("crate::runtime", "the brain is below the runtime"),
    ("std::net", "sockets belong to runtime/"),
    ("std::fs", "files belong to runtime/"),
    ("Instant::now", "the time is an argument"),
    ("SystemTime::now", "the time is an argument"),
];

#[test]
fn brain_does_no_io() {
    let brain = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/brain");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&brain).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file.ends_with("_tests.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let code = source.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for (name, why) in FORBIDDEN {
                if code.contains(name) {
                    found.push(format!("  {file}:{}: names {name} ({why})", n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "src/brain must do no IO:\n{}",
        found.join("\n")
    );
}

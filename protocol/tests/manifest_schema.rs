//! `manifests/schema.json` agrees with the parser: it is a valid draft 2020-12
//! schema, every manifest the parser accepts validates against it, and every case the
//! parser rejects fails it too, except the checks only the parser can make.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod common;

use lattice_protocol::manifest::Builtin;
use serde_json::Value;

/// Bad cases the schema cannot catch: YAML that does not load, and checks across
/// components or across fields, and budgets.
const PARSER_ONLY: &[&str] = &[
    "bad-yaml-syntax",
    "bad-yaml-duplicate-key",
    "bad-link-target-unknown",
    "bad-link-self",
    "bad-link-ambiguous",
    "bad-link-both-configs",
    "bad-http-no-address",
    "bad-http-bad-address",
    "bad-http-target-capability",
    "bad-keyvalue-namespace",
    "bad-blobstore-package",
    "bad-link-timeout",
    // The config keys each capability reads depend on the image at the other end.
    "bad-wasmcloud-keys",
    // Budgets (`manifest::Limits`) are settable, so the schema does not fix them.
    "bad-budget-components",
    "bad-budget-entries",
    "bad-budget-names",
];

fn schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The case as JSON, or `None` if it is not loadable YAML.
fn as_json(case: &common::Case) -> Option<Value> {
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&case.text()).ok()?;
    Some(serde_json::to_value(yaml).unwrap())
}

#[test]
fn schema_is_valid_draft_2020_12_and_names_every_builtin() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::draft202012::meta::validate(&schema).unwrap();
    let text = schema.to_string();
    for builtin in Builtin::ALL {
        let image = format!("builtin://{}", builtin.name());
        assert!(text.contains(&image), "schema does not list {image}");
    }
}

#[test]
fn schema_agrees_with_the_parser() {
    let validator = jsonschema::draft202012::new(&schema()).unwrap();
    let mut wrong = Vec::new();
    let cases = common::cases();
    for case in &cases {
        let parser_only = PARSER_ONLY.contains(&case.name.as_str());
        let Some(json) = as_json(case) else {
            if !parser_only {
                wrong.push(format!("{}: not loadable YAML", case.name));
            }
            continue;
        };
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| format!("{} {e}", e.instance_path()))
            .collect();
        match (case.is_good() || parser_only, errors.is_empty()) {
            (true, false) => wrong.push(format!("{}: schema rejects: {errors:?}", case.name)),
            (false, true) => wrong.push(format!("{}: schema accepts a bad manifest", case.name)),
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(cases.iter().filter(|c| c.is_good()).count() >= 5);
}

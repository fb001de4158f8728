//! The committed schemas under schema/ are generated files: this fails when they are stale.

use speakap_sync::config::schema;

#[test]
fn committed_schemas_match_the_config_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let mut stale = Vec::new();
    for (name, text) in schema::all_files() {
        let committed = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        if committed != text {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "stale schema files {stale:?}: run `cargo run -- schema --out schema` and commit them"
    );
}

#[test]
fn the_example_repo_documents_point_editors_at_the_schema() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo");
    for file in [
        "sync.yaml",
        "exclusions.yaml",
        "overrides.yaml",
        "rules/organisation.yaml",
    ] {
        let text = std::fs::read_to_string(example.join(file)).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema="),
            "{file}"
        );
    }
}

#[test]
fn the_example_seed_matches_the_seed_schema() {
    let schema = speakap_sync::config::schema::seed_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let seed =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo/simulator/seed.json");
    let seed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(seed).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&seed)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let wrong =
        serde_json::json!({"groups": [{"name": "X", "type": "club"}], "users": [{"emial": "x"}]});
    assert!(!validator.is_valid(&wrong));
}

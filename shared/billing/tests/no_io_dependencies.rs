//! The billing core stays pure (STYLE R1): its normal (non-dev) dependency tree must contain no
//! AWS SDK, lambda runtime, async runtime, HTTP stack or JSON library. Dev-dependencies (the
//! JSON reader of the conformance test, criterion) do not reach the library and are excluded
//! with `-e normal`.

use std::process::Command;

const FORBIDDEN_PREFIXES: &[&str] = &["aws-", "aws_", "lambda"];
const FORBIDDEN_NAMES: &[&str] = &["tokio", "serde_json", "hyper", "reqwest", "axum"];

#[test]
fn the_billing_crate_has_no_io_dependency() {
    // Given the workspace root, when listing billing's normal dependency tree,
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let output = Command::new(env!("CARGO"))
        .args(["tree", "-p", "billing", "-e", "normal", "--prefix", "none"])
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo tree: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let crates: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"billing"),
        "cargo tree did not list billing itself:\n{stdout}"
    );
    // then none of them is an I/O crate.
    let offending: Vec<&str> = crates
        .iter()
        .copied()
        .filter(|name| {
            FORBIDDEN_PREFIXES.iter().any(|p| name.starts_with(p)) || FORBIDDEN_NAMES.contains(name)
        })
        .collect();
    assert!(
        offending.is_empty(),
        "billing must not depend on I/O crates, found: {offending:?}"
    );
}

#[test]
fn the_forbidden_list_catches_what_it_names() {
    // The filter above is only as good as its list: check it flags the crates it must.
    for name in [
        "aws-sdk-dynamodb",
        "aws_lambda_events",
        "lambda_runtime",
        "tokio",
        "serde_json",
        "hyper",
        "reqwest",
        "axum",
    ] {
        let flagged = FORBIDDEN_PREFIXES.iter().any(|p| name.starts_with(p))
            || FORBIDDEN_NAMES.contains(&name);
        assert!(flagged, "{name} should be forbidden");
    }
    for name in [
        "rust_decimal",
        "chrono",
        "chrono-tz",
        "thiserror",
        "billing",
    ] {
        let flagged = FORBIDDEN_PREFIXES.iter().any(|p| name.starts_with(p))
            || FORBIDDEN_NAMES.contains(&name);
        assert!(!flagged, "{name} should be allowed");
    }
}

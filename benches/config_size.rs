//! Benchmark of config size (not a test; see BENCHMARKS.md): `speakap-sync validate` on a
//! committed config whose `business_units.map` holds N codes, written in one file (every code's
//! place is looked up) and split over two files (the two maps are merged). Each size runs three
//! times; the median is printed. The goal: 100,000 codes validate in under 2 s.
//!
//! Run: `cargo bench --bench config_size` (optionally `-- SIZE...`).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SYNC: &str = r#"apiVersion: speakap-sync/v1
kind: SyncConfig
network: "0123456789abcdef"
speakap: { url: "http://127.0.0.1:9" }
source:
  type: csv
  path: hr.csv
  columns: { xid: Employee ID, email: Email, locations: Location }
"#;

/// A MappingRules document mapping the codes `range` to business units.
fn business_units(range: std::ops::Range<usize>) -> String {
    let mut text =
        String::from("apiVersion: speakap-sync/v1\nkind: MappingRules\nbusiness_units:\n  map:\n");
    for code in range {
        let _ = writeln!(text, "    \"L{code:06}\": Store {}", code % 50);
    }
    text
}

/// A committed config repository with `size` codes in `files` files.
fn repository(dir: &Path, size: usize, files: usize) {
    std::fs::write(dir.join("sync.yaml"), SYNC).unwrap();
    let per_file = size.div_ceil(files);
    for file in 0..files {
        let range = file * per_file..((file + 1) * per_file).min(size);
        std::fs::write(
            dir.join(format!("units-{file}.yaml")),
            business_units(range),
        )
        .unwrap();
    }
    let repo = git2::Repository::init(dir).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = git2::Signature::now("Bench", "bench@example.com").unwrap();
    repo.commit(Some("HEAD"), &signature, &signature, "config", &tree, &[])
        .unwrap();
}

fn validate(dir: &Path) -> Duration {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_speakap-sync"))
        .args(["validate", "--repo"])
        .arg(dir)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![25_000, 50_000, 100_000, 200_000]
    } else {
        sizes
    };
    println!("| codes | files | YAML | validate (median of 3) |");
    println!("|---:|---:|---:|---:|");
    for &size in &sizes {
        for files in [1, 2] {
            let dir = tempfile::tempdir().unwrap();
            repository(dir.path(), size, files);
            let bytes: u64 = std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum();
            let mut times: Vec<Duration> = (0..3).map(|_| validate(dir.path())).collect();
            times.sort();
            println!(
                "| {size} | {files} | {:.1} MB | {:.2} s |",
                bytes as f64 / 1e6,
                times[1].as_secs_f64()
            );
        }
    }
}

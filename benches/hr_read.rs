//! Benchmark of the HR readers (not a test; see BENCHMARKS.md):
//!
//! 1. a 1,000,000-row CSV (~135 MB), its rows in employee-ID order and then in no order: a bare
//!    csv-crate parse (`ByteRecord`, every field touched) against our read + resolve to desired
//!    users, each in its own child process so that each phase's peak memory (VmHWM) is its own;
//!    with `BENCH_BASELINE` set to this benchmark built from another commit, that build's read +
//!    resolve too;
//! 2. a 100,000-row XLSX read.
//!
//! Each CSV phase runs five times, alternating, and the medians are compared.
//!
//! Run: `cargo bench --bench hr_read` (optionally `-- ROWS XLSX_ROWS`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod support;

use speakap_sync::config::{self, ConfigFiles};
use speakap_sync::hr::{self, CsvOptions, Layout};
use speakap_sync::rules::configured_columns;

const CONFIG: &str = r#"apiVersion: speakap-sync/v1
kind: SyncConfig
network: "0123456789abcdef"
speakap: { url: "http://127.0.0.1:9" }
source:
  type: csv
  path: hr.csv
  date_format: "%d-%m-%Y"
  columns:
    xid: Employee ID
    email: Email
    first_name: First name
    infix: Infix
    last_name: Last name
    job_title: Job title
    phone: Phone
    locations: Location
    departments: Department
    start_date: Start date
    end_date: End date
---
apiVersion: speakap-sync/v1
kind: MappingRules
business_units:
  map: { N: Store North, S: Store South, E: Store East, W: Store West }
departments:
  map: { "1": Bakery, "2": Office, "3": Logistics }
groups:
  - group: Managers
    when: { field: job_title, matches: "Manager$" }
roles:
  - role: admin
    when: { field: job_title, equals: HR Manager }
local_admins:
  - of: business_unit
    when: { field: job_title, equals: Store Manager }
"#;

fn config() -> config::Config {
    config::load(ConfigFiles::in_memory("bench", CONFIG)).expect("the benchmark config is valid")
}

const JOBS: [&str; 5] = [
    "Baker",
    "Store Manager",
    "Sales Assistant",
    "Assistant Store Manager",
    "Driver",
];

/// Writes the rows `order` gives, each row `i` the same whatever its place.
fn generate_csv(path: &Path, order: &[usize]) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "Employee ID;Email;First name;Infix;Last name;Job title;Phone;Location;Department;Start date;End date;Notes").unwrap();
    for &i in order {
        writeln!(
            out,
            "{};employee.{i}@bakkerij-example.nl;Firstname{};{};Lastname{};{};06{:08};{};{};{:02}-{:02}-20{:02};;\"Contract {}, reviewed\"",
            100000 + i,
            i % 997,
            if i % 3 == 0 { "van der" } else { "" },
            i % 1009,
            JOBS[i % JOBS.len()],
            i % 100_000_000,
            ["N", "S", "E|W", "W"][i % 4],
            1 + i % 3,
            1 + i % 28,
            1 + i % 12,
            10 + i % 15,
            i % 7,
        )
        .unwrap();
    }
}

/// `0..rows` in an order of no pattern (a Fisher-Yates shuffle driven by xorshift), the same
/// every run.
fn shuffled(rows: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows).collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..rows).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// Runs one phase in this process and prints `seconds peak_mib detail`.
fn phase(name: &str, path: &Path) {
    let started = Instant::now();
    let (seconds, detail) = match name {
        "bare" => {
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(b';')
                .from_path(path)
                .unwrap();
            let mut record = csv::ByteRecord::new();
            let (mut rows, mut bytes) = (0usize, 0usize);
            while reader.read_byte_record(&mut record).unwrap() {
                rows += 1;
                bytes += record.iter().map(<[u8]>::len).sum::<usize>();
            }
            (
                started.elapsed().as_secs_f64(),
                format!("{rows} rows, {bytes} field bytes"),
            )
        }
        "ours" => {
            let config = config();
            let layout = Layout::typed(configured_columns(&config.sync));
            let options = CsvOptions {
                delimiter: config::Delimiter::Auto,
                encoding: "windows-1252",
            };
            let snapshot = hr::csv::read(path, "hr.csv", options, layout).unwrap();
            let read = started.elapsed().as_secs_f64();
            let resolution =
                speakap_sync::resolve::resolve(&config, &snapshot, jiff::civil::date(2026, 6, 1));
            // Measured before the result is dropped: the command keeps it to plan with.
            let elapsed = started.elapsed().as_secs_f64();
            let detail = format!(
                "{} records, {} desired, {} skipped (read {read:.2} s)",
                snapshot.records.len(),
                resolution.desired.len(),
                resolution.skipped.len()
            );
            (elapsed, detail)
        }
        "xlsx" => {
            let config = config();
            let layout = Layout::typed(configured_columns(&config.sync));
            let snapshot = hr::excel::read(path, "hr.xlsx", None, "%d-%m-%Y", layout).unwrap();
            (
                started.elapsed().as_secs_f64(),
                format!("{} records", snapshot.records.len()),
            )
        }
        other => panic!("unknown phase {other}"),
    };
    println!("{seconds:.3} {:.0} {detail}", support::peak_mib("self"));
}

/// Runs phase `name` in a child process of `exe` (this benchmark, or another build of it).
fn in_child(exe: &Path, name: &str, path: &Path) -> (f64, f64, String) {
    let out = Command::new(exe)
        .args(["--phase", name])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().last().unwrap_or_default();
    let mut parts = line.splitn(3, ' ');
    let seconds = parts.next().unwrap().parse().unwrap();
    let peak = parts.next().unwrap().parse().unwrap();
    (seconds, peak, parts.next().unwrap_or_default().to_string())
}

/// How many times each CSV phase runs.
const RUNS: usize = 5;

/// The run with the median time.
fn median(mut runs: Vec<(f64, f64, String)>) -> (f64, f64, String) {
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    runs.swap_remove(runs.len() / 2)
}

fn generate_xlsx(path: &Path, rows: usize) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let header = [
        "Employee ID",
        "Email",
        "First name",
        "Infix",
        "Last name",
        "Job title",
        "Phone",
        "Location",
        "Department",
        "Start date",
        "End date",
    ];
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    let date = rust_xlsxwriter::Format::new().set_num_format("dd-mm-yyyy");
    for i in 0..rows {
        let r = i as u32 + 1;
        sheet.write_number(r, 0, (100000 + i) as f64).unwrap();
        sheet
            .write_string(r, 1, format!("employee.{i}@bakkerij-example.nl"))
            .unwrap();
        sheet
            .write_string(r, 2, format!("Firstname{}", i % 997))
            .unwrap();
        sheet
            .write_string(r, 4, format!("Lastname{}", i % 1009))
            .unwrap();
        sheet.write_string(r, 5, JOBS[i % JOBS.len()]).unwrap();
        sheet.write_string(r, 6, format!("06{:08}", i)).unwrap();
        sheet
            .write_string(r, 7, ["N", "S", "E|W", "W"][i % 4])
            .unwrap();
        sheet.write_number(r, 8, (1 + i % 3) as f64).unwrap();
        let day =
            rust_xlsxwriter::ExcelDateTime::from_ymd(2020, 1 + (i % 12) as u8, 1 + (i % 28) as u8)
                .unwrap();
        sheet.write_datetime_with_format(r, 9, day, &date).unwrap();
    }
    book.save(path).unwrap();
}

/// The bare parse, our read + resolve and the baseline's, five times each in turn, and their
/// medians against the budget.
fn compare_csv(this: &Path, baseline: Option<&Path>, csv_path: &Path, label: &str) {
    let size = std::fs::metadata(csv_path).unwrap().len() as f64 / 1e6;
    println!("{size:.0} MB CSV, rows {label}:");
    // Warm the page cache so every parse reads from memory.
    let _ = std::fs::read(csv_path).unwrap();
    // Alternated, and the median of each taken: the machine's speed drifts from run to run.
    let (mut bares, mut ourses, mut baselines) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        bares.push(in_child(this, "bare", csv_path));
        ourses.push(in_child(this, "ours", csv_path));
        if let Some(baseline) = baseline {
            baselines.push(in_child(baseline, "ours", csv_path));
        }
    }
    let runs = |all: &[(f64, f64, String)]| {
        all.iter()
            .map(|(s, _, _)| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("bare runs: {} s; ours: {} s", runs(&bares), runs(&ourses));
    let (bare_s, bare_mib, bare) = median(bares);
    let (ours_s, ours_mib, ours) = median(ourses);
    println!(
        "bare csv parse:         {bare_s:7.2} s  {:6.0} MB/s  peak {bare_mib:5.0} MiB  ({bare})",
        size / bare_s
    );
    println!(
        "our read + resolve:     {ours_s:7.2} s  {:6.0} MB/s  peak {ours_mib:5.0} MiB  ({ours})",
        size / ours_s
    );
    if !baselines.is_empty() {
        println!("baseline runs: {} s", runs(&baselines));
        let (base_s, base_mib, base) = median(baselines);
        println!(
            "baseline read + resolve:{base_s:7.2} s  {:6.0} MB/s  peak {base_mib:5.0} MiB  ({base})",
            size / base_s
        );
    }
    println!(
        "budget for these rows: at most 1.5 s: {}; at most 800 MiB: {}",
        if ours_s <= 1.5 { "met" } else { "NOT met" },
        if ours_mib <= 800.0 { "met" } else { "NOT met" }
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--phase") {
        phase(&args[1], &PathBuf::from(&args[2]));
        return;
    }
    // `cargo bench` passes `--bench`; the numbers are the optional row counts.
    let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let rows = numbers.first().copied().unwrap_or(1_000_000);
    let xlsx_rows = numbers.get(1).copied().unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();

    let this = std::env::current_exe().unwrap();
    let baseline = std::env::var_os("BENCH_BASELINE").map(PathBuf::from);
    let csv_path = dir.path().join("hr.csv");
    let in_id_order: Vec<usize> = (0..rows).collect();
    for (order, label) in [
        (in_id_order, "in ID order"),
        (shuffled(rows), "in no order"),
    ] {
        generate_csv(&csv_path, &order);
        compare_csv(&this, baseline.as_deref(), &csv_path, label);
    }
    std::fs::remove_file(&csv_path).unwrap();

    let xlsx_path = dir.path().join("hr.xlsx");
    let started = Instant::now();
    generate_xlsx(&xlsx_path, xlsx_rows);
    let size = std::fs::metadata(&xlsx_path).unwrap().len() as f64 / 1e6;
    println!(
        "generated {xlsx_rows} rows, {size:.1} MB XLSX in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (xlsx_s, xlsx_mib, xlsx) = in_child(&this, "xlsx", &xlsx_path);
    println!(
        "xlsx read:              {xlsx_s:7.2} s  peak {xlsx_mib:5.0} MiB  ({xlsx}); goal < 10 s: {}",
        if xlsx_s < 10.0 { "met" } else { "NOT met" }
    );
}

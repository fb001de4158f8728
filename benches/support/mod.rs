//! Shared by the benchmarks (a folder, so Cargo does not take it for a benchmark of its own).

/// Peak resident memory of a process (`"self"` or a PID), from /proc/PID/status (`VmHWM`).
pub fn peak_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

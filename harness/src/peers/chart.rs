//! The SVG chart the README embeds: per workload, one bar per client for
//! throughput (left) and client CPU per record (right). Hand-written SVG,
//! no plotting dependency.

use std::fmt::Write;

use super::PeerResult;

const ROW: f64 = 18.0;
const LABEL: f64 = 300.0;
const PANEL: f64 = 330.0;
const COLORS: [&str; 6] = [
    "#d9480f", "#1c7ed6", "#2f9e44", "#ae3ec9", "#f59f00", "#495057",
];

/// The chart of `results` (rows in their order; failed runs are left out).
pub fn svg(results: &[PeerResult]) -> String {
    let ok: Vec<&PeerResult> = results.iter().filter(|r| r.error.is_none()).collect();
    let mut workloads: Vec<&str> = Vec::new();
    let mut clients: Vec<&str> = Vec::new();
    for r in &ok {
        if !workloads.contains(&r.workload.as_str()) {
            workloads.push(&r.workload);
        }
        if !clients.contains(&r.client.as_str()) {
            clients.push(&r.client);
        }
    }
    let color = |client: &str| {
        let index = clients.iter().position(|c| *c == client).unwrap_or(0);
        COLORS[index % COLORS.len()]
    };
    let rows: usize = workloads
        .iter()
        .map(|w| ok.iter().filter(|r| r.workload == *w).count() + 1)
        .sum();
    let height = 60.0 + rows as f64 * ROW + clients.len() as f64 * ROW;
    let width = LABEL + 2.0 * PANEL + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="16" font-weight="bold">records/s (longer is better)</text><text x="{}" y="16" font-weight="bold">client CPU µs per record (shorter is better)</text>"#,
        LABEL,
        LABEL + PANEL + 20.0
    );
    let mut y = 30.0;
    for workload in &workloads {
        let rows: Vec<&&PeerResult> = ok.iter().filter(|r| r.workload == *workload).collect();
        let max_rate = rows.iter().map(|r| r.records_per_sec).fold(1.0, f64::max);
        let max_cpu = rows
            .iter()
            .map(|r| r.cpu_us_per_record)
            .fold(1e-9, f64::max);
        let _ = writeln!(
            out,
            r#"<text x="4" y="{}" font-weight="bold">{}</text>"#,
            y + 12.0,
            escape(workload)
        );
        y += ROW;
        for r in rows {
            let rate = r.records_per_sec / max_rate * (PANEL - 70.0);
            let cpu = r.cpu_us_per_record / max_cpu * (PANEL - 70.0);
            let _ = writeln!(
                out,
                r#"<text x="14" y="{ty}">{name}</text><rect x="{LABEL}" y="{y}" width="{rate:.1}" height="{h}" fill="{c}"/><text x="{rx:.1}" y="{ty}">{rv}</text><rect x="{cx}" y="{y}" width="{cpu:.1}" height="{h}" fill="{c}"/><text x="{cxx:.1}" y="{ty}">{cv:.2}</text>"#,
                ty = y + 12.0,
                name = escape(&r.client),
                h = ROW - 4.0,
                c = color(&r.client),
                rx = LABEL + rate + 4.0,
                rv = human(r.records_per_sec),
                cx = LABEL + PANEL + 20.0,
                cxx = LABEL + PANEL + 24.0 + cpu,
                cv = r.cpu_us_per_record,
            );
            y += ROW;
        }
    }
    let _ = writeln!(out, "</svg>");
    out
}

fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else {
        format!("{:.0} k", rate / 1e3)
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

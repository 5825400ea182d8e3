//! How read commands print: aligned text tables for people, JSON for programs.

use serde::Serialize;

/// `--output`: text for people (default) or JSON for programs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// Write `text` to stdout. When the reader has gone (`lattice get hosts | head`)
/// the program ends quietly, as Unix tools do, instead of panicking.
pub fn write(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Print `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    write(&format!("{}\n", serde_json::to_string_pretty(value)?));
    Ok(())
}

/// Print rows under headers, columns padded to their widest cell; the last column is
/// not padded so long messages do not drag trailing spaces.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    write(&table(headers, rows));
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                line.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A duration in milliseconds as `3d4h`, `2h5m`, `4m12s` or `9s`.
pub fn human_duration(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, s) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

pub use lattice_protocol::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec![
                "shop".to_string(),
                "1.0".to_string(),
                "deployed".to_string(),
            ],
            vec![
                "a".to_string(),
                "12.0.1".to_string(),
                "failed: why".to_string(),
            ],
        ];
        assert_eq!(
            table(&["NAME", "VERSION", "STATE"], &rows),
            "NAME  VERSION  STATE\nshop  1.0      deployed\na     12.0.1   failed: why\n"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(9_999), "9s");
        assert_eq!(human_duration(252_000), "4m12s");
        assert_eq!(human_duration(7_500_000), "2h5m");
        assert_eq!(human_duration(273_600_000), "3d4h");
    }
}

//! `yubin-bench plot`: a CSV of samples (first column the time in seconds, every other column
//! one series) drawn as a PNG, one small chart per series, so that a plateau or a slope is seen
//! at a glance (the soak run, docs/soak.md, writes such a CSV).
//!
//! The bitmap backend needs no system library; text is drawn with a TrueType font read at run
//! time (plotters' `ab_glyph` feature), e.g. Debian's fonts-dejavu-core.

use std::path::Path;

use anyhow::{Context, bail};
use plotters::prelude::*;
use plotters::style::FontStyle;

/// The font family name under which the TTF file is registered.
const FAMILY: &str = "sans-serif";
/// The colour of the vertical marks (warm-up end, thirds).
const MARK: RGBColor = RGBColor(230, 120, 40);

/// The samples of a CSV: column names and one row of numbers per line.
#[derive(Debug, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

/// Parses a CSV with a header line and numeric cells (no quoting: the soak's own output).
pub fn parse_csv(text: &str) -> anyhow::Result<Table> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().context("empty CSV")?;
    let columns: Vec<String> = header.split(',').map(|c| c.trim().to_string()).collect();
    if columns.len() < 2 {
        bail!("the CSV needs a time column and at least one series");
    }
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate() {
        let row = line
            .split(',')
            .map(|c| c.trim().parse::<f64>())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("line {}: not a number", n + 2))?;
        if row.len() != columns.len() {
            bail!(
                "line {}: {} cells, expected {}",
                n + 2,
                row.len(),
                columns.len()
            );
        }
        rows.push(row);
    }
    Ok(Table { columns, rows })
}

/// What to draw.
pub struct PlotConfig<'a> {
    pub csv: &'a Path,
    pub out: &'a Path,
    pub font: &'a Path,
    pub title: &'a str,
    /// Vertical lines at these fractions of the run (the soak's warm-up and thirds).
    pub marks: Vec<f64>,
}

/// Draws every series of the CSV in its own chart, three charts a row.
pub fn run(cfg: &PlotConfig) -> anyhow::Result<()> {
    let table = parse_csv(
        &std::fs::read_to_string(cfg.csv).with_context(|| cfg.csv.display().to_string())?,
    )?;
    if table.rows.is_empty() {
        bail!("{}: no samples", cfg.csv.display());
    }
    let font = std::fs::read(cfg.font).with_context(|| format!("font {}", cfg.font.display()))?;
    // plotters keeps registered fonts for the life of the process: leaking the one file this
    // short-lived command reads is what `register_font`'s `&'static` asks for.
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, font)
        .map_err(|_| anyhow::anyhow!("{}: not a TrueType/OpenType font", cfg.font.display()))?;

    let series = table.columns.len() - 1;
    let per_row = 3;
    let rows = series.div_ceil(per_row);
    let (w, h) = (1500u32, 60 + 300 * rows as u32);
    let root = BitMapBackend::new(cfg.out, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(cfg.title, (FAMILY, 28))?;
    let t_end = table.rows.last().map_or(1.0, |r| r[0]).max(1.0);
    for (i, area) in root
        .split_evenly((rows, per_row))
        .iter()
        .enumerate()
        .take(series)
    {
        let col = i + 1;
        let points: Vec<(f64, f64)> = table.rows.iter().map(|r| (r[0], r[col])).collect();
        let max = points.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        let min = points.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        // From zero, so that a flat line looks flat; a little headroom above the maximum.
        let (lo, hi) = (min.min(0.0), if max > 0.0 { max * 1.1 } else { 1.0 });
        let mut chart = ChartBuilder::on(area)
            .caption(&table.columns[col], (FAMILY, 20))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..t_end, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .label_style((FAMILY, 13))
            .y_label_formatter(&|v| short(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for &m in &cfg.marks {
            let x = t_end * m;
            chart.draw_series(LineSeries::new([(x, lo), (x, hi)], MARK.stroke_width(2)))?;
        }
        chart.draw_series(LineSeries::new(points, BLUE.stroke_width(2)))?;
    }
    root.present()
        .with_context(|| format!("writing {}", cfg.out.display()))?;
    Ok(())
}

/// An axis label without needless decimals: 43, 0.84, 5, 1200.
fn short(v: f64) -> String {
    if v.abs() >= 10.0 {
        return format!("{v:.0}");
    }
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_is_parsed_by_columns_and_bad_cells_are_refused() {
        let t = parse_csv("t_s,rss_mib\n0,10.5\n5,11\n").unwrap();
        assert_eq!(t.columns, ["t_s", "rss_mib"]);
        assert_eq!(t.rows, vec![vec![0.0, 10.5], vec![5.0, 11.0]]);
        assert!(
            parse_csv("t_s,rss\n0,x\n")
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
        assert!(parse_csv("t_s,rss\n0\n").is_err());
        assert!(parse_csv("t_s\n0\n").is_err());
        let labels = [
            short(43.2),
            short(0.836),
            short(0.0),
            short(5.0),
            short(2.5),
        ];
        assert_eq!(labels, ["43", "0.84", "0", "5", "2.5"]);
    }
}

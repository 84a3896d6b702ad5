//! Charts as inline SVG, rendered on the server: no script, no library, nothing fetched (the
//! console must work behind a firewall). Every value is also in the element's `data-value`
//! attribute and its `<title>` (the tooltip and what a screen reader says), so the numbers
//! can be read without looking at the picture.

use crate::account::html::escape;

/// One series of a bar chart: a CSS class (its colour in `admin.css`), a legend name and one
/// value per label.
pub struct Series<'a> {
    pub class: &'a str,
    pub name: &'a str,
    pub values: &'a [u64],
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
/// Room for the axis labels.
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 8.0;

/// A round number at or above `max` for the axis (1, 2, 5 × 10ⁿ), at least 1.
fn axis_max(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let v = step.saturating_mul(m);
            if v >= max {
                return v;
            }
        }
        if step > u64::MAX / 10 {
            return u64::MAX;
        }
        step *= 10;
    }
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// Grouped vertical bars: for each label, one bar per series side by side. `labels` are shown
/// under every `label_every`-th group (hours: every 6th). Every bar is drawn, zero included,
/// so a chart of 48 hours and two series always has 96 `<rect class=…>` bars.
pub fn grouped_bars(
    title: &str,
    labels: &[String],
    series: &[Series],
    label_every: usize,
) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0);
    let top = axis_max(max) as f64;
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let groups = labels.len().max(1) as f64;
    let group_w = plot_w / groups;
    let bar_w = (group_w * 0.8) / series.len().max(1) as f64;
    let mut s = svg_open(title);
    s.push_str(&axes(top as u64));
    for (g, label) in labels.iter().enumerate() {
        let x0 = LEFT + g as f64 * group_w + group_w * 0.1;
        for (i, ser) in series.iter().enumerate() {
            let v = ser.values.get(g).copied().unwrap_or(0);
            let h = v as f64 / top * plot_h;
            let x = x0 + i as f64 * bar_w;
            let y = TOP + plot_h - h;
            s.push_str(&format!(
                "<rect class=\"{class}\" data-value=\"{v}\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\"><title>{label}: {v} {name}</title></rect>\n",
                class = escape(ser.class),
                x = fmt(x),
                y = fmt(y),
                w = fmt(bar_w),
                h = fmt(h),
                label = escape(label),
                name = escape(ser.name),
            ));
        }
        if label_every > 0 && g % label_every == 0 {
            s.push_str(&format!(
                "<text class=\"label\" x=\"{}\" y=\"{}\">{}</text>\n",
                fmt(x0),
                fmt(HEIGHT - 6.0),
                escape(label)
            ));
        }
    }
    s.push_str(&legend(series.iter().map(|s| (s.class, s.name))));
    s.push_str("</svg>\n");
    s
}

/// A line through `points` (label, value), with a dot at each point.
pub fn line(title: &str, class: &str, points: &[(String, u64)], label_every: usize) -> String {
    let max = points.iter().map(|p| p.1).max().unwrap_or(0);
    let top = axis_max(max) as f64;
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let step = if points.len() > 1 {
        plot_w / (points.len() - 1) as f64
    } else {
        0.0
    };
    let xy: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .map(|(i, (_, v))| {
            (
                LEFT + i as f64 * step,
                TOP + plot_h - *v as f64 / top * plot_h,
            )
        })
        .collect();
    let mut s = svg_open(title);
    s.push_str(&axes(top as u64));
    if xy.len() > 1 {
        let path: Vec<String> = xy
            .iter()
            .map(|(x, y)| format!("{},{}", fmt(*x), fmt(*y)))
            .collect();
        s.push_str(&format!(
            "<polyline class=\"{}\" fill=\"none\" points=\"{}\"/>\n",
            escape(class),
            path.join(" ")
        ));
    }
    for (i, ((label, v), (x, y))) in points.iter().zip(&xy).enumerate() {
        s.push_str(&format!(
            "<circle class=\"{class}\" data-value=\"{v}\" cx=\"{x}\" cy=\"{y}\" r=\"3\"><title>{label}: {v}</title></circle>\n",
            class = escape(class),
            x = fmt(*x),
            y = fmt(*y),
            label = escape(label),
        ));
        if label_every > 0 && i % label_every == 0 {
            s.push_str(&format!(
                "<text class=\"label\" x=\"{}\" y=\"{}\">{}</text>\n",
                fmt(*x),
                fmt(HEIGHT - 6.0),
                escape(label)
            ));
        }
    }
    s.push_str("</svg>\n");
    s
}

/// One row of a horizontal bar chart: the label, the value, and an optional limit drawn as a
/// lighter bar behind it (storage against quota).
pub struct Row<'a> {
    pub label: &'a str,
    pub value: u64,
    pub limit: Option<u64>,
    /// The value as people read it (`1.5 MiB`).
    pub shown: String,
}

/// Horizontal bars, one per row, scaled to the largest value or limit.
pub fn horizontal_bars(title: &str, class: &str, rows: &[Row]) -> String {
    const ROW_H: f64 = 18.0;
    const LABEL_W: f64 = 240.0;
    let max = rows
        .iter()
        .map(|r| r.value.max(r.limit.unwrap_or(0)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let height = ROW_H * rows.len().max(1) as f64 + 4.0;
    let plot_w = WIDTH - LABEL_W - 120.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" viewBox=\"0 0 {WIDTH} {height}\" aria-label=\"{t}\"><title>{t}</title>\n",
        t = escape(title)
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 2.0 + i as f64 * ROW_H;
        s.push_str(&format!(
            "<text class=\"label\" x=\"0\" y=\"{}\">{}</text>\n",
            fmt(y + 13.0),
            escape(r.label)
        ));
        if let Some(l) = r.limit {
            s.push_str(&format!(
                "<rect class=\"limit\" data-value=\"{l}\" x=\"{LABEL_W}\" y=\"{}\" width=\"{}\" height=\"14\"/>\n",
                fmt(y),
                fmt(l as f64 / max * plot_w)
            ));
        }
        s.push_str(&format!(
            "<rect class=\"{class}\" data-value=\"{v}\" x=\"{LABEL_W}\" y=\"{y}\" width=\"{w}\" height=\"14\"><title>{label}: {shown}</title></rect>\n",
            class = escape(class),
            v = r.value,
            y = fmt(y),
            w = fmt(r.value as f64 / max * plot_w),
            label = escape(r.label),
            shown = escape(&r.shown),
        ));
        s.push_str(&format!(
            "<text class=\"label\" x=\"{}\" y=\"{}\">{}</text>\n",
            fmt(LABEL_W + plot_w + 6.0),
            fmt(y + 13.0),
            escape(&r.shown)
        ));
    }
    s.push_str("</svg>\n");
    s
}

fn svg_open(title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" aria-label=\"{t}\"><title>{t}</title>\n",
        t = escape(title)
    )
}

/// The y axis with its top value, and the x axis.
fn axes(top: u64) -> String {
    let bottom = HEIGHT - BOTTOM;
    format!(
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\"/>\n\
<line class=\"axis\" x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{WIDTH}\" y2=\"{bottom}\"/>\n\
<text class=\"label\" x=\"0\" y=\"{}\">{top}</text>\n<text class=\"label\" x=\"0\" y=\"{bottom}\">0</text>\n",
        TOP + 10.0
    )
}

fn legend<'a>(items: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = String::new();
    for (i, (class, name)) in items.enumerate() {
        let x = LEFT + 10.0 + i as f64 * 140.0;
        s.push_str(&format!(
            "<rect class=\"{c} key\" x=\"{x}\" y=\"{TOP}\" width=\"10\" height=\"10\"/><text class=\"label\" x=\"{tx}\" y=\"{ty}\">{n}</text>\n",
            c = escape(class),
            tx = x + 14.0,
            ty = TOP + 9.0,
            n = escape(name),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(s: &str, needle: &str) -> usize {
        s.matches(needle).count()
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(axis_max(0), 1);
        assert_eq!(axis_max(1), 1);
        assert_eq!(axis_max(3), 5);
        assert_eq!(axis_max(7), 10);
        assert_eq!(axis_max(11), 20);
        assert_eq!(axis_max(4999), 5000);
        assert_eq!(axis_max(u64::MAX), u64::MAX);
    }

    #[test]
    fn grouped_bars_draw_every_bar_with_its_value() {
        let labels: Vec<String> = (0..48).map(|h| format!("{h:02}:00")).collect();
        let mut d = vec![0u64; 48];
        d[47] = 3;
        let r = vec![1u64; 48];
        let svg = grouped_bars(
            "Mail per hour",
            &labels,
            &[
                Series {
                    class: "deliveries",
                    name: "delivered",
                    values: &d,
                },
                Series {
                    class: "rejections",
                    name: "rejected",
                    values: &r,
                },
            ],
            6,
        );
        assert_eq!(count(&svg, "<rect class=\"deliveries\" data-value="), 48);
        assert_eq!(
            count(&svg, "<rect class=\"rejections\" data-value=\"1\""),
            48
        );
        assert_eq!(count(&svg, "data-value=\"3\""), 1);
        // The tallest bar reaches the top of the plot (3 → axis 5: 3/5 of 168).
        assert!(svg.contains("height=\"100.8\""), "{svg}");
        assert_eq!(count(&svg, "<text class=\"label\" x="), 8 + 2 + 2);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
    }

    #[test]
    fn titles_and_labels_are_escaped() {
        let svg = grouped_bars(
            "<script>",
            &["<b>".to_string()],
            &[Series {
                class: "x\"",
                name: "&",
                values: &[1],
            }],
            1,
        );
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(svg.contains("&lt;script&gt;") && svg.contains("class=\"x&quot;\""));
    }

    #[test]
    fn a_line_has_one_dot_per_point() {
        let pts: Vec<(String, u64)> = (0..5).map(|i| (format!("{i}h"), i * 2)).collect();
        let svg = line("Queue", "queue", &pts, 2);
        assert_eq!(count(&svg, "<circle class=\"queue\""), 5);
        assert_eq!(count(&svg, "<polyline"), 1);
        assert!(svg.contains("data-value=\"8\""));
        // A single point: a dot, no line; none: an empty plot.
        assert_eq!(count(&line("Q", "q", &pts[..1], 1), "<polyline"), 0);
        assert_eq!(count(&line("Q", "q", &[], 1), "<circle"), 0);
    }

    #[test]
    fn horizontal_bars_scale_to_the_largest_limit() {
        let rows = [
            Row {
                label: "a@x.test",
                value: 50,
                limit: Some(100),
                shown: "50 B".into(),
            },
            Row {
                label: "b@x.test",
                value: 10,
                limit: None,
                shown: "10 B".into(),
            },
        ];
        let svg = horizontal_bars("Storage", "used", &rows);
        assert_eq!(count(&svg, "<rect class=\"used\""), 2);
        assert_eq!(count(&svg, "<rect class=\"limit\""), 1);
        // The plot is 360 wide: the limit 100 fills it, 50 fills half.
        assert!(
            svg.contains("data-value=\"100\" x=\"240\" y=\"2.0\" width=\"360.0\""),
            "{svg}"
        );
        assert!(
            svg.contains("data-value=\"50\" x=\"240\" y=\"2.0\" width=\"180.0\""),
            "{svg}"
        );
    }
}

//! The training charts' geometry — the series of a run, the scales, ticks and polylines — shared by the page's
//! live charts (`src/app/charts.rs`) and the SVG files `ajuste train` writes, so both draw the same figure.

use crate::head::EpochMetrics;
use crate::train::{RunHistory, TrainingReport};

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: &'static str,
    /// CSS class giving the stroke colour and dash, so both colour and pattern differ (the page's style/main.css;
    /// a standalone SVG file carries the same rules in its own `<style>`).
    pub class: &'static str,
    pub values: Vec<f32>,
}

pub const W: f32 = 420.0;
pub const H: f32 = 220.0;
pub const LEFT: f32 = 48.0;
pub const RIGHT: f32 = 12.0;
pub const TOP: f32 = 12.0;
pub const BOTTOM: f32 = 36.0;

/// Where everything of one chart goes, in the `0 0 W H` view box.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// Horizontal grid lines: y and their label.
    pub y_ticks: Vec<(f32, String)>,
    /// Epoch labels (from 1): x and the label.
    pub x_ticks: Vec<(f32, String)>,
    /// Each series' `points` attribute, in the order given.
    pub lines: Vec<String>,
    /// The marked epoch's x, and whether its label goes left of the line (near the right edge).
    pub marker: Option<(f32, bool)>,
}

/// A tick step of 1, 2 or 5 times a power of ten giving about `target` ticks.
fn nice_step(range: f32, target: f32) -> f32 {
    let raw = (range / target).max(f32::EPSILON);
    let magnitude = 10f32.powf(raw.log10().floor());
    let residual = raw / magnitude;
    let nice = if residual > 5.0 {
        10.0
    } else if residual > 2.0 {
        5.0
    } else if residual > 1.0 {
        2.0
    } else {
        1.0
    };
    nice * magnitude
}

fn format_tick(v: f32, step: f32) -> String {
    if step >= 1.0 {
        format!("{v:.0}")
    } else if step >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// `y_range`: fixed (accuracy 0..1) or `None` to fit the data from 0. `marker`: an epoch to mark (the best one,
/// whose model is kept).
pub fn layout(series: &[Series], y_range: Option<(f32, f32)>, marker: Option<usize>) -> Layout {
    let n = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let (y_min, y_max) = y_range.unwrap_or_else(|| {
        let max = series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0, f32::max);
        (0.0, if max > 0.0 { max * 1.05 } else { 1.0 })
    });
    let x_max = (n.max(2) - 1) as f32;
    let sx = |i: f32| LEFT + i / x_max * (W - LEFT - RIGHT);
    let sy = |v: f32| TOP + (1.0 - (v - y_min) / (y_max - y_min)) * (H - TOP - BOTTOM);

    let y_step = nice_step(y_max - y_min, 5.0);
    let y_ticks = (0..=((y_max - y_min) / y_step).floor() as usize)
        .map(|k| y_min + k as f32 * y_step)
        .map(|v| (sy(v), format_tick(v, y_step)))
        .collect();
    let x_step = nice_step(x_max.max(1.0), 6.0).max(1.0);
    let x_ticks = (0..=(x_max / x_step).floor() as usize)
        .map(|k| (k as f32 * x_step) as usize)
        .map(|i| (sx(i as f32), (i + 1).to_string()))
        .collect();
    let lines = series
        .iter()
        .map(|s| {
            s.values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{:.1},{:.1}", sx(i as f32), sy(v.clamp(y_min, y_max))))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    // Keep the label inside the plot when the best epoch is one of the last.
    let marker = marker
        .filter(|&m| m < n)
        .map(|m| (sx(m as f32), sx(m as f32) > W - 60.0));
    Layout {
        y_ticks,
        x_ticks,
        lines,
        marker,
    }
}

fn pair(history: &[EpochMetrics], names: [&'static str; 2], pick: fn(&EpochMetrics) -> (f32, f32)) -> Vec<Series> {
    vec![
        Series {
            name: names[0],
            class: "train",
            values: history.iter().map(|m| pick(m).0).collect(),
        },
        Series {
            name: names[1],
            class: "val",
            values: history.iter().map(|m| pick(m).1).collect(),
        },
    ]
}

/// A run's loss and accuracy series. `held_out`: whether the run had validation images; without them the
/// "validation" figures would be the training ones again, so only the training series are drawn.
pub fn run_series(run: &RunHistory, held_out: bool) -> (Vec<Series>, Vec<Series>) {
    let mut loss = pair(&run.history, ["training loss", "validation loss"], |m| {
        (m.train_loss, m.val_loss)
    });
    let mut accuracy = pair(&run.history, ["training accuracy", "validation accuracy"], |m| {
        (m.train_accuracy, m.val_accuracy)
    });
    if !held_out {
        loss.truncate(1);
        accuracy.truncate(1);
    }
    (loss, accuracy)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The colours of the page's charts, for a file opened on its own.
const STYLE: &str = ".grid{stroke:#e6e9ee}.axis{stroke:#8a939e}.tick,.axis-label{font:10px sans-serif;fill:#5b6470}\
.title{font:bold 12px sans-serif;fill:#1b1f24}.line{fill:none;stroke-width:2}.train{stroke:#1f4e79}\
.val{stroke:#c05621;stroke-dasharray:6 3}.marker{stroke:#2f855a;stroke-dasharray:2 3}";

/// One chart as a standalone SVG document: the page's figure, with its title and a legend below the plot.
pub fn svg(
    title: &str,
    y_label: &str,
    series: &[Series],
    y_range: Option<(f32, f32)>,
    marker: Option<usize>,
) -> String {
    let plot = layout(series, y_range, marker);
    let legend_h = 16.0 * series.len() as f32;
    let top = 18.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {}\" width=\"{W}\" height=\"{}\" role=\"img\" \
         aria-label=\"{t}\">\n<title>{t}</title>\n<style>{STYLE}</style>\n<rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>\n<text class=\"title\" x=\"{LEFT}\" y=\"13\">{t}</text>\n<g transform=\"translate(0 {top})\">\n",
        H + top + legend_h,
        H + top + legend_h,
        t = escape(title)
    );
    for (y, label) in &plot.y_ticks {
        out += &format!(
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/><text class=\"tick\" x=\"{}\" y=\"{}\" \
             text-anchor=\"end\">{label}</text>\n",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    out += &format!(
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{b}\"/><line class=\"axis\" x1=\"{LEFT}\" \
         x2=\"{r}\" y1=\"{b}\" y2=\"{b}\"/>\n",
        b = H - BOTTOM,
        r = W - RIGHT
    );
    for (x, label) in &plot.x_ticks {
        out += &format!(
            "<text class=\"tick\" x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{label}</text>\n",
            H - BOTTOM + 16.0
        );
    }
    let mid = (TOP + H - BOTTOM) / 2.0;
    out += &format!(
        "<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">epoch</text>\n<text class=\"axis-label\" \
         x=\"12\" y=\"{mid}\" text-anchor=\"middle\" transform=\"rotate(-90 12 {mid})\">{}</text>\n",
        (LEFT + W - RIGHT) / 2.0,
        H - 4.0,
        escape(y_label)
    );
    for (s, points) in series.iter().zip(&plot.lines) {
        out += &format!("<polyline class=\"line {}\" points=\"{points}\"/>\n", s.class);
    }
    if let Some((x, left)) = plot.marker {
        let (label_x, anchor) = if left { (x - 3.0, "end") } else { (x + 3.0, "start") };
        out += &format!(
            "<line class=\"marker\" x1=\"{x}\" x2=\"{x}\" y1=\"{TOP}\" y2=\"{}\"/><text class=\"tick\" x=\"{label_x}\" \
             y=\"{}\" text-anchor=\"{anchor}\">best</text>\n",
            H - BOTTOM,
            TOP + 10.0
        );
    }
    for (k, s) in series.iter().enumerate() {
        let y = H + 10.0 + 16.0 * k as f32;
        let last = s.values.last().map_or_else(|| "–".to_string(), |v| format!("{v:.3}"));
        out += &format!(
            "<line class=\"line {}\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/><text class=\"tick\" x=\"{}\" \
             y=\"{}\">{}: {last}</text>\n",
            s.class,
            LEFT + 24.0,
            LEFT + 30.0,
            y + 4.0,
            escape(s.name)
        );
    }
    out + "</g>\n</svg>\n"
}

/// The charts of every run of a training, as the page shows them: `(file name, SVG)`, a loss and an accuracy
/// chart per run (`head-loss.svg`, `lora-accuracy.svg`, …), the kept run's titled "(kept)".
pub fn report_svgs(report: &TrainingReport) -> Vec<(String, String)> {
    let held_out = report.num_val > 0;
    let mut files = Vec::new();
    for run in &report.runs {
        let (loss, accuracy) = run_series(run, held_out);
        let best = run.best().map(|m| m.epoch);
        let kept = if run.mode == report.mode { " (kept)" } else { "" };
        let name = run.mode.name();
        let title = |what: &str| format!("{}{kept}: {what}", run.mode.label());
        files.push((
            format!("{name}-loss.svg"),
            svg(&title("loss"), "cross-entropy", &loss, None, best),
        ));
        files.push((
            format!("{name}-accuracy.svg"),
            svg(&title("accuracy"), "accuracy", &accuracy, Some((0.0, 1.0)), best),
        ));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f32]) -> Vec<Series> {
        vec![Series {
            name: "training loss",
            class: "train",
            values: values.to_vec(),
        }]
    }

    #[test]
    fn a_series_spans_the_plot_from_zero_to_its_maximum() {
        let plot = layout(&series(&[2.0, 1.0, 0.5]), None, Some(1));
        let points: Vec<(f32, f32)> = plot.lines[0]
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(points.len(), 3);
        assert_eq!(points[0].0, LEFT);
        assert_eq!(points[2].0, W - RIGHT);
        // The maximum sits just below the top (5 % headroom); loss 0 would sit on the x axis.
        assert!(points[0].1 > TOP && points[0].1 < TOP + 10.0, "{points:?}");
        assert!(points[1].1 > points[0].1 && points[2].1 > points[1].1);
        assert_eq!(plot.marker, Some(((LEFT + W - RIGHT) / 2.0, false)));
        assert_eq!(plot.x_ticks.first().map(|t| t.1.as_str()), Some("1"));
    }

    #[test]
    fn a_standalone_svg_is_well_formed_and_escapes_its_text() {
        let doc = svg("Head & LoRA <kept>", "loss", &series(&[1.0, 0.5]), None, None);
        assert!(doc.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(doc.contains("Head &amp; LoRA &lt;kept&gt;"));
        assert_eq!(doc.matches("<polyline").count(), 1);
        assert!(doc.contains("training loss: 0.500"));
        // Every element opened is closed: the file opens in a browser or an image viewer.
        assert_eq!(doc.matches("<svg").count(), doc.matches("</svg>").count());
        assert_eq!(doc.matches("<g ").count(), doc.matches("</g>").count());
    }
}

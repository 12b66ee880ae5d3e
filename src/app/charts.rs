//! Line charts in SVG with axes, ticks and a legend, redrawn from signals every epoch.

use leptos::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: &'static str,
    /// CSS class giving the stroke colour and dash (see style/main.css), so both colour and pattern differ.
    pub class: &'static str,
    pub values: Vec<f32>,
}

const W: f32 = 420.0;
const H: f32 = 220.0;
const LEFT: f32 = 48.0;
const RIGHT: f32 = 12.0;
const TOP: f32 = 12.0;
const BOTTOM: f32 = 36.0;

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

/// `y_range`: fixed (accuracy 0..1) or `None` to fit the data from 0.
/// `marker`: an epoch to mark (the best one, whose head is kept).
#[component]
pub fn LineChart(
    title: &'static str,
    y_label: &'static str,
    #[prop(into)] series: Signal<Vec<Series>>,
    y_range: Option<(f32, f32)>,
    #[prop(into)] marker: Signal<Option<usize>>,
) -> impl IntoView {
    let plot = move || {
        let series = series.get();
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
        let sx = move |i: f32| LEFT + i / x_max * (W - LEFT - RIGHT);
        let sy = move |v: f32| TOP + (1.0 - (v - y_min) / (y_max - y_min)) * (H - TOP - BOTTOM);

        let y_step = nice_step(y_max - y_min, 5.0);
        let y_ticks: Vec<f32> = (0..=((y_max - y_min) / y_step).floor() as usize)
            .map(|k| y_min + k as f32 * y_step)
            .collect();
        let x_step = nice_step(x_max.max(1.0), 6.0).max(1.0);
        let x_ticks: Vec<usize> = (0..=(x_max / x_step).floor() as usize)
            .map(|k| (k as f32 * x_step) as usize)
            .collect();

        let grid = y_ticks
            .into_iter()
            .map(|v| {
                let y = sy(v);
                view! {
                    <line class="grid" x1=LEFT x2=W - RIGHT y1=y y2=y />
                    <text class="tick" x=LEFT - 6.0 y=y + 4.0 text-anchor="end">{format_tick(v, y_step)}</text>
                }
            })
            .collect_view();
        let xt = x_ticks
            .into_iter()
            .map(|i| {
                let x = sx(i as f32);
                view! { <text class="tick" x=x y=H - BOTTOM + 16.0 text-anchor="middle">{(i + 1).to_string()}</text> }
            })
            .collect_view();
        let lines = series
            .iter()
            .map(|s| {
                let points = s
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| format!("{:.1},{:.1}", sx(i as f32), sy(v.clamp(y_min, y_max))))
                    .collect::<Vec<_>>()
                    .join(" ");
                view! { <polyline class=format!("line {}", s.class) points=points /> }
            })
            .collect_view();
        let mark = marker.get().filter(|&m| m < n).map(|m| {
            let x = sx(m as f32);
            // Keep the label inside the plot when the best epoch is one of the last.
            let (label_x, anchor) = if x > W - 60.0 {
                (x - 3.0, "end")
            } else {
                (x + 3.0, "start")
            };
            view! {
                <line class="marker" x1=x x2=x y1=TOP y2=H - BOTTOM />
                <text class="tick" x=label_x y=TOP + 10.0 text-anchor=anchor>"best"</text>
            }
        });
        view! {
            {grid}
            <line class="axis" x1=LEFT x2=LEFT y1=TOP y2=H - BOTTOM />
            <line class="axis" x1=LEFT x2=W - RIGHT y1=H - BOTTOM y2=H - BOTTOM />
            {xt}
            <text class="axis-label" x=(LEFT + W - RIGHT) / 2.0 y=H - 4.0 text-anchor="middle">"epoch"</text>
            <text class="axis-label" x=12.0 y=(TOP + H - BOTTOM) / 2.0 text-anchor="middle"
                transform=format!("rotate(-90 12 {})", (TOP + H - BOTTOM) / 2.0)>{y_label}</text>
            {lines}
            {mark}
        }
    };
    let legend = move || {
        series
            .get()
            .into_iter()
            .map(|s| {
                let last = s.values.last().map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into());
                view! {
                    <li><svg class="swatch" width="24" height="10" aria-hidden="true">
                        <line class=format!("line {}", s.class) x1="0" x2="24" y1="5" y2="5" />
                    </svg>{s.name}": "{last}</li>
                }
            })
            .collect_view()
    };
    view! {
        <figure class="chart">
            <figcaption>{title}</figcaption>
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=title>{plot}</svg>
            <ul class="legend">{legend}</ul>
        </figure>
    }
}

//! Line charts in SVG with axes, ticks and a legend, redrawn from signals every epoch; the geometry is the core's
//! (`ajuste::chart`), which also draws the charts `ajuste train` writes.

use ajuste::chart::{BOTTOM, H, LEFT, RIGHT, Series, TOP, W, layout};
use leptos::prelude::*;

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
        let plot = layout(&series, y_range, marker.get());
        let grid = plot
            .y_ticks
            .into_iter()
            .map(|(y, label)| {
                view! {
                    <line class="grid" x1=LEFT x2=W - RIGHT y1=y y2=y />
                    <text class="tick" x=LEFT - 6.0 y=y + 4.0 text-anchor="end">{label}</text>
                }
            })
            .collect_view();
        let xt = plot
            .x_ticks
            .into_iter()
            .map(|(x, label)| {
                view! { <text class="tick" x=x y=H - BOTTOM + 16.0 text-anchor="middle">{label}</text> }
            })
            .collect_view();
        let lines = series
            .iter()
            .zip(plot.lines)
            .map(|(s, points)| view! { <polyline class=format!("line {}", s.class) points=points /> })
            .collect_view();
        let mark = plot.marker.map(|(x, left)| {
            let (label_x, anchor) = if left { (x - 3.0, "end") } else { (x + 3.0, "start") };
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

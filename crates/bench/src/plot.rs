//! Latency over time as an SVG, one row per client, errors in red.
//!
//! Written by hand: a few hundred circles and crosses need no plotting
//! library. Every row shares one time axis and one latency scale, so rows
//! compare at a glance.

use std::fmt::Write as _;
use std::time::Duration;

use crate::race::Outcome;

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 215.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 70.0;
const ROW: f64 = 120.0;
const GAP: f64 = 16.0;
const BOTTOM: f64 = 50.0;

/// Draws `outcomes` as an SVG document titled `title`.
pub(crate) fn svg(title: &str, outcomes: &[Outcome]) -> String {
    let end = outcomes
        .iter()
        .flat_map(|o| o.samples.iter().map(|s| s.at + s.latency))
        .max()
        .unwrap_or(Duration::ZERO);
    let end = end.as_secs_f64().max(0.001);
    let x_step = nice(end / 8.0);
    let x_ticks = (end / x_step).ceil().max(1.0) as u32;
    let x_max = x_step * f64::from(x_ticks);
    let slowest = outcomes
        .iter()
        .flat_map(|o| o.samples.iter().map(|s| s.latency))
        .max()
        .unwrap_or(Duration::ZERO);
    let y_max = nice((slowest.as_secs_f64() * 1e3).max(0.1));
    let plot_w = WIDTH - LEFT - RIGHT;
    let height = TOP + outcomes.len() as f64 * (ROW + GAP) + BOTTOM;
    let x = |t: f64| LEFT + t / x_max * plot_w;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>
<circle cx="{}" cy="44" r="3" fill="#3b6fb6" fill-opacity="0.6"/><text x="{}" y="48">request ok</text>
<path d="M{} 39 l10 10 m0 -10 l-10 10" stroke="#d62728" stroke-width="2"/><text x="{}" y="48">request failed</text>"##,
        escape(title),
        LEFT + 5.0,
        LEFT + 14.0,
        LEFT + 100.0,
        LEFT + 116.0,
    );

    for (row, outcome) in outcomes.iter().enumerate() {
        let top = TOP + row as f64 * (ROW + GAP);
        let bottom = top + ROW;
        let y = |ms: f64| bottom - (ms / y_max).min(1.0) * ROW;
        let errors = outcome.samples.iter().filter(|s| s.error.is_some()).count();
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{ROW}" fill="#f6f6f6" stroke="#999999"/>
<text x="10" y="{}" font-weight="bold">{}</text>
<text x="10" y="{}" fill="{}">{} errors / {} requests</text>
<text x="{}" y="{}" text-anchor="end">{}</text>
<text x="{}" y="{}" text-anchor="end">{}</text>
<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#dddddd"/>
<text x="{}" y="{}" text-anchor="end">0</text>"##,
            top + 20.0,
            escape(&outcome.contender.label),
            top + 38.0,
            if errors > 0 { "#d62728" } else { "#2a7a2a" },
            errors,
            outcome.samples.len(),
            LEFT - 4.0,
            top + 10.0,
            format_tick(y_max),
            LEFT - 4.0,
            top + ROW / 2.0 + 4.0,
            format_tick(y_max / 2.0),
            top + ROW / 2.0,
            LEFT + plot_w,
            top + ROW / 2.0,
            LEFT - 4.0,
            bottom,
        );
        for sample in outcome.samples.iter().filter(|s| s.error.is_none()) {
            let _ = writeln!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="2" fill="#3b6fb6" fill-opacity="0.6"/>"##,
                x(sample.at.as_secs_f64()),
                y(sample.latency.as_secs_f64() * 1e3),
            );
        }
        for sample in outcome.samples.iter().filter(|s| s.error.is_some()) {
            let _ = writeln!(
                out,
                r##"<path d="M{:.1} {:.1} l8 8 m0 -8 l-8 8" stroke="#d62728" stroke-width="2"><title>{}</title></path>"##,
                x(sample.at.as_secs_f64()) - 4.0,
                y(sample.latency.as_secs_f64() * 1e3) - 4.0,
                escape(sample.error.as_deref().unwrap_or_default()),
            );
        }
    }

    let axis_y = TOP + outcomes.len() as f64 * (ROW + GAP) - GAP;
    for i in 0..=x_ticks {
        let t = x_step * f64::from(i);
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{axis_y}" x2="{0:.1}" y2="{1}" stroke="#999999"/><text x="{0:.1}" y="{2}" text-anchor="middle">{3}</text>"##,
            x(t),
            axis_y + 5.0,
            axis_y + 18.0,
            format_tick(t),
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">time since start (s)</text>
<text x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">latency (ms)</text>
</svg>"#,
        LEFT + plot_w / 2.0,
        axis_y + 38.0,
        LEFT - 32.0,
        TOP + ROW / 2.0,
        LEFT - 32.0,
        TOP + ROW / 2.0,
    );
    out
}

/// The smallest 1, 2 or 5 times a power of ten that is at least `value`.
fn nice(value: f64) -> f64 {
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&v| v >= value)
        .unwrap_or(10.0 * magnitude)
}

fn format_tick(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Escapes text for XML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_rounds_up_to_one_two_or_five() {
        assert_eq!(nice(0.7), 1.0);
        assert_eq!(nice(1.3), 2.0);
        assert_eq!(nice(3.0), 5.0);
        assert_eq!(nice(7.5), 10.0);
        assert_eq!(nice(120.0), 200.0);
    }

    #[test]
    fn ticks_drop_needless_decimals() {
        assert_eq!(format_tick(10.0), "10");
        assert_eq!(format_tick(0.05), "0.05");
        assert_eq!(format_tick(0.1 + 0.2), "0.3");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}

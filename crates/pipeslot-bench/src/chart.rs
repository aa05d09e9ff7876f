//! The chart: four panels of horizontal bars (and one of lines), drawn as
//! SVG with `plotters`:
//! round-trip latency per transport (pinned and unpinned), bulk 1 MiB
//! throughput, small-message rate, and aggregate round trips per second as
//! clients grow.

use std::io;
use std::path::Path;

use plotters::prelude::*;

use crate::report::{Report, Row};

const PINNED: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const UNPINNED: RGBColor = RGBColor(0x9e, 0xc8, 0xe6);
const PIPESLOT: RGBColor = RGBColor(0xd6, 0x4f, 0x1c);
const OTHER: RGBColor = RGBColor(0x7f, 0x7f, 0x7f);

type Fail = Box<dyn std::error::Error>;

/// One bar series: its legend, colour and a value per label.
struct Series {
    name: String,
    color: RGBColor,
    values: Vec<Option<f64>>,
}

/// Draws the report's chart to `path`.
pub(crate) fn write_svg(report: &Report, path: &Path) -> io::Result<()> {
    draw(report, path).map_err(|e| io::Error::other(format!("drawing {}: {e}", path.display())))
}

fn draw(report: &Report, path: &Path) -> Result<(), Fail> {
    let root = SVGBackend::new(path, (1400, 1000)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "pipeslot vs raw Unix sockets and peers — {} run, median of {} runs, {}",
        report.mode, report.runs, report.machine.cpu
    );
    let root = root.titled(&title, ("sans-serif", 20))?;
    let panels = root.split_evenly((2, 2));

    // Round trips: one label per case, pinned and unpinned bars.
    let rtt: Vec<&Row> = rows(report, "rtt", "");
    let labels = distinct(rtt.iter().map(|r| r.case.clone()));
    let series = ["pinned", "unpinned"]
        .iter()
        .map(|p| Series {
            name: (*p).to_owned(),
            color: if *p == "pinned" { PINNED } else { UNPINNED },
            values: labels.iter().map(|c| value(&rtt, c, &format!("64 B {p}"))).collect(),
        })
        .filter(|s| s.values.iter().any(Option::is_some))
        .collect::<Vec<_>>();
    bars(
        &panels[0],
        "64 B round trip, median (µs, lower is better)",
        &labels,
        &series,
    )?;

    // Bulk 1 MiB and small messages: one bar per case.
    let bulk = rows(report, "bulk", "1 MiB");
    single(
        &panels[1],
        "one-way 1 MiB messages (GiB/s, higher is better)",
        &bulk,
        1.0,
    )?;
    let small = rows(report, "small", "");
    single(
        &panels[2],
        "64 B one-way messages (M msg/s, higher is better)",
        &small,
        1e-6,
    )?;
    scaling(&panels[3], report)?;
    root.present()?;
    Ok(())
}

fn rows<'a>(report: &'a Report, workload: &str, variant: &str) -> Vec<&'a Row> {
    report
        .rows
        .iter()
        .filter(|r| r.workload == workload && r.variant.contains(variant) && r.median.is_finite())
        .collect()
}

fn distinct(it: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for s in it {
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

fn value(rows: &[&Row], case: &str, variant: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.case == case && r.variant == variant)
        .map(|r| r.median)
}

fn single<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    rows: &[&Row],
    scale: f64,
) -> Result<(), Fail>
where
    DB::ErrorType: 'static,
{
    let labels: Vec<String> = rows.iter().map(|r| r.case.clone()).collect();
    let series = labels
        .iter()
        .map(|l| Series {
            name: String::new(),
            color: if l.starts_with("pipeslot") { PIPESLOT } else { OTHER },
            values: rows
                .iter()
                .map(|r| (r.case == *l).then_some(r.median * scale))
                .collect(),
        })
        .collect::<Vec<_>>();
    bars(area, title, &labels, &series)
}

/// Horizontal bars, one row per label (first at the top), one bar per
/// series that has a value there.
fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    labels: &[String],
    series: &[Series],
) -> Result<(), Fail>
where
    DB::ErrorType: 'static,
{
    let n = labels.len().max(1);
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(190)
        .build_cartesian_2d(0.0..(max * 1.15).max(1e-9), -0.5..(n as f64 - 0.5))?;
    let label_of = |y: &f64| {
        let i = y.round();
        if (y - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        let i = n - 1 - i as usize;
        labels.get(i).cloned().unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .y_labels(n)
        .y_label_formatter(&label_of)
        .x_labels(6)
        .draw()?;
    let present: Vec<&Series> = series.iter().collect();
    let per_row = |i: usize| {
        present
            .iter()
            .filter(|s| s.values.get(i).copied().flatten().is_some())
            .count()
    };
    for i in 0..labels.len() {
        let k = per_row(i).max(1);
        let y0 = (n - 1 - i) as f64 - 0.4;
        let h = 0.8 / k as f64;
        let mut slot = 0;
        for s in &present {
            let Some(v) = s.values.get(i).copied().flatten() else {
                continue;
            };
            let top = y0 + h * (slot as f64 + 1.0);
            let bottom = y0 + h * slot as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, bottom + 0.02), (v, top - 0.02)],
                s.color.filled(),
            )))?;
            let tag = if s.name.is_empty() {
                format!("{v:.2}")
            } else {
                format!("{v:.1} {}", s.name)
            };
            chart.draw_series(std::iter::once(Text::new(
                tag,
                (v + max * 0.01, (top + bottom) / 2.0 + 0.1),
                ("sans-serif", 11),
            )))?;
            slot += 1;
        }
    }
    Ok(())
}

/// Aggregate round trips per second (closed loop) against client count.
fn scaling<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, report: &Report) -> Result<(), Fail>
where
    DB::ErrorType: 'static,
{
    let rows: Vec<&Row> = rows(report, "instances", "closed loop");
    let counts = distinct(rows.iter().map(|r| r.variant.clone()));
    let max = rows.iter().map(|r| r.median).fold(0.0f64, f64::max) / 1e3;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "round trips/s with N clients, closed loop (k/s, higher is better)",
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.2..(counts.len().max(1) as f64 - 0.8), 0.0..(max * 1.15).max(1e-9))?;
    let label_of = |x: &f64| {
        let i = x.round();
        if (x - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        counts
            .get(i as usize)
            .map(|v| v.split(" clients").next().unwrap_or("").trim().to_owned() + " clients")
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_labels(counts.len().max(1))
        .x_label_formatter(&label_of)
        .draw()?;
    for (case, color) in [("pipeslot", PIPESLOT), ("unix-stream", OTHER)] {
        let pts: Vec<(f64, f64)> = counts
            .iter()
            .enumerate()
            .filter_map(|(i, c)| value(&rows, case, c).map(|v| (i as f64, v / 1e3)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(case)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

//! The figures of `residue reproduce` and `residue tradeoff`, as SVG and
//! PNG (plotters; text in the PNGs drawn with an embedded font, so no
//! system font library is needed): accuracy against cost with the Pareto
//! front, and the per-step level and bootstrap timelines of the compiled
//! plans.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::Record;

/// Liberation Sans (SIL Open Font License 1.1; `crates/cli/assets/fonts`).
const FONT: &[u8] = include_bytes!("../../../assets/fonts/LiberationSans-Regular.ttf");
const FAMILY: &str = "sans-serif";

/// Registers the embedded font as plotters' `sans-serif` (once).
pub fn register_font() -> Result<()> {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ONCE
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the embedded plot font could not be read"))
    }
}

/// One plan step, for the timeline.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Level it runs at.
    pub level_in: u32,
    /// Level of its result.
    pub level_out: u32,
    /// Whether its result is bootstrapped.
    pub bootstrap: bool,
    /// Level its consumers see.
    pub level_after: u32,
    /// A skip addition.
    pub skip: bool,
}

/// One model's compiled plan, for the timeline.
pub struct Timeline {
    /// Model stem.
    pub model: String,
    /// Skip structure.
    pub structure: String,
    /// Parameter set.
    pub params: String,
    /// Placement.
    pub placement: String,
    /// Levels after a bootstrap.
    pub l_eff: u32,
    /// Its steps.
    pub steps: Vec<Step>,
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a plot: {e}")
}

/// Colours by family, fixed so every figure agrees.
fn family_color(structure: &str) -> RGBColor {
    match structure {
        "resnet" => RGBColor(214, 39, 40),
        "chain" => RGBColor(31, 119, 180),
        "shared-source" => RGBColor(44, 160, 44),
        _ => RGBColor(148, 103, 189),
    }
}

/// The family's name in a legend.
fn family_name(structure: &str) -> &str {
    match structure {
        "resnet" => "ResNet (mid-term skips)",
        "chain" => "Dirac (no skips)",
        "shared-source" => "Dirac + shared-source skips",
        other => other,
    }
}

/// Indices of the records no other record beats on both axes (lower or
/// equal latency and higher or equal accuracy, one of them strictly), by
/// latency.
pub fn pareto(points: &[(f64, f64)]) -> Vec<usize> {
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| {
            let (xi, yi) = points[i];
            !points
                .iter()
                .any(|&(x, y)| x <= xi && y >= yi && (x < xi || y > yi))
        })
        .collect();
    front.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0));
    front.dedup_by(|a, b| points[*a] == points[*b]);
    front
}

/// One point of an accuracy figure.
pub struct Point {
    /// Cost (s).
    pub x: f64,
    /// Accuracy (%).
    pub y: f64,
    /// Skip structure (`resnet`, `chain`, `shared-source`): colour and
    /// legend.
    pub structure: String,
    /// Its label beside the point.
    pub label: String,
    /// Drawn as a triangle (greedy placement) instead of a dot.
    pub triangle: bool,
}

/// What an accuracy figure's axes and family lines show.
pub struct Axes<'a> {
    /// Title.
    pub title: &'a str,
    /// The x axis's description.
    pub x_desc: &'a str,
    /// The y axis's description.
    pub y_desc: &'a str,
    /// The x axis starts at 0 (else it spans the points with a margin).
    pub x_from_zero: bool,
    /// Each family's line joins only its own Pareto front (its best
    /// accuracy for the cost), not all its points.
    pub family_front_only: bool,
}

fn draw_accuracy<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    records: &[Record],
    title: &str,
) -> Result<()> {
    let several_sets = records.iter().any(|r| r.params != records[0].params);
    let points: Vec<Point> = records
        .iter()
        .map(|r| {
            let mut label = r.model.clone();
            if r.placement == "greedy" {
                label.push_str(" (greedy)");
            }
            if several_sets {
                label = format!("{label} @ {}", r.params);
            }
            Point {
                x: r.latency_s,
                y: 100.0 * r.accuracy_he,
                structure: r.structure.clone(),
                label,
                triangle: r.placement == "greedy",
            }
        })
        .collect();
    let axes = Axes {
        title,
        x_desc: "encrypted latency per image (s, measured)",
        y_desc: "encrypted accuracy (%)",
        x_from_zero: true,
        family_front_only: false,
    };
    draw_scatter(root, &points, &axes)
}

/// The line each point's label goes on (0 = just above the point, each
/// further line 15 px higher), so that labels are not drawn over each other
/// or over another point's marker. `centers` are the points in pixels,
/// `chars` their labels' lengths. Each label, in order, takes the lowest
/// line where its box (about 6.5 px per character at the figure's 13-px
/// font, 13 px high, 8 px right of the point) meets no earlier label and no
/// other marker (rings included: 10 px around a point); line 0 if none of
/// the first 40 is free.
fn label_rows(centers: &[(i32, i32)], chars: &[usize]) -> Vec<i32> {
    type Boxed = (i32, i32, i32, i32); // x0, x1, y0, y1
    let overlaps = |a: Boxed, b: Boxed| a.0 < b.1 && b.0 < a.1 && a.2 < b.3 && b.2 < a.3;
    let label_box = |(px, py): (i32, i32), n: usize, row: i32| {
        let y0 = py - 18 - 15 * row;
        (px + 8, px + 8 + (6.5 * n as f64).ceil() as i32, y0, y0 + 13)
    };
    let mut placed: Vec<Boxed> = Vec::new();
    let mut rows = Vec::with_capacity(centers.len());
    for (i, (&c, &n)) in centers.iter().zip(chars).enumerate() {
        let markers = centers
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, &(mx, my))| (mx - 10, mx + 10, my - 10, my + 10));
        let obstacles: Vec<Boxed> = placed.iter().copied().chain(markers).collect();
        let row = (0..40)
            .find(|&r| {
                let b = label_box(c, n, r);
                !obstacles.iter().any(|&o| overlaps(b, o))
            })
            .unwrap_or(0);
        placed.push(label_box(c, n, row));
        rows.push(row);
    }
    rows
}

/// Accuracy against cost: a line per family, the overall Pareto front
/// dashed and ringed, every point labelled.
pub fn draw_scatter<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    points: &[Point],
    axes: &Axes<'_>,
) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    if points.is_empty() {
        return Err(anyhow!("no points to plot"));
    }
    let pts: Vec<(f64, f64)> = points.iter().map(|p| (p.x, p.y)).collect();
    let x_hi = pts.iter().map(|p| p.0).fold(0.0, f64::max).max(1e-3);
    let (x_min, x_max) = if axes.x_from_zero {
        (0.0, x_hi * 1.25)
    } else {
        let x_lo = pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let pad = ((x_hi - x_lo) * 0.25).max(0.05 * x_hi);
        ((x_lo - pad).max(0.0), x_hi + pad)
    };
    let y_lo = pts.iter().map(|p| p.1).fold(100.0, f64::min);
    let y_hi = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    let y_min = ((y_lo - 5.0) / 5.0).floor().max(0.0) * 5.0;
    let y_max = (y_hi + 3.0).min(101.0);
    let mut chart = ChartBuilder::on(root)
        .caption(axes.title, (FAMILY, 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x_min..x_max, y_min..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .light_line_style(RGBColor(240, 240, 240))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .draw()
        .map_err(err)?;
    let mut families: Vec<&str> = Vec::new();
    for p in points {
        if !families.contains(&p.structure.as_str()) {
            families.push(&p.structure);
        }
    }
    for fam in families {
        let color = family_color(fam);
        let own: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.structure == fam)
            .map(|p| (p.x, p.y))
            .collect();
        let mut curve: Vec<(f64, f64)> = if axes.family_front_only {
            pareto(&own).into_iter().map(|i| own[i]).collect()
        } else {
            own.clone()
        };
        curve.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(curve, color.stroke_width(2)))
            .map_err(err)?
            .label(family_name(fam))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        for (p, &q) in points.iter().zip(&pts).filter(|(p, _)| p.structure == fam) {
            if p.triangle {
                chart
                    .draw_series(std::iter::once(TriangleMarker::new(q, 7, color.filled())))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(std::iter::once(Circle::new(q, 5, color.filled())))
                    .map_err(err)?;
            }
        }
    }
    let front = pareto(&pts);
    let step: Vec<(f64, f64)> = front
        .iter()
        .enumerate()
        .flat_map(|(k, &i)| {
            let p = pts[i];
            match k {
                0 => vec![p],
                _ => vec![(p.0, pts[front[k - 1]].1), p],
            }
        })
        .collect();
    chart
        .draw_series(DashedLineSeries::new(step, 6, 4, BLACK.stroke_width(1)))
        .map_err(err)?
        .label("Pareto front (ringed)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
    chart
        .draw_series(
            front
                .iter()
                .map(|&i| Circle::new(pts[i], 10, BLACK.stroke_width(2))),
        )
        .map_err(err)?;
    let centers: Vec<(i32, i32)> = pts.iter().map(|q| chart.backend_coord(q)).collect();
    let widths: Vec<usize> = points.iter().map(|p| p.label.chars().count()).collect();
    let rows = label_rows(&centers, &widths);
    chart
        .draw_series(points.iter().zip(&pts).enumerate().map(|(i, (p, &q))| {
            EmptyElement::at(q)
                + Text::new(
                    p.label.clone(),
                    (8, -18 - 15 * rows[i]),
                    (FAMILY, 13).into_font(),
                )
        }))
        .map_err(err)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FAMILY, 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn draw_timelines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    timelines: &[Timeline],
) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let steps = timelines.iter().map(|t| t.steps.len()).max().unwrap_or(1);
    let top = timelines
        .iter()
        .flat_map(|t| {
            t.steps
                .iter()
                .flat_map(|s| [s.level_in, s.level_after])
                .chain([t.l_eff])
        })
        .max()
        .unwrap_or(1);
    let panels = root.split_evenly((timelines.len().max(1), 1));
    for (area, t) in panels.iter().zip(timelines) {
        let sites = t.steps.iter().filter(|s| s.bootstrap).count();
        let caption = format!(
            "{}, {}: {sites} bootstraps at {}, {} placement, L_eff {}",
            t.model,
            family_name(&t.structure),
            t.params,
            t.placement,
            t.l_eff
        );
        let mut chart = ChartBuilder::on(area)
            .caption(caption, (FAMILY, 17))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            // Headroom above the top level for the legend.
            .build_cartesian_2d(0f64..steps as f64, 0f64..(top as f64 * 1.45 + 1.0))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("plan step")
            .y_desc("level")
            .light_line_style(WHITE)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14))
            .disable_x_mesh()
            .draw()
            .map_err(err)?;
        let blue = RGBColor(31, 119, 180);
        let red = RGBColor(214, 39, 40);
        let green = RGBColor(44, 160, 44);
        chart
            .draw_series(t.steps.iter().enumerate().map(|(i, s)| {
                PathElement::new(
                    vec![
                        (i as f64, f64::from(s.level_in)),
                        (i as f64 + 1.0, f64::from(s.level_out)),
                    ],
                    blue.stroke_width(2),
                )
            }))
            .map_err(err)?
            .label("level through a step (in to out)")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2))
            });
        let boots: Vec<(usize, &Step)> = t
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.bootstrap)
            .collect();
        chart
            .draw_series(boots.iter().map(|&(i, s)| {
                PathElement::new(
                    vec![
                        (i as f64 + 1.0, f64::from(s.level_out)),
                        (i as f64 + 1.0, f64::from(s.level_after)),
                    ],
                    red.stroke_width(2),
                )
            }))
            .map_err(err)?
            .label("bootstrap (back to L_eff)")
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, red.filled()));
        chart
            .draw_series(boots.iter().map(|&(i, s)| {
                Circle::new((i as f64 + 1.0, f64::from(s.level_after)), 4, red.filled())
            }))
            .map_err(err)?;
        chart
            .draw_series(
                t.steps
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.skip)
                    .map(|(i, s)| {
                        TriangleMarker::new(
                            (i as f64 + 1.0, f64::from(s.level_out)),
                            6,
                            green.filled(),
                        )
                    }),
            )
            .map_err(err)?
            .label("skip addition (result at the lower input's level)")
            .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, green.filled()));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FAMILY, 12))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// Draws one figure as `DIR/NAME.svg` and `DIR/NAME.png`.
macro_rules! both {
    ($dir:expr, $name:expr, $size:expr, |$root:ident| $draw:expr) => {{
        let svg = $dir.join(format!("{}.svg", $name));
        {
            let $root = SVGBackend::new(&svg, $size).into_drawing_area();
            $draw?;
            $root.present().map_err(err)?;
        }
        let png = $dir.join(format!("{}.png", $name));
        {
            let $root = BitMapBackend::new(&png, $size).into_drawing_area();
            $draw?;
            $root.present().map_err(err)?;
        }
    }};
}

/// Writes the accuracy-against-cost figure as `DIR/NAME.{svg,png}`;
/// returns their file names.
pub fn write_scatter(
    dir: &Path,
    name: &str,
    points: &[Point],
    axes: &Axes<'_>,
) -> Result<Vec<String>> {
    both!(dir, name, (960, 620), |root| draw_scatter(
        &root, points, axes
    ));
    Ok(vec![format!("{name}.svg"), format!("{name}.png")])
}

/// Writes every figure into `dir`; returns their file names.
pub fn write_all(
    dir: &Path,
    records: &[Record],
    timelines: &[(String, Vec<Timeline>)],
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    if !records.is_empty() {
        let images = records.iter().map(|r| r.images).min().unwrap_or(0);
        let mut sets: Vec<&str> = records.iter().map(|r| r.params.as_str()).collect();
        sets.dedup();
        let title = format!(
            "Encrypted accuracy against latency ({images} test image{}, {})",
            if images == 1 { "" } else { "s" },
            sets.join(", ")
        );
        both!(dir, "accuracy-latency", (960, 620), |root| draw_accuracy(
            &root, records, &title
        ));
        names.push("accuracy-latency.svg".into());
        names.push("accuracy-latency.png".into());
    }
    for (params, t) in timelines {
        if t.is_empty() {
            continue;
        }
        let name = format!("timeline-{params}");
        let height = 60 + 280 * t.len() as u32;
        both!(dir, &name, (1200, height), |root| draw_timelines(&root, t));
        names.push(format!("{name}.svg"));
        names.push(format!("{name}.png"));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::{label_rows, pareto};

    #[test]
    fn labels_do_not_cover_labels_or_markers() {
        // Session 27's figure: "dirac-shared14-w0625" (20 chars) 96 px left
        // of "resnet14-w0625" and 12 px lower: on lines 0 and 1 it would run
        // over the other point's ring, so it goes on line 2; the other
        // label then fits on line 0.
        let rows = label_rows(&[(220, 131), (316, 119)], &[20, 14]);
        assert_eq!(rows, vec![2, 0]);
        // Far apart: both on line 0.
        assert_eq!(label_rows(&[(100, 300), (600, 100)], &[20, 20]), vec![0, 0]);
        // Three points on top of each other: line 0 meets the other
        // markers, so three lines from line 1 up.
        let rows = label_rows(&[(100, 100), (101, 100), (102, 100)], &[8, 8, 8]);
        assert_eq!(rows, vec![1, 2, 3]);
    }

    #[test]
    fn pareto_front() {
        // (latency, accuracy): 1 is beaten by 0 (faster and as good), 3 by 2.
        let p = [
            (1.0, 90.0),
            (2.0, 90.0),
            (3.0, 95.0),
            (4.0, 94.0),
            (0.5, 80.0),
        ];
        assert_eq!(pareto(&p), vec![4, 0, 2]);
        // Equal points: one of them.
        assert_eq!(pareto(&[(1.0, 1.0), (1.0, 1.0)]).len(), 1);
    }
}

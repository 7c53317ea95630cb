//! The report's charts: one bar chart per breakdown (outstanding secured amount, 万元), drawn to
//! SVG by `plotters` as the market's price chart is. Amounts become f64 here for drawing only.

use plotters::prelude::*;

const SIZE: (u32, u32) = (900, 420);

/// Bars of `(label, fen)` under `title`.
pub fn bars(title: &str, bars: &[(String, i64)]) -> Result<String, String> {
    let wan = |fen: i64| fen as f64 / 1_000_000.0;
    let hi = bars.iter().map(|b| wan(b.1)).fold(0.0f64, f64::max);
    let hi = if hi > 0.0 { hi * 1.12 } else { 1.0 };
    let n = bars.len().max(1) as i32;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0..n, 0.0..hi)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len().max(1))
            .x_label_formatter(&|i: &i32| {
                labels
                    .get(usize::try_from(*i).unwrap_or(usize::MAX))
                    .cloned()
                    .unwrap_or_default()
            })
            .y_desc("outstanding 余额 (万元)")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let i = i as i32;
                let mut r = Rectangle::new([(i, 0.0), (i + 1, wan(b.1))], GREEN.mix(0.7).filled());
                r.set_margin(0, 0, 12, 12);
                r
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_bars_and_labels() {
        let svg = super::bars(
            "test",
            &[
                ("延平区".into(), 250_000_000),
                ("顺昌县".into(), 10_000_000),
            ],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("延平区") && svg.contains("顺昌县"));
        assert!(super::bars("empty", &[]).unwrap().contains("empty"));
    }
}

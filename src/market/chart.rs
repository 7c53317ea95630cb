//! The price chart: daily candlesticks (red up, green down, as Chinese markets draw them) and the
//! benchmark as a line, rendered to SVG by `plotters`. Prices become f64 here for drawing only.

use chrono::NaiveDate;
use plotters::prelude::*;

use super::prices::OhlcSeries;
use super::rules::Candle;

const SIZE: (u32, u32) = (900, 420);

fn yuan(stored: i64) -> f64 {
    stored as f64 / 10_000.0
}

pub fn render(s: &OhlcSeries, candles: &[Candle]) -> Result<String, String> {
    let day = |d: NaiveDate| (d - s.from).num_days();
    let span = day(s.to).max(1);
    let benchmark: Option<f64> = s.benchmark.map(|b| b.0.to_string().parse().unwrap_or(0.0));
    let mut lows: Vec<f64> = candles.iter().map(|c| yuan(c.low)).collect();
    let mut highs: Vec<f64> = candles.iter().map(|c| yuan(c.high)).collect();
    lows.extend(benchmark);
    highs.extend(benchmark);
    let lo = lows.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = highs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.02).max(1.0);
        ((lo - pad).max(0.0), hi + pad)
    } else {
        (0.0, 1.0)
    };
    let title = format!(
        "{} {} {} — {} … {}",
        s.right_type,
        s.sub_kind.as_deref().unwrap_or(""),
        s.region,
        s.from,
        s.to
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(-1i64..span + 1, lo..hi)
            .map_err(|e| e.to_string())?;
        let from = s.from;
        // Over more than a year the year matters more than the day.
        let label = if span > 366 { "%Y-%m" } else { "%m-%d" };
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|d: &i64| {
                from.checked_add_signed(chrono::TimeDelta::days(*d))
                    .map(|x| x.format(label).to_string())
                    .unwrap_or_default()
            })
            .y_desc("元 / unit (EM: 元/吨·年)")
            .draw()
            .map_err(|e| e.to_string())?;
        let width = ((SIZE.0 as i64 - 120) / (span + 2)).clamp(2, 14) as u32;
        chart
            .draw_series(candles.iter().map(|c| {
                CandleStick::new(
                    day(c.date),
                    yuan(c.open),
                    yuan(c.high),
                    yuan(c.low),
                    yuan(c.close),
                    RED.filled(),
                    GREEN.filled(),
                    width,
                )
            }))
            .map_err(|e| e.to_string())?
            .label("daily OHLC 日K线")
            .legend(|(x, y)| Rectangle::new([(x, y - 4), (x + 12, y + 4)], RED.filled()));
        // The closes joined, with a dot a day: over a long window a candle is a hairline.
        chart
            .draw_series(
                LineSeries::new(
                    candles.iter().map(|c| (day(c.date), yuan(c.close))),
                    BLACK.mix(0.6).stroke_width(1),
                )
                .point_size(3),
            )
            .map_err(|e| e.to_string())?
            .label("close 收盘价")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BLACK.stroke_width(1)));
        if let Some(b) = benchmark {
            chart
                .draw_series(LineSeries::new(
                    [(-1, b), (span + 1, b)],
                    BLUE.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(format!("benchmark 基准价 {b}"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BLUE.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

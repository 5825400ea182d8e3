//! Metrics as lattice's processes report them: one model ([`Family`]) read from
//! the counters each part keeps, and two ways out of it, the Prometheus text of an
//! admin address's `/metrics` ([`prometheus`]) and OTLP/HTTP pushes
//! ([`crate::MetricsExport`], built with [`otlp`]).
//!
//! Counters are kept by their owners (lock-free atomics, [`Histogram`]) and only
//! read here, so reporting never slows the work it reports on, and a scrape and a
//! push see the same numbers.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue as ProtoKeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram as ProtoHistogram,
    HistogramDataPoint, Metric, NumberDataPoint, Sum,
};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Label names and values of one series.
pub type Labels = Vec<(&'static str, String)>;

/// One metric with every series of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The Prometheus name (`lattice_host_..._total` for counters); OTLP drops the
    /// `_total`, as OpenTelemetry names do.
    pub name: &'static str,
    pub help: &'static str,
    /// The UCUM unit OTLP carries (`s`, `1`, ...).
    pub unit: &'static str,
    pub points: Points,
}

/// The series of a family, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Points {
    /// Monotonic, since the process (or what it counts) started.
    Counter(Vec<(Labels, u64)>),
    Gauge(Vec<(Labels, f64)>),
    Histogram(Vec<(Labels, HistogramReading)>),
}

impl Family {
    pub fn counter(name: &'static str, help: &'static str, series: Vec<(Labels, u64)>) -> Self {
        Self {
            name,
            help,
            unit: "1",
            points: Points::Counter(series),
        }
    }

    pub fn gauge(name: &'static str, help: &'static str, series: Vec<(Labels, f64)>) -> Self {
        Self {
            name,
            help,
            unit: "1",
            points: Points::Gauge(series),
        }
    }

    /// A histogram of durations, in seconds.
    pub fn seconds(
        name: &'static str,
        help: &'static str,
        series: Vec<(Labels, HistogramReading)>,
    ) -> Self {
        Self {
            name,
            help,
            unit: "s",
            points: Points::Histogram(series),
        }
    }

    /// The same family with another unit.
    pub fn in_unit(mut self, unit: &'static str) -> Self {
        self.unit = unit;
        self
    }
}

/// A duration histogram with fixed bucket bounds, recorded without a lock.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket of `bounds` plus `+Inf` (not cumulative).
    buckets: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
}

/// A reading of a [`Histogram`].
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramReading {
    /// Upper bounds in seconds; the last bucket, `+Inf`, is implicit.
    pub bounds: &'static [f64],
    /// Per bucket (not cumulative), `+Inf` last: one more than `bounds`.
    pub buckets: Vec<u64>,
    pub sum_seconds: f64,
}

impl HistogramReading {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

impl Histogram {
    /// `bounds` must be increasing (seconds).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn record(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = self
            .bounds
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(self.bounds.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn read(&self) -> HistogramReading {
        HistogramReading {
            bounds: self.bounds,
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// The Prometheus text format (version 0.0.4) of `families`.
pub fn prometheus(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let name = f.name;
        let kind = match f.points {
            Points::Counter(_) => "counter",
            Points::Gauge(_) => "gauge",
            Points::Histogram(_) => "histogram",
        };
        let _ = writeln!(out, "# HELP {name} {}", f.help);
        let _ = writeln!(out, "# TYPE {name} {kind}");
        match &f.points {
            Points::Counter(series) => {
                for (labels, v) in series {
                    let _ = writeln!(out, "{name}{} {v}", braces(&label_text(labels)));
                }
            }
            Points::Gauge(series) => {
                for (labels, v) in series {
                    let _ = writeln!(out, "{name}{} {v}", braces(&label_text(labels)));
                }
            }
            Points::Histogram(series) => {
                for (labels, h) in series {
                    let labels = label_text(labels);
                    let sep = if labels.is_empty() { "" } else { "," };
                    let mut cumulative = 0;
                    for (i, count) in h.buckets.iter().enumerate() {
                        cumulative += count;
                        let le = h
                            .bounds
                            .get(i)
                            .map_or_else(|| "+Inf".to_string(), ToString::to_string);
                        let _ = writeln!(
                            out,
                            "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
                        );
                    }
                    let _ = writeln!(out, "{name}_sum{} {}", braces(&labels), h.sum_seconds);
                    let _ = writeln!(out, "{name}_count{} {cumulative}", braces(&labels));
                }
            }
        }
    }
    out
}

fn label_text(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

fn braces(labels: &str) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    }
}

/// A label value as the text format needs it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `families` as OTLP metrics: counters as cumulative monotonic sums, gauges,
/// histograms with explicit bounds, every point stamped `now` and started `start`.
pub fn otlp(families: &[Family], start: SystemTime, now: SystemTime) -> Vec<Metric> {
    let nanos = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    };
    let (start, now) = (nanos(start), nanos(now));
    let number = |labels: &Labels, value: number_data_point::Value| NumberDataPoint {
        attributes: attributes(labels),
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(value),
        ..Default::default()
    };
    families
        .iter()
        .map(|f| {
            let data = match &f.points {
                Points::Counter(series) => metric::Data::Sum(Sum {
                    data_points: series
                        .iter()
                        .map(|(l, v)| {
                            let v = i64::try_from(*v).unwrap_or(i64::MAX);
                            number(l, number_data_point::Value::AsInt(v))
                        })
                        .collect(),
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                }),
                Points::Gauge(series) => metric::Data::Gauge(Gauge {
                    data_points: series
                        .iter()
                        .map(|(l, v)| number(l, number_data_point::Value::AsDouble(*v)))
                        .collect(),
                }),
                Points::Histogram(series) => metric::Data::Histogram(ProtoHistogram {
                    data_points: series
                        .iter()
                        .map(|(l, h)| HistogramDataPoint {
                            attributes: attributes(l),
                            start_time_unix_nano: start,
                            time_unix_nano: now,
                            count: h.count(),
                            sum: Some(h.sum_seconds),
                            bucket_counts: h.buckets.clone(),
                            explicit_bounds: h.bounds.to_vec(),
                            ..Default::default()
                        })
                        .collect(),
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                }),
            };
            Metric {
                name: f.name.strip_suffix("_total").unwrap_or(f.name).to_string(),
                description: f.help.to_string(),
                unit: f.unit.to_string(),
                data: Some(data),
                ..Default::default()
            }
        })
        .collect()
}

fn attributes(labels: &Labels) -> Vec<ProtoKeyValue> {
    labels
        .iter()
        .map(|(k, v)| ProtoKeyValue {
            key: (*k).to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.clone())),
            }),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[f64] = &[0.001, 0.01];

    fn families() -> Vec<Family> {
        let h = Histogram::new(BOUNDS);
        h.record(Duration::from_micros(500));
        h.record(Duration::from_millis(5));
        h.record(Duration::from_secs(1));
        vec![
            Family::counter(
                "calls_total",
                "calls",
                vec![(vec![("route", "lo\"cal".into())], 3)],
            ),
            Family::gauge("up", "up", vec![(vec![], 1.0)]),
            Family::seconds(
                "took_seconds",
                "took",
                vec![(vec![("app", "a".into())], h.read())],
            ),
        ]
    }

    #[test]
    fn prometheus_text_has_types_escaped_labels_and_cumulative_buckets() {
        let text = prometheus(&families());
        for line in [
            "# TYPE calls_total counter",
            "calls_total{route=\"lo\\\"cal\"} 3",
            "# TYPE up gauge",
            "up 1",
            "# TYPE took_seconds histogram",
            "took_seconds_bucket{app=\"a\",le=\"0.001\"} 1",
            "took_seconds_bucket{app=\"a\",le=\"0.01\"} 2",
            "took_seconds_bucket{app=\"a\",le=\"+Inf\"} 3",
            "took_seconds_sum{app=\"a\"} 1.0055",
            "took_seconds_count{app=\"a\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn otlp_metrics_are_cumulative_with_the_same_numbers() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        let t1 = t0 + Duration::from_secs(5);
        let metrics = otlp(&families(), t0, t1);
        assert_eq!(metrics[0].name, "calls", "`_total` is Prometheus's suffix");
        let Some(metric::Data::Sum(sum)) = &metrics[0].data else {
            panic!("a counter is a sum: {:?}", metrics[0]);
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let p = &sum.data_points[0];
        assert_eq!(p.value, Some(number_data_point::Value::AsInt(3)));
        assert_eq!(p.attributes[0].key, "route");
        assert_eq!(
            (p.start_time_unix_nano, p.time_unix_nano),
            (10_000_000_000, 15_000_000_000)
        );
        let Some(metric::Data::Histogram(h)) = &metrics[2].data else {
            panic!("a histogram: {:?}", metrics[2]);
        };
        assert_eq!(metrics[2].unit, "s");
        let p = &h.data_points[0];
        assert_eq!((p.count, p.sum), (3, Some(1.0055)));
        assert_eq!(p.bucket_counts, vec![1, 1, 1], "not cumulative in OTLP");
        assert_eq!(p.explicit_bounds, BOUNDS.to_vec());
    }
}

//! KPI paths: how an experiment names a number in a run's report.
//!
//! A path walks the JSON form of `twin_core::Report` (what `twin run --json` prints):
//! fields are separated by `.`, and a list element is picked with `[...]`, either by
//! position (`bottlenecks[0].share`) or by id, matched against the element's `id` or
//! `station` field (`stations[mill].utilization`, `products[bracket].lead_time_mean_s`).
//!
//! Examples: `complex.throughput_per_hour`, `complex.lead_time_p95_s`,
//! `stations[mill].blocked`, `factories[hall].utilization`, `bottlenecks[mill].share`.
//!
//! The bottleneck ranking lists only stations that were ever the bottleneck, so
//! `bottlenecks[<station>].<field>` is 0 for any other station of the scene.

use serde_json::Value;

use crate::file::Better;

/// One step of a path: a field, optionally followed by an element selector.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Segment {
    field: String,
    select: Option<String>,
}

/// A parsed KPI path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KpiPath {
    text: String,
    segments: Vec<Segment>,
}

impl KpiPath {
    /// Parses `text`, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<KpiPath, String> {
        let mut segments = Vec::new();
        if text.trim().is_empty() {
            return Err("KPI path is empty".into());
        }
        for part in text.split('.') {
            let (field, select) = match part.find('[') {
                Some(open) => {
                    let Some(inner) = part[open + 1..].strip_suffix(']') else {
                        return Err(format!("`{part}` in `{text}`: a selector is `name[id]` or `name[0]`"));
                    };
                    if inner.is_empty() || inner.contains(['[', ']']) {
                        return Err(format!("`{part}` in `{text}`: empty or nested selector"));
                    }
                    (&part[..open], Some(inner.to_string()))
                }
                None => (part, None),
            };
            if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`{part}` in `{text}`: a field name is letters, digits and `_`"));
            }
            segments.push(Segment { field: field.to_string(), select });
        }
        Ok(KpiPath { text: text.to_string(), segments })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn last_field(&self) -> &str {
        self.segments.last().map_or("", |s| s.field.as_str())
    }

    /// Looks the path up in a report's JSON form. `Ok(None)` means the field exists
    /// but is null (e.g. `complex.on_time_share` when no part had a due date).
    pub fn lookup(&self, report: &Value) -> Result<Option<f64>, String> {
        let mut at = report;
        for (i, seg) in self.segments.iter().enumerate() {
            at = match at.get(&seg.field) {
                Some(v) => v,
                None => {
                    let known = at
                        .as_object()
                        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    return Err(format!("no field `{}` here (known: {known})", seg.field));
                }
            };
            let Some(sel) = &seg.select else { continue };
            let Some(items) = at.as_array() else {
                return Err(format!("`{}` is not a list; drop `[{sel}]`", seg.field));
            };
            let by_index = sel.parse::<usize>().ok();
            let found = match by_index {
                Some(idx) => items.get(idx),
                None => items.iter().find(|item| {
                    item.get("id").and_then(Value::as_str) == Some(sel)
                        || item.get("station").and_then(Value::as_str) == Some(sel)
                }),
            };
            match found {
                Some(item) => at = item,
                None if seg.field == "bottlenecks" && by_index.is_none() => {
                    // Never the bottleneck: every share is zero, if the station exists.
                    let exists = report.get("stations").and_then(Value::as_array).is_some_and(|s| {
                        s.iter().any(|st| st.get("id").and_then(Value::as_str) == Some(sel))
                    });
                    if exists && i + 2 == self.segments.len() {
                        return Ok(Some(0.0));
                    }
                    return Err(format!("no station `{sel}` in the scene"));
                }
                None => {
                    let ids: Vec<&str> =
                        items.iter().filter_map(|it| it.get("id").and_then(Value::as_str)).collect();
                    return Err(match by_index {
                        Some(_) => format!("`{}` has only {} elements", seg.field, items.len()),
                        None => format!("no `{sel}` in `{}` (ids: {})", seg.field, ids.join(", ")),
                    });
                }
            }
        }
        match at {
            Value::Number(n) => Ok(n.as_f64()),
            Value::Null => Ok(None),
            Value::Object(o) => Err(format!(
                "`{}` is a group, not a number; add one of: {}",
                self.text,
                o.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
            other => Err(format!("`{}` is not a number ({other})", self.text)),
        }
    }

    /// The unit of the KPI, guessed from the field name's suffix.
    pub fn unit(&self) -> &'static str {
        let f = self.last_field();
        if f.ends_with("_per_hour") {
            "1/h"
        } else if f.ends_with("_s") {
            "s"
        } else if f.ends_with("kwh") || f.starts_with("kwh_per") {
            if f.contains("_per_") { "kWh/part" } else { "kWh" }
        } else if f.ends_with("_kg") {
            "kg"
        } else if f.ends_with("_km") || f == "km" {
            "km"
        } else if matches!(
            f,
            "utilization"
                | "busy"
                | "setup"
                | "starved"
                | "blocked"
                | "down"
                | "off_shift"
                | "oee"
                | "share"
                | "sole"
                | "shifting"
                | "on_time_share"
        ) {
            "fraction"
        } else if matches!(
            f,
            "wip_mean" | "wip_now" | "queue_mean" | "created" | "finished" | "scrapped" | "completed"
        ) {
            "parts"
        } else if f == "rate" || f.ends_with("_rate") || f.ends_with("_share") {
            "fraction"
        } else {
            ""
        }
    }

    /// Which direction is better when the file does not say: less of lead times, WIP,
    /// queues, waits, scrap and lost time is better; more of everything else.
    pub fn better(&self) -> Better {
        let f = self.last_field();
        let lower = [
            "lead_time",
            "wip",
            "queue",
            "wait",
            "starved",
            "blocked",
            "down",
            "scrapped",
            "off_shift",
            "setup",
            "share",
            "sole",
            "shifting",
            "kwh",
            "co2",
            "cost",
            "stockout",
            "shortage",
        ];
        if f != "on_time_share" && lower.iter().any(|w| f.contains(w)) {
            Better::Lower
        } else {
            Better::Higher
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> Value {
        json!({
            "complex": {"throughput_per_hour": 45.0, "on_time_share": null},
            "stations": [{"id": "saw", "busy": 0.5}, {"id": "mill", "busy": 0.9}],
            "bottlenecks": [{"station": "mill", "share": 0.7}],
        })
    }

    #[test]
    fn paths_select_by_id_index_and_default_missing_bottlenecks_to_zero() {
        let r = report();
        let get = |p: &str| KpiPath::parse(p).unwrap().lookup(&r);
        assert_eq!(get("complex.throughput_per_hour"), Ok(Some(45.0)));
        assert_eq!(get("stations[mill].busy"), Ok(Some(0.9)));
        assert_eq!(get("stations[0].busy"), Ok(Some(0.5)));
        assert_eq!(get("bottlenecks[mill].share"), Ok(Some(0.7)));
        assert_eq!(get("bottlenecks[saw].share"), Ok(Some(0.0)));
        assert_eq!(get("complex.on_time_share"), Ok(None));
        assert!(get("bottlenecks[lathe].share").unwrap_err().contains("lathe"));
        assert!(get("stations[lathe].busy").unwrap_err().contains("saw, mill"));
        assert!(get("complex.nope").unwrap_err().contains("throughput_per_hour"));
        assert!(get("complex").unwrap_err().contains("group"));
        assert!(get("stations[9].busy").unwrap_err().contains("only 2"));
    }

    #[test]
    fn malformed_paths_are_rejected() {
        for bad in ["", "a..b", "a[", "a[]", "a[b]c", "a b", "a[[b]]"] {
            assert!(KpiPath::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn units_and_directions_follow_the_field_name() {
        let p = |s: &str| KpiPath::parse(s).unwrap();
        assert_eq!(p("complex.throughput_per_hour").unit(), "1/h");
        assert_eq!(p("complex.throughput_per_hour").better(), Better::Higher);
        assert_eq!(p("complex.lead_time_mean_s").unit(), "s");
        assert_eq!(p("complex.lead_time_mean_s").better(), Better::Lower);
        assert_eq!(p("complex.wip_mean").better(), Better::Lower);
        assert_eq!(p("complex.on_time_share").better(), Better::Higher);
        assert_eq!(p("stations[mill].utilization").unit(), "fraction");
        assert_eq!(p("value_added.rate").unit(), "fraction");
        assert_eq!(p("value_added.rate").better(), Better::Higher);
        assert_eq!(p("energy.total_kwh").unit(), "kWh");
        assert_eq!(p("energy.kwh_per_good_part").unit(), "kWh/part");
        assert_eq!(p("energy.kwh_per_good_part").better(), Better::Lower);
        assert_eq!(p("energy.co2_kg").unit(), "kg");
        assert_eq!(p("energy.co2_kg").better(), Better::Lower);
    }
}

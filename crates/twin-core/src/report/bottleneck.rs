//! Bottleneck detection by the active-period method (Roser, Nakano & Tanaka, 2001).
//!
//! A station is *active* while it works, sets up or is being repaired, and inactive
//! while starved, blocked or off shift. At each instant the station whose current active
//! period is longest (in whole) is the momentary bottleneck. Where the periods of two
//! consecutive bottlenecks overlap, the bottleneck is *shifting* between them; elsewhere
//! it is *sole*. A station's share over a window is its sole plus shifting time divided
//! by the window length; ranking stations by share finds the constraint of the line
//! more reliably than ranking by utilisation.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::model::Model;
use crate::sim::Sim;
use crate::sim::flow::Rankings;
use crate::time::Micros;

use super::stations::ratio;

/// One station's bottleneck time over a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BottleneckShare {
    /// Index of the station.
    pub station: usize,
    /// Time as sole bottleneck.
    pub sole: Micros,
    /// Time as shifting bottleneck.
    pub shifting: Micros,
}

/// An active period of one station: `(start, end)`.
pub type Period = (Micros, Micros);

/// Ranks stations by bottleneck time over `[from, to]`.
///
/// `periods[i]` are the active periods of station `i` (whole periods; those that reach
/// outside the window still count with their full length when compared). The result
/// holds only stations that were ever the bottleneck, ranked by sole + shifting time,
/// ties to the lower station index.
pub fn analyse(periods: &[Vec<Period>], from: Micros, to: Micros) -> Vec<BottleneckShare> {
    if to <= from {
        return Vec::new();
    }
    // Boundary points of the sweep: (time, is_start, length, station, period index).
    let mut points: Vec<(Micros, bool, Micros, usize, usize)> = Vec::new();
    let mut all: Vec<(usize, Period)> = Vec::new();
    for (station, list) in periods.iter().enumerate() {
        for &(start, end) in list {
            if end <= from || start >= to || end <= start {
                continue;
            }
            let id = all.len();
            all.push((station, (start, end)));
            points.push((start.max(from), true, end - start, station, id));
            points.push((end.min(to), false, end - start, station, id));
        }
    }
    // Ends before starts at equal times, so that a period ending at t does not
    // compete with one starting at t.
    points.sort_unstable_by_key(|&(t, is_start, _, station, id)| (t, is_start, station, id));

    // Segments of constant momentary bottleneck: (start, end, period id).
    let mut segments: Vec<(Micros, Micros, usize)> = Vec::new();
    // Open periods ordered by length, then by lower station index first.
    let mut open: BTreeSet<(Micros, std::cmp::Reverse<usize>, usize)> = BTreeSet::new();
    let mut idx = 0;
    while idx < points.len() {
        let t = points[idx].0;
        while idx < points.len() && points[idx].0 == t {
            let (_, is_start, len, station, id) = points[idx];
            if is_start {
                open.insert((len, std::cmp::Reverse(station), id));
            } else {
                open.remove(&(len, std::cmp::Reverse(station), id));
            }
            idx += 1;
        }
        let Some(next_t) = points.get(idx).map(|p| p.0) else {
            break;
        };
        if let Some(&(_, _, id)) = open.last() {
            match segments.last_mut() {
                Some(last) if last.2 == id && last.1 == t => last.1 = next_t,
                _ => segments.push((t, next_t, id)),
            }
        }
    }

    let mut shares: Vec<BottleneckShare> =
        (0..periods.len()).map(|station| BottleneckShare { station, ..Default::default() }).collect();
    let overlap_with = |a: usize, b: usize| -> Option<Period> {
        let (pa, pb) = (all[a].1, all[b].1);
        let start = pa.0.max(pb.0).max(from);
        let end = pa.1.min(pb.1).min(to);
        (end > start).then_some((start, end))
    };
    let intersect = |seg: Period, other: Option<Period>| -> Micros {
        other.map_or(0, |o| seg.1.min(o.1).saturating_sub(seg.0.max(o.0)))
    };
    for (k, &(start, end, id)) in segments.iter().enumerate() {
        let station = all[id].0;
        let adjacent = |j: usize| -> Option<Period> {
            let (s2, e2, id2) = *segments.get(j)?;
            let touching = if j < k { e2 == start } else { s2 == end };
            (touching && all[id2].0 != station).then(|| overlap_with(id, id2)).flatten()
        };
        let prev = k.checked_sub(1).and_then(adjacent);
        let next = adjacent(k + 1);
        let shifted = intersect((start, end), prev) + intersect((start, end), next);
        let share = &mut shares[station];
        share.sole += (end - start).saturating_sub(shifted);
        // Each overlap is shifting time for both stations; count it once per pair,
        // from the earlier segment's side.
        if let Some(n) = next {
            let (s2, _, id2) = segments[k + 1];
            debug_assert_eq!(s2, end);
            share.shifting += n.1 - n.0;
            shares[all[id2].0].shifting += n.1 - n.0;
        }
    }
    shares.retain(|s| s.sole + s.shifting > 0);
    shares.sort_by(|a, b| (b.sole + b.shifting).cmp(&(a.sole + a.shifting)).then(a.station.cmp(&b.station)));
    shares
}

/// One station's row of the report's ranking.
#[derive(Clone, Debug, Serialize)]
pub struct BottleneckRow {
    pub station: String,
    /// Index of the station in the model (not in the JSON document, which names it).
    #[serde(skip)]
    pub station_index: usize,
    /// Share of the window as sole or shifting bottleneck.
    pub share: f64,
    pub sole: f64,
    pub shifting: f64,
}

/// The rankings of `sim` so far: over its statistics window and the recent windows.
pub(super) fn rankings(sim: &Sim) -> Rankings {
    sim.flow().bottleneck_rankings(sim.now())
}

/// The same ranking over the last hour, shift (8 h) and day, to one minute.
#[derive(Clone, Debug, Serialize)]
pub struct RecentBottlenecks {
    /// Length of the window, seconds (3600, 28800, 86400).
    pub window_s: f64,
    /// Shares of the part of the window inside the statistics window.
    pub ranking: Vec<BottleneckRow>,
}

/// The rankings over the recent windows, each as shares of its part inside `window`.
pub(super) fn recent(
    model: &Model,
    recent: Vec<(Micros, Vec<BottleneckShare>)>,
    window: Micros,
) -> Vec<RecentBottlenecks> {
    recent
        .into_iter()
        .map(|(length, ranking)| RecentBottlenecks {
            window_s: crate::time::to_secs(length),
            ranking: rows(model, ranking, length.min(window)),
        })
        .collect()
}

/// The ranking as report rows, shares of a window `window` long.
pub(super) fn rows(model: &Model, ranking: Vec<BottleneckShare>, window: Micros) -> Vec<BottleneckRow> {
    ranking
        .into_iter()
        .map(|b| BottleneckRow {
            station: model.stations[b.station].id.clone(),
            station_index: b.station,
            share: ratio((b.sole + b.shifting) as f64, window as f64),
            sole: ratio(b.sole as f64, window as f64),
            shifting: ratio(b.shifting as f64, window as f64),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roser_example_sole_and_shifting() {
        // A active [0,10], B active [5,30]: A is the bottleneck until B's longer period
        // takes over at 5; they overlap on [5,10], where the bottleneck shifts.
        let periods = vec![vec![(0, 10)], vec![(5, 30)]];
        let shares = analyse(&periods, 0, 30);
        assert_eq!(shares[0], BottleneckShare { station: 1, sole: 20, shifting: 5 });
        assert_eq!(shares[1], BottleneckShare { station: 0, sole: 5, shifting: 5 });
    }

    #[test]
    fn always_active_station_is_sole_bottleneck() {
        let periods = vec![vec![(0, 3), (4, 6), (7, 9)], vec![(0, 100)]];
        let shares = analyse(&periods, 0, 100);
        assert_eq!(shares, vec![BottleneckShare { station: 1, sole: 100, shifting: 0 }]);
    }

    #[test]
    fn window_clips_but_lengths_compare_whole() {
        // Station 0's period (50 long) beats station 1's (20 long) on [45, 50] although
        // only 5 of it lies in the window; the two overlap there, so it is shifting time.
        let periods = vec![vec![(0, 50)], vec![(40, 60)]];
        let shares = analyse(&periods, 45, 60);
        assert_eq!(shares[0], BottleneckShare { station: 1, sole: 10, shifting: 5 });
        assert_eq!(shares[1], BottleneckShare { station: 0, sole: 0, shifting: 5 });
    }

    #[test]
    fn idle_gaps_have_no_bottleneck() {
        let periods = vec![vec![(0, 10)], vec![(20, 25)]];
        let shares = analyse(&periods, 0, 30);
        assert_eq!(shares.iter().map(|s| s.sole + s.shifting).sum::<u64>(), 15);
    }
}

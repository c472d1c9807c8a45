//! Live measures over moving windows of simulated time: station throughput and the rates
//! of the layout's flow links. They turn the core's cumulative counters into rates; what
//! flows where is the core's ([`twin_core::model::Model::flow_links`]).

use std::collections::{BTreeMap, VecDeque};

use twin_core::StationView;
use twin_core::model::{Endpoint, FlowLink, Model};
use twin_core::time::{HOUR, Micros};

/// Simulated time over which rates are measured.
const WINDOW: Micros = HOUR;

/// Cumulative counts sampled at simulated times, for rates over a moving window.
#[derive(Debug, Default)]
pub struct RateWindow {
    samples: VecDeque<(Micros, Vec<u64>)>,
}

impl RateWindow {
    /// Records the counts at `now` (at most ~60 samples per window) and returns each
    /// count's rate per hour over the window.
    pub fn update(&mut self, now: Micros, counts: &[u64]) -> Vec<f64> {
        // Counts restart at the end of the warm-up; start the window afresh then.
        if self.samples.back().is_some_and(|(t, c)| *t > now || c.iter().zip(counts).any(|(a, b)| a > b)) {
            self.samples.clear();
        }
        let step = WINDOW / 60;
        if self.samples.back().is_none_or(|(t, _)| now >= t + step) {
            self.samples.push_back((now, counts.to_vec()));
        }
        while self.samples.len() > 2
            && self.samples.get(1).is_some_and(|(t, _)| now.saturating_sub(*t) >= WINDOW)
        {
            self.samples.pop_front();
        }
        let Some((t0, c0)) = self.samples.front() else {
            return vec![0.0; counts.len()];
        };
        let span = now.saturating_sub(*t0);
        if span == 0 {
            return vec![0.0; counts.len()];
        }
        let hours = span as f64 / HOUR as f64;
        counts.iter().zip(c0).map(|(c, c0)| c.saturating_sub(*c0) as f64 / hours).collect()
    }
}

/// Which flow links are measured, and from which core counters.
#[derive(Debug, Default)]
pub struct FlowMeter {
    /// Link of each `(from station, to station)` pair.
    pairs: BTreeMap<(u32, u32), u32>,
    /// Per station, the links by which its finished parts leave (to a sink and/or the
    /// hub); empty where the count cannot be told apart (scrap, several sinks).
    exits: Vec<Vec<u32>>,
    /// Per link, whether it is measured at all (links from sources are not).
    measured: Vec<bool>,
}

impl FlowMeter {
    /// Indexes `links` (the model's flow links, in layout order).
    pub fn new(model: &Model, links: &[FlowLink]) -> FlowMeter {
        let mut meter = FlowMeter {
            pairs: BTreeMap::new(),
            exits: vec![Vec::new(); model.stations.len()],
            measured: vec![false; links.len()],
        };
        let mut sinks_of = vec![0u32; model.stations.len()];
        for (index, link) in links.iter().enumerate() {
            let index = index as u32;
            let Endpoint::Station(from) = link.from else { continue };
            match link.to {
                Endpoint::Station(to) => {
                    meter.pairs.insert((from, to), index);
                    meter.measured[index as usize] = true;
                }
                Endpoint::Sink(_) | Endpoint::Hub => {
                    if matches!(link.to, Endpoint::Sink(_)) {
                        sinks_of[from as usize] += 1;
                    }
                    meter.exits[from as usize].push(index);
                }
                Endpoint::Source(_) => {}
            }
        }
        for (s, exits) in meter.exits.iter_mut().enumerate() {
            // Scrapped parts count as processed but leave by no link; with several sinks
            // the split is unknown. Those exits stay unmeasured.
            if model.stations[s].scrap > 0.0 || sinks_of[s] > 1 {
                exits.clear();
            }
            for &l in exits.iter() {
                meter.measured[l as usize] = true;
            }
        }
        meter
    }

    /// Cumulative parts moved along every link since the statistics were reset (0 for
    /// unmeasured links), from the station pair counts and the stations' completions.
    pub fn counts(&self, pairs: impl Iterator<Item = (u32, u32, u64)>, views: &[StationView]) -> Vec<u64> {
        let mut counts = vec![0u64; self.measured.len()];
        let mut sent = vec![0u64; views.len()];
        for (from, to, n) in pairs {
            if let Some(s) = sent.get_mut(from as usize) {
                *s += n;
            }
            if let Some(&l) = self.pairs.get(&(from, to)) {
                counts[l as usize] += n;
            }
        }
        for (s, exits) in self.exits.iter().enumerate() {
            let (Some(view), Some(sent)) = (views.get(s), sent.get(s)) else { continue };
            let left = view.completed.saturating_sub(*sent);
            for &l in exits {
                counts[l as usize] = left;
            }
        }
        counts
    }

    /// `(link index, parts per hour)` of the measured links, ascending by index.
    pub fn measured<'a>(&'a self, per_hour: &'a [f64]) -> impl Iterator<Item = (u32, f64)> + 'a {
        self.measured
            .iter()
            .zip(per_hour)
            .enumerate()
            .filter(|(_, (m, _))| **m)
            .map(|(i, (_, &r))| (i as u32, r))
    }
}

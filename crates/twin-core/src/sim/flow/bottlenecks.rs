//! The active-period method computed as the run goes, in memory bounded by the number of
//! stations rather than by the length of the run.
//!
//! [`crate::report::bottleneck::analyse`] sweeps over every active period of a window at once. A
//! twin that runs for months cannot keep them all, so [`LiveBottlenecks`] sweeps forward
//! as periods close and keeps only what the sweep still needs:
//!
//! - The sweep is exact up to the *frontier*, the earliest start of a period that is still
//!   open: before it every period covering a moment is closed, so its whole length (the
//!   method's measure) is known. The frontier's sweep state (the closed periods covering
//!   it, at most one per station, and the segment in progress) carries over.
//! - A closed period that starts at or after the frontier and is shorter than the open
//!   period starting there can never be the momentary bottleneck: that open period covers
//!   it and is already longer. It is dropped, which is what bounds memory while a station
//!   stays active for weeks.
//!
//! The ranking since the window start equals `analyse` over the same periods exactly
//! (tested on random periods). Sliding windows (the last hour, shift and day) sum the same
//! sole and shifting time in one-minute buckets, so they are exact to a minute at their
//! trailing edge.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use crate::report::bottleneck::{BottleneckShare, Period};
use crate::time::{Micros, SECOND};

/// Lengths of the sliding windows: the last hour, the last shift (8 h) and the last day.
pub const WINDOWS: [Micros; 3] = [3_600 * SECOND, 8 * 3_600 * SECOND, 24 * 3_600 * SECOND];
/// Resolution of the sliding windows.
const BUCKET: Micros = 60 * SECOND;
/// Buckets kept: enough for the longest window.
const N_BUCKETS: u64 = WINDOWS[2] / BUCKET;
/// Closed periods waiting for the sweep, per station, before it runs (amortises the sort).
const PENDING_PER_STATION: usize = 2;

/// A period in the sweep's ordered set: compared by whole length, then lower station
/// first (the same order as `analyse`); `start` makes it unique (one station's periods
/// never overlap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
struct Key {
    len: Micros,
    station: Reverse<u32>,
    start: Micros,
}

impl Key {
    fn of(station: u32, (start, end): Period) -> Key {
        Key { len: end - start, station: Reverse(station), start }
    }
    fn station(&self) -> u32 {
        self.station.0
    }
    fn period(&self) -> Period {
        (self.start, self.start + self.len)
    }
}

/// The momentary bottleneck's current stretch of time.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Segment {
    start: Micros,
    end: Micros,
    key: Key,
    /// Overlap with the previous segment's period (shifting time), if they touch.
    overlap_prev: Option<Period>,
}

/// One station's figures in a bucket: the change of its *rate* of whole buckets credited
/// as sole and as shifting bottleneck from this bucket on, and the correction for the
/// stretches that start or end inside the bucket (see [`Ring`]).
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Entry {
    station: u32,
    /// Change of the number of whole buckets credited per bucket from here on.
    rate: [i32; 2],
    /// Correction of this bucket's whole-bucket credit: the time before a stretch's start
    /// (negative) and up to a stretch's end (positive) within the bucket.
    part: [i64; 2],
}

/// Sole (`[0]`) and shifting (`[1]`) time per station in one-minute buckets over the
/// longest window.
///
/// A stretch of time `[a, b)` is credited in O(1) at its two ends: a rate of +1 whole
/// bucket from `a`'s bucket on, less the part of that bucket before `a`, and −1 from the
/// bucket of `b - 1` on, plus the part of that bucket before `b`. [`Ring::shares`] integrates
/// the rates. Two entries per stretch (rather than partial first and last buckets and a
/// rate between: four) is what the per-period cost is made of. Rate changes of buckets
/// the ring has moved past are folded into `base`, so the running rate stays right at
/// every bucket it holds; their corrections lie before every window and are dropped.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Ring {
    /// `cells[b % N_BUCKETS]` holds bucket `b`: its index and per-station entries.
    cells: Vec<(u64, Vec<Entry>)>,
    /// Per station: the summed rate changes of buckets no longer held.
    base: Vec<[i64; 2]>,
}

impl Ring {
    fn new(n_stations: usize) -> Ring {
        Ring { cells: vec![(u64::MAX, Vec::new()); N_BUCKETS as usize], base: vec![[0; 2]; n_stations] }
    }

    /// The entry of `station` in bucket `idx`, or None when the ring holds a newer bucket
    /// in its place (`idx` is outside every window the ring serves).
    #[inline(always)]
    fn entry(&mut self, idx: u64, station: u32) -> Option<&mut Entry> {
        let Ring { cells, base } = self;
        let (held, entries) = &mut cells[(idx % N_BUCKETS) as usize];
        if *held != idx {
            if *held != u64::MAX && *held > idx {
                return None;
            }
            // Iterated, then cleared (not drained): most cells hold one entry or none,
            // and a `Drain` costs more than that.
            for e in entries.iter() {
                let base = &mut base[e.station as usize];
                base[0] += i64::from(e.rate[0]);
                base[1] += i64::from(e.rate[1]);
            }
            entries.clear();
            *held = idx;
        } else if let Some(i) = entries.iter().position(|e| e.station == station) {
            return Some(&mut entries[i]);
        }
        // A reused cell is empty: no search for the station's entry.
        entries.push(Entry { station, rate: [0; 2], part: [0; 2] });
        entries.last_mut()
    }

    /// Adds `sign` whole buckets per bucket from bucket `idx` on to a station's sole or
    /// shifting time, less `offset` (the part of bucket `idx` before the change).
    #[inline(always)]
    fn add_change(&mut self, idx: u64, station: u32, kind: usize, sign: i64, offset: i64) {
        match self.entry(idx, station) {
            Some(e) => {
                e.rate[kind] += sign as i32;
                e.part[kind] -= sign * offset;
            }
            // Before every bucket held: the change applies to all of them, and the
            // offset lies before every window.
            None => self.base[station as usize][kind] += sign,
        }
    }

    /// Adds `sign` × the part of `(a, b)` in each bucket to a station's sole or shifting.
    #[inline(always)]
    fn add(&mut self, station: u32, shifting: bool, (a, b): Period, sign: i64) {
        if b <= a {
            return;
        }
        let kind = usize::from(shifting);
        // `last` holds the stretch's last moment (as `b` is exclusive), so that no entry
        // lies past the bucket of `b - 1`: a later one could evict a bucket still in the
        // longest window.
        let (first, last) = (a / BUCKET, (b - 1) / BUCKET);
        if first == last {
            // Within one bucket: no rate, only the amount (one entry).
            if let Some(e) = self.entry(first, station) {
                e.part[kind] += sign * (b - a) as i64;
            }
            return;
        }
        self.add_change(first, station, kind, sign, (a - first * BUCKET) as i64);
        self.add_change(last, station, kind, -sign, (b - last * BUCKET) as i64);
    }

    /// Sums the buckets of the `window` ending at `now`.
    fn shares(&self, now: Micros, window: Micros) -> Vec<BottleneckShare> {
        let last = now.saturating_sub(1) / BUCKET;
        let first = (last + 1).saturating_sub(window / BUCKET);
        // A rate change at bucket `p` counts in every bucket of the window from `p` on.
        let whole = |p: u64, rate: i64| rate * (last + 1 - p.max(first)) as i64 * BUCKET as i64;
        let mut sums: Vec<[i64; 2]> = self.base.iter().map(|r| [whole(0, r[0]), whole(0, r[1])]).collect();
        for (idx, entries) in &self.cells {
            if *idx == u64::MAX || *idx > last {
                continue;
            }
            for e in entries {
                let in_window = *idx >= first;
                for ((sum, &rate), &part) in sums[e.station as usize].iter_mut().zip(&e.rate).zip(&e.part) {
                    *sum += whole(*idx, i64::from(rate)) + if in_window { part } else { 0 };
                }
            }
        }
        let shares = sums
            .into_iter()
            .enumerate()
            .map(|(station, [sole, shifting])| BottleneckShare {
                station,
                sole: sole.max(0) as Micros,
                shifting: shifting.max(0) as Micros,
            })
            .collect();
        rank(shares)
    }
}

/// The bottleneck rankings at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rankings {
    /// Since the statistics window began.
    pub total: Vec<BottleneckShare>,
    /// Over each window of [`WINDOWS`]: `(length, ranking)`.
    pub recent: Vec<(Micros, Vec<BottleneckShare>)>,
}

/// Keeps the ranking of [`crate::report::bottleneck::analyse`] up to date as periods open and
/// close. Memory: O(stations) for the sweep plus O(stations × active buckets) for the
/// sliding windows; nothing grows with the length of the run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LiveBottlenecks {
    /// Start of the statistics window (the warm-up's end).
    from: Micros,
    /// Start of each station's open active period.
    open: Vec<Option<Micros>>,
    /// Stations whose period closed at `closing_at`, with its start: not final until time
    /// moves on, since a station that is active again at once continues its period.
    closing: Vec<(u32, Micros)>,
    closing_at: Micros,
    /// Closed periods whose start the sweep has not reached: `(station, period)`.
    pending: Vec<(u32, Period)>,
    /// Everything before this moment is final.
    frontier: Micros,
    /// Scratch space of `advance` (boundary points), kept to spare an allocation a sweep.
    points: Vec<(Micros, bool, Key)>,
    /// Closed periods covering the frontier.
    covering: BTreeSet<Key>,
    /// The momentary bottleneck's segment in progress at the frontier.
    current: Option<Segment>,
    /// Sole and shifting time since `from`, per station, of finished segments.
    totals: Vec<(Micros, Micros)>,
    /// The same time in one-minute buckets for the sliding windows of [`WINDOWS`].
    ring: Ring,
}

impl LiveBottlenecks {
    pub fn new(n_stations: usize, from: Micros) -> LiveBottlenecks {
        LiveBottlenecks {
            from,
            open: vec![None; n_stations],
            closing: Vec::new(),
            closing_at: from,
            pending: Vec::new(),
            frontier: from,
            points: Vec::new(),
            covering: BTreeSet::new(),
            current: None,
            totals: vec![(0, 0); n_stations],
            ring: Ring::new(n_stations),
        }
    }

    /// Opens (`active`) or closes a station's period at `now`.
    #[inline(never)]
    pub fn toggle(&mut self, station: usize, active: bool, now: Micros) {
        if active { self.open(station, now) } else { self.close(station, now) }
    }

    /// Whether a station's active period is open.
    #[inline]
    pub fn is_open(&self, station: usize) -> bool {
        self.open[station].is_some()
    }

    /// The station whose open period is the longest so far (started first; lower index on
    /// a tie): the momentary bottleneck as far as is known now.
    pub fn longest_open(&self) -> Option<usize> {
        self.open.iter().enumerate().filter_map(|(i, since)| since.map(|t| (t, i))).min().map(|(_, i)| i)
    }

    /// A station became active at `now`.
    pub fn open(&mut self, station: usize, now: Micros) {
        debug_assert!(self.open[station].is_none());
        if now == self.closing_at
            && let Some(i) = self.closing.iter().position(|&(s, _)| s as usize == station)
        {
            // Inactive for no time at all (one job done, the next begun): the same period.
            self.open[station] = Some(self.closing.swap_remove(i).1);
            return;
        }
        self.open[station] = Some(now);
    }

    /// A station stopped being active at `now`. The period closes for good once time
    /// moves on without the station becoming active again.
    #[inline]
    pub fn close(&mut self, station: usize, now: Micros) {
        if self.open[station].is_none() {
            return;
        }
        if now != self.closing_at {
            // Before this station's period leaves `open`: the sweep must see it somewhere.
            self.flush();
            self.closing_at = now;
        }
        let start = self.open[station].take().expect("checked above");
        self.closing.push((station as u32, start));
    }

    /// Hands the periods that closed at `closing_at` to the sweep.
    #[inline]
    fn flush(&mut self) {
        let end = self.closing_at;
        if let [(station, start)] = self.closing[..]
            && self.pending.is_empty()
            && self.covering.is_empty()
        {
            self.closing.clear();
            if end > start && end > self.from {
                self.sweep_alone(station, (start, end));
            }
            return;
        }
        for (station, start) in self.closing.drain(..) {
            if end > start && end > self.from {
                self.pending.push((station, (start, end)));
            }
        }
        if self.pending.len() > PENDING_PER_STATION * self.open.len() + 16 {
            self.advance(end);
        }
    }

    /// Hands one closed period to the sweep when nothing else waits (no pending period,
    /// none covering the frontier): when no open period starts before its end (a lone
    /// station, or stations taking turns with idle time between), it is final and swept at
    /// once, as `advance` would sweep it (its `apart` case), without the pending list.
    #[inline]
    fn sweep_alone(&mut self, station: u32, period: Period) {
        let end = period.1;
        if self.open.iter().all(|open| open.is_none_or(|since| since > end)) {
            let start = period.0.max(self.from);
            let key = Key::of(station, period);
            if start > self.frontier {
                // What the two `emit_under` below do when idle time lies before the
                // period: the segment in progress ends, the period's own begins alone.
                self.finish_segment(None);
                self.current = Some(Segment { start, end, key, overlap_prev: None });
                self.frontier = end;
            } else {
                self.emit_under(start, None);
                self.emit_under(end, Some(key));
            }
        } else {
            self.pending.push((station, period));
        }
    }

    /// Starts a new window at `now` (the end of the warm-up); open periods stay open and
    /// keep their whole length.
    pub fn reset(&mut self, now: Micros) {
        let open = std::mem::take(&mut self.open);
        *self = LiveBottlenecks::new(open.len(), now);
        self.open = open;
    }

    /// Rankings at `now`: since the window start (as [`analyse`] gives it over the same
    /// periods) and over the sliding windows of [`WINDOWS`], from one settled copy.
    ///
    /// [`analyse`]: crate::report::bottleneck::analyse
    pub fn rankings(&self, now: Micros) -> Rankings {
        let settled = self.settled(now);
        let shares = settled
            .totals
            .iter()
            .enumerate()
            .map(|(station, &(sole, shifting))| BottleneckShare { station, sole, shifting })
            .collect();
        Rankings {
            total: rank(shares),
            recent: WINDOWS.iter().map(|&w| (w, settled.ring.shares(now, w))).collect(),
        }
    }

    /// A copy with every open period closed at `now` and the sweep run to `now`.
    fn settled(&self, now: Micros) -> LiveBottlenecks {
        let mut copy = self.clone();
        for station in 0..copy.open.len() {
            copy.close(station, now);
        }
        copy.flush();
        copy.advance(now);
        copy.finish_segment(None);
        copy
    }

    /// Sweeps to the frontier that `now` allows and drops what can no longer matter.
    fn advance(&mut self, now: Micros) {
        let frontier = self.open.iter().flatten().copied().min().unwrap_or(now).max(self.frontier);
        // Boundary points before the frontier: (time, is_start, key); ends first at a time.
        let mut points = std::mem::take(&mut self.points);
        points.clear();
        for key in &self.covering {
            let end = key.period().1;
            if end < frontier {
                points.push((end, false, *key));
            }
        }
        let from = self.from;
        self.pending.retain(|&(station, period)| {
            let start = period.0.max(from);
            if start >= frontier {
                return true;
            }
            let key = Key::of(station, period);
            points.push((start, true, key));
            if period.1 < frontier {
                points.push((period.1, false, key));
            }
            false
        });
        if self.covering.is_empty() && apart(&points) {
            // Periods apart in time, none covering the frontier (a lone station, or
            // stations taking turns with idle time between): the sweep below would see
            // them in this order and hold each alone, so it runs without the sort and the
            // ordered set.
            for pair in points.chunks_exact(2) {
                let ((start, _, key), (end, ..)) = (pair[0], pair[1]);
                self.emit_under(start, None);
                self.emit_under(end, Some(key));
            }
        } else {
            points.sort_unstable_by_key(|&(t, is_start, key)| (t, is_start, key.station(), key.start));
            let mut idx = 0;
            while idx < points.len() {
                let t = points[idx].0;
                self.emit(t);
                while idx < points.len() && points[idx].0 == t {
                    let (_, is_start, key) = points[idx];
                    if is_start {
                        self.covering.insert(key);
                    } else {
                        self.covering.remove(&key);
                    }
                    idx += 1;
                }
            }
        }
        self.points = points;
        self.emit(frontier);
        // Closed periods from the frontier on that the open period starting there beats.
        let beaten = now.saturating_sub(frontier);
        self.pending.retain(|&(_, (start, end))| start < frontier || end - start >= beaten);
    }

    /// Assigns `[frontier, t)` to the momentary bottleneck there and moves the frontier.
    fn emit(&mut self, t: Micros) {
        self.emit_under(t, self.covering.last().copied());
    }

    /// [`Self::emit`] with the longest period covering `[frontier, t)` given.
    fn emit_under(&mut self, t: Micros, top: Option<Key>) {
        if t <= self.frontier {
            return;
        }
        let start = self.frontier;
        self.frontier = t;
        let Some(top) = top else {
            self.finish_segment(None);
            return;
        };
        match &mut self.current {
            Some(seg) if seg.key == top && seg.end == start => seg.end = t,
            _ => {
                let prev = self.current.filter(|seg| seg.end == start).map(|seg| seg.key);
                let overlap = prev
                    .filter(|p| p.station() != top.station())
                    .and_then(|p| overlap(p.period(), top.period(), self.from));
                self.finish_segment(overlap);
                if let (Some(o), Some(p)) = (overlap, prev) {
                    self.credit_shifting(p.station(), o);
                    self.credit_shifting(top.station(), o);
                }
                self.current = Some(Segment { start, end: t, key: top, overlap_prev: overlap });
            }
        }
    }

    fn credit_shifting(&mut self, station: u32, o: Period) {
        self.totals[station as usize].1 += o.1 - o.0;
        self.ring.add(station, true, o, 1);
    }

    /// Closes the segment in progress, given its overlap with the next one.
    #[inline(always)]
    fn finish_segment(&mut self, overlap_next: Option<Period>) {
        let Some(seg) = self.current.take() else { return };
        let station = seg.key.station();
        let span = (seg.start, seg.end);
        if seg.overlap_prev.is_none() && overlap_next.is_none() {
            // No shifting on either side (a lone station, or stations taking turns with
            // idle time between): the whole segment is sole time.
            self.ring.add(station, false, span, 1);
            self.totals[station as usize].0 += seg.end - seg.start;
            return;
        }
        let cuts = [seg.overlap_prev, overlap_next]
            .map(|o| o.map(|o| (span.0.max(o.0), span.1.min(o.1))).filter(|cut| cut.1 > cut.0));
        let shifted: Micros = cuts.iter().flatten().map(|c| c.1 - c.0).sum();
        // As in `analyse`: the segment less its shifting parts, never below zero (the two
        // overlaps can cover the same stretch of a short segment).
        let sole = (seg.end - seg.start).saturating_sub(shifted);
        if sole > 0 {
            self.ring.add(station, false, span, 1);
            for &cut in cuts.iter().flatten() {
                self.ring.add(station, false, cut, -1);
            }
        }
        self.totals[station as usize].0 += sole;
    }
}

/// Whether boundary points, as `advance` collects them, are start-end pairs of one
/// period each, in strictly ascending time: sorting would not move them, and no two
/// periods cover one moment or touch.
fn apart(points: &[(Micros, bool, Key)]) -> bool {
    points.len().is_multiple_of(2)
        && points.chunks_exact(2).all(|p| p[0].1 && !p[1].1 && p[0].2 == p[1].2)
        && points.windows(2).all(|w| w[0].0 < w[1].0)
}

/// The overlap of two periods inside the window from `from`.
fn overlap(a: Period, b: Period, from: Micros) -> Option<Period> {
    let start = a.0.max(b.0).max(from);
    let end = a.1.min(b.1);
    (end > start).then_some((start, end))
}

/// Stations that were ever the bottleneck, by sole + shifting time, ties to the lower index.
fn rank(mut shares: Vec<BottleneckShare>) -> Vec<BottleneckShare> {
    shares.retain(|s| s.sole + s.shifting > 0);
    shares.sort_by(|a, b| (b.sole + b.shifting).cmp(&(a.sole + a.shifting)).then(a.station.cmp(&b.station)));
    shares
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::report::bottleneck::analyse;

    /// Random on/off histories: per station, alternating inactive and active stretches.
    fn histories(rng: &mut ChaCha8Rng, n: usize, horizon: Micros, long: bool) -> Vec<Vec<Period>> {
        (0..n)
            .map(|s| {
                let mut periods = Vec::new();
                let mut t = rng.random_range(0..20);
                while t < horizon {
                    let max_len = if long && s == 0 { horizon } else { 40 };
                    let len = rng.random_range(1..=max_len);
                    periods.push((t, (t + len).min(horizon)));
                    // Now and then no gap at all: one job ends as the next begins.
                    t += len + if rng.random_range(0..4) == 0 { 0 } else { rng.random_range(1..30) };
                }
                periods
            })
            .collect()
    }

    /// Feeds the histories in time order, stopping at `now`, resetting at `from`; returns
    /// the live ranking and the batch one over the same periods.
    fn both(
        histories: &[Vec<Period>],
        from: Micros,
        now: Micros,
    ) -> (Vec<BottleneckShare>, Vec<BottleneckShare>) {
        let mut events: Vec<(Micros, bool, usize)> = Vec::new();
        for (s, list) in histories.iter().enumerate() {
            for &(a, b) in list {
                events.push((a, true, s));
                events.push((b, false, s));
            }
        }
        events.sort_by_key(|&(t, is_start, s)| (t, is_start, s));
        let mut live = LiveBottlenecks::new(histories.len(), 0);
        let mut reset = false;
        for &(t, is_start, s) in &events {
            if t > now {
                break;
            }
            if !reset && t >= from {
                live.reset(from);
                reset = true;
            }
            if is_start {
                live.open(s, t);
            } else {
                live.close(s, t);
            }
        }
        if !reset {
            live.reset(from);
        }
        // The batch sweep sees touching periods of a station as one, cut at `now`.
        let clipped: Vec<Vec<Period>> = histories
            .iter()
            .map(|list| {
                let mut merged: Vec<Period> = Vec::new();
                for &(a, b) in list.iter().filter(|p| p.0 < now) {
                    match merged.last_mut() {
                        Some(last) if last.1 == a => last.1 = b,
                        _ => merged.push((a, b)),
                    }
                }
                merged.into_iter().map(|(a, b)| (a, b.min(now))).collect()
            })
            .collect();
        (live.rankings(now).total, analyse(&clipped, from, now))
    }

    #[test]
    fn equals_the_batch_sweep_on_random_histories() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut with_shifts = 0;
        for case in 0..400 {
            let n = rng.random_range(1..8);
            let horizon = rng.random_range(50..3_000);
            let h = histories(&mut rng, n, horizon, case % 3 == 0);
            let from = rng.random_range(0..horizon / 2);
            let now = rng.random_range(from + 1..=horizon + 10);
            let (live, batch) = both(&h, from, now);
            assert_eq!(live, batch, "case {case}: n {n}, from {from}, now {now}, {h:?}");
            with_shifts += usize::from(batch.iter().any(|s| s.shifting > 0));
        }
        assert!(with_shifts > 200, "only {with_shifts} cases exercise shifting bottlenecks");
    }

    #[test]
    fn memory_stays_bounded_while_one_station_never_stops() {
        let n = 20;
        let mut live = LiveBottlenecks::new(n, 0);
        live.open(0, 0);
        let mut t = 0;
        let mut most = 0;
        for _ in 0..200_000 {
            for s in 1..n {
                live.open(s, t + s as u64);
                live.close(s, t + s as u64 + 5);
            }
            t += 100;
            most = most.max(live.pending.len() + live.covering.len());
        }
        assert!(most <= PENDING_PER_STATION * n + 17 + n, "{most} periods held");
        let ranking = live.rankings(t).total;
        assert_eq!(ranking[0].station, 0);
        assert_eq!(ranking[0].sole + ranking[0].shifting, t);
    }

    #[test]
    fn ring_equals_per_bucket_sums_on_random_stretches() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for case in 0..200 {
            let n = rng.random_range(1..5usize);
            let horizon = rng.random_range(1..4 * N_BUCKETS) * BUCKET + rng.random_range(0..BUCKET);
            let mut ring = Ring::new(n);
            let mut added: Vec<(usize, bool, Period, i64)> = Vec::new();
            for _ in 0..rng.random_range(1..60) {
                let station = rng.random_range(0..n);
                let a = rng.random_range(0..horizon);
                let len = if rng.random_range(0..3) == 0 {
                    rng.random_range(1..2 * N_BUCKETS * BUCKET)
                } else {
                    rng.random_range(1..5 * BUCKET)
                };
                let b = (a + len).min(horizon);
                let shifting = rng.random_range(0..2) == 0;
                let sign = if rng.random_range(0..4) == 0 { -1 } else { 1 };
                ring.add(station as u32, shifting, (a, b), sign);
                added.push((station, shifting, (a, b), sign));
            }
            for window in WINDOWS {
                let last = (horizon - 1) / BUCKET;
                let first = (last + 1).saturating_sub(window / BUCKET);
                let (lo, hi) = (first * BUCKET, (last + 1) * BUCKET);
                let mut sums = vec![(0i64, 0i64); n];
                for &(station, shifting, (a, b), sign) in &added {
                    let amount = sign * (b.min(hi).saturating_sub(a.max(lo))) as i64;
                    if shifting {
                        sums[station].1 += amount;
                    } else {
                        sums[station].0 += amount;
                    }
                }
                let expected = rank(
                    sums.into_iter()
                        .enumerate()
                        .map(|(station, (sole, shifting))| BottleneckShare {
                            station,
                            sole: sole.max(0) as Micros,
                            shifting: shifting.max(0) as Micros,
                        })
                        .collect(),
                );
                assert_eq!(ring.shares(horizon, window), expected, "case {case}, window {window}");
            }
        }
    }

    #[test]
    fn sliding_windows_see_only_their_time() {
        let hour = WINDOWS[0];
        let mut live = LiveBottlenecks::new(2, 0);
        // Station 0 active through the first day, then station 1 for the last two hours.
        live.open(0, 0);
        live.close(0, 22 * hour);
        live.open(1, 22 * hour);
        let now = 24 * hour;
        let windows = live.rankings(now).recent;
        assert_eq!(windows[0].1, vec![BottleneckShare { station: 1, sole: hour, shifting: 0 }]);
        let day = &windows[2].1;
        assert_eq!(day[0], BottleneckShare { station: 0, sole: 22 * hour, shifting: 0 });
        assert_eq!(day[1], BottleneckShare { station: 1, sole: 2 * hour, shifting: 0 });
    }
}

//! Where parts come from: Poisson and fixed-interval arrivals with a product mix,
//! release schedules, and saturated sources (which feed their first station whenever a
//! server is free). A released part takes its bought-in materials from stock and goes to
//! its first station; when either is not possible yet, it waits in its source's backlog,
//! in release order.

use rand::RngExt;
use rand_distr::{Distribution, Exp1};

use super::{Cx, Flow, Holder, Logistics, Part};
use crate::model::{Model, ProductIdx, Release};
use crate::sim::agenda::Event;
use crate::sim::handoff::{MaterialWaiter, PartId};
use crate::time::{HOUR, Micros};

impl Flow {
    /// Schedules every source's first arrival or release.
    pub(super) fn start_sources(&mut self, cx: &mut Cx<'_, impl Logistics>) {
        for (i, src) in cx.model.sources.iter().enumerate() {
            let source = i as u32;
            match &src.release {
                Release::Poisson { .. } => {
                    let gap = self.poisson_gap(source);
                    cx.agenda.schedule(gap, Event::Arrival { source });
                }
                Release::Interval(gap) => cx.agenda.schedule(*gap, Event::Arrival { source }),
                Release::Schedule(rows) => {
                    if let Some(first) = rows.first() {
                        cx.agenda.schedule(first.0, Event::Release { source, row: 0 });
                    }
                }
                Release::Saturated => {}
            }
        }
    }

    #[inline(always)]
    fn poisson_gap(&mut self, source: u32) -> Micros {
        let src = &mut self.sources[source as usize];
        let e: f64 = Exp1.sample(&mut src.rng);
        // `round_draw` of a non-negative draw; a gap is at least 1 µs.
        crate::dist::round_draw(e * src.mean_gap).max(1)
    }

    /// A source's next part arrives; the one after it is scheduled. The source's model
    /// is looked up once: this runs for every part a source releases (and always
    /// inlined into the event loop, for the same reason).
    #[inline(always)]
    pub fn on_arrival(&mut self, cx: &mut Cx<'_, impl Logistics>, source: u32) {
        let model_source = &cx.model.sources[source as usize];
        let now = cx.agenda.now();
        let product = self.pick_product(&model_source.mix, source);
        let due = model_source.due.map_or(Micros::MAX, |d| now + d);
        let part = self.new_part(now, due, product);
        self.admit(cx, source, part);
        let gap = match model_source.release {
            Release::Interval(gap) => gap,
            _ => self.poisson_gap(source),
        };
        cx.agenda.schedule(now + gap, Event::Arrival { source });
    }

    /// Row `row` of a source's release schedule is due.
    pub fn on_release(&mut self, cx: &mut Cx<'_, impl Logistics>, source: u32, row: u32) {
        let model = cx.model;
        let Release::Schedule(rows) = &model.sources[source as usize].release else {
            return;
        };
        let (_, product, quantity) = rows[row as usize];
        for _ in 0..quantity {
            let part = self.create_part(model, cx.agenda.now(), source, product);
            self.admit(cx, source, part);
        }
        if let Some(next) = rows.get(row as usize + 1) {
            cx.agenda.schedule(next.0.max(cx.agenda.now()), Event::Release { source, row: row + 1 });
        }
    }

    /// A product drawn from a source's `mix` (no draw when it has one product).
    #[inline(always)]
    fn pick_product(&mut self, mix: &[(f64, ProductIdx)], source: u32) -> ProductIdx {
        if mix.len() == 1 {
            return mix[0].1;
        }
        let u: f64 = self.sources[source as usize].rng.random();
        let idx = mix.partition_point(|m| m.0 <= u).min(mix.len() - 1);
        mix[idx].1
    }

    /// A new part of `product` released by `source` (`u32::MAX` for none: a rush order).
    #[inline(always)]
    pub(super) fn create_part(
        &mut self,
        model: &Model,
        now: Micros,
        source: u32,
        product: ProductIdx,
    ) -> PartId {
        let due = model.sources.get(source as usize).and_then(|s| s.due).map_or(Micros::MAX, |d| now + d);
        self.new_part(now, due, product)
    }

    /// A new part of `product` released now, due at `due` (`Micros::MAX`: none).
    #[inline(always)]
    fn new_part(&mut self, now: Micros, due: Micros, product: ProductIdx) -> PartId {
        self.totals.part_created(now, product as usize);
        let part = Part {
            product,
            step: 0,
            created: now,
            due,
            since: now,
            materials_taken: false,
            rush_order: None,
        };
        match self.free_parts.pop() {
            Some(id) => {
                self.parts[id as usize] = part;
                id
            }
            None => {
                self.parts.push(part);
                (self.parts.len() - 1) as PartId
            }
        }
    }

    /// Hands a newly released part to its first station, or parks it in the source's
    /// backlog (keeping release order) when there is no room.
    #[inline(always)]
    fn admit(&mut self, cx: &mut Cx<'_, impl Logistics>, source: u32, part: PartId) {
        if self.sources[source as usize].backlog.is_empty() && self.release(cx, source, part) {
            return;
        }
        self.sources[source as usize].backlog.push_back(part);
    }

    /// Takes the part's materials from stock and hands it to its first station; false
    /// (and the source registered as a waiter) when either is not possible yet.
    #[inline(always)]
    pub(super) fn release(&mut self, cx: &mut Cx<'_, impl Logistics>, source: u32, part: PartId) -> bool {
        let p = self.parts[part as usize];
        if !p.materials_taken && !cx.model.products[p.product as usize].materials.is_empty() {
            if !cx.logistics.materials_available(cx.model, p.product) {
                cx.logistics.wait_for_material(cx.model, MaterialWaiter::Source(source), p.product);
                return false;
            }
            cx.logistics.consume_materials(cx.model, cx.agenda, p.product);
            self.parts[part as usize].materials_taken = true;
        }
        self.dispatch(cx, part, Holder::Source(source))
    }

    /// Sets the Poisson arrival rate of source `source` from its next arrival on.
    pub(crate) fn set_arrival_rate(&mut self, source: usize, per_hour: f64) {
        self.sources[source].mean_gap = HOUR as f64 / per_hour;
    }
}

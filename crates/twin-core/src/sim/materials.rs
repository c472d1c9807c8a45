//! Bought-in materials: supplier -> hub -> factories.
//!
//! Owns the stock at the hub and at every factory, what is on order from the supplier
//! and on its way to factories, the factories' backorders at the hub, and who waits for
//! material. A factory reorders from the hub when its stock plus what is on its way falls
//! to its reorder point; the hub reorders from the supplier likewise and fills
//! backorders first come, first served when a delivery arrives. Material leaves the hub
//! by truck when the complex has trucks and the factory a dock (through [`Haul`]), else
//! it arrives at once.
//!
//! Knows nothing of parts, stations or vehicles: a release that finds no material is
//! registered as a [`MaterialWaiter`] and handed back by [`Materials::take_waiters`]
//! when material arrives.

use std::collections::VecDeque;

use crate::model::{Model, ProductIdx};
use crate::sim::agenda::{Agenda, Event, Followup};
use crate::sim::handoff::{Cargo, Haul, MaterialWaiter};
use crate::time::Micros;

/// All material stock of a run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Materials {
    /// One per `Model::materials` entry.
    stock: Vec<Stock>,
    /// Releases waiting for material, each once.
    waiters: Vec<MaterialWaiter>,
    /// Factory whose stock a product's release draws on (that of its first station).
    product_factory: Vec<Option<u32>>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Stock {
    /// Units at the hub.
    hub: u32,
    /// Units ordered from the supplier, not yet arrived.
    on_order: u32,
    /// Units at each factory.
    factory: Vec<u32>,
    /// Units on their way from the hub to each factory.
    on_way: Vec<u32>,
    /// Factory requests the hub could not fill yet: `(factory, quantity)`, oldest first.
    backorders: VecDeque<(u32, u32)>,
    /// Integral of hub stock over time up to `hub_last` (units x microseconds).
    hub_area: u128,
    hub_last: Micros,
    /// Lowest hub stock since the statistics were reset.
    hub_min: u32,
    /// Time with backorders, closed periods, and the start of the open one.
    stockout: u64,
    stockout_since: Option<Micros>,
    /// Supplier orders placed since the statistics were reset.
    supplier_orders: u64,
    /// Releases that had to wait for this material.
    shortages: u64,
}

impl Stock {
    fn touch(&mut self, now: Micros) {
        self.hub_area += u128::from(now - self.hub_last) * u128::from(self.hub);
        self.hub_last = now;
    }

    fn update_stockout(&mut self, now: Micros) {
        let out = !self.backorders.is_empty();
        match (out, self.stockout_since) {
            (true, None) => self.stockout_since = Some(now),
            (false, Some(since)) => {
                self.stockout += now - since;
                self.stockout_since = None;
            }
            _ => {}
        }
    }
}

/// One material's stock now, for live views and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaterialView<'a> {
    /// Units at the hub.
    pub hub: u32,
    /// Units ordered from the supplier, not yet arrived.
    pub on_order: u32,
    /// Units in stock at each factory, by factory index.
    pub factory: &'a [u32],
    /// Units ordered by each factory from the hub, not yet delivered.
    pub on_way: &'a [u32],
    /// Times a release had to wait for this material since the statistics were reset.
    pub shortages: u64,
}

/// One material's figures over the statistics window, for the report.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StockFigures<'a> {
    pub hub_now: u32,
    /// Integral of hub stock (units x microseconds).
    pub hub_area: u128,
    pub hub_min: u32,
    /// Microseconds with factory requests the hub could not fill.
    pub stockout: u64,
    pub supplier_orders: u64,
    pub shortages: u64,
    /// Stock at each factory now.
    pub factory: &'a [u32],
}

impl Materials {
    /// The scene's initial stock everywhere, nothing on order.
    pub fn new(model: &Model, now: Micros) -> Materials {
        let n_factories = model.factories.len();
        let mut stock: Vec<Stock> = model
            .materials
            .iter()
            .map(|m| Stock {
                hub: m.hub_initial,
                on_order: 0,
                factory: vec![0; n_factories],
                on_way: vec![0; n_factories],
                backorders: VecDeque::new(),
                hub_area: 0,
                hub_last: now,
                hub_min: m.hub_initial,
                stockout: 0,
                stockout_since: None,
                supplier_orders: 0,
                shortages: 0,
            })
            .collect();
        let product_factory: Vec<Option<u32>> =
            model.products.iter().map(|p| model.release_factory(p)).collect();
        // Only the factories whose products draw on a material start with stock of it.
        for (product, factory) in model.products.iter().zip(&product_factory) {
            let Some(f) = *factory else { continue };
            for &(m, _) in &product.materials {
                stock[m as usize].factory[f as usize] = model.materials[m as usize].factory_initial;
            }
        }
        Materials { stock, waiters: Vec::new(), product_factory }
    }

    /// Whether the materials for one unit of `product` are in stock at its factory.
    pub fn available(&self, model: &Model, product: ProductIdx) -> bool {
        let needs = &model.products[product as usize].materials;
        if needs.is_empty() {
            return true;
        }
        let Some(factory) = self.product_factory[product as usize] else { return true };
        needs.iter().all(|&(m, qty)| self.stock[m as usize].factory[factory as usize] >= qty)
    }

    /// Takes the materials of one unit of `product` from its factory's stock (the caller
    /// checked [`Materials::available`]) and reorders what fell to its reorder point.
    pub fn consume(&mut self, model: &Model, agenda: &mut Agenda, product: ProductIdx, haul: &mut impl Haul) {
        let needs = &model.products[product as usize].materials;
        if needs.is_empty() {
            return;
        }
        let Some(factory) = self.product_factory[product as usize] else { return };
        for &(m, qty) in needs {
            self.stock[m as usize].factory[factory as usize] -= qty;
            self.reorder_for_factory(model, agenda, m, factory, haul);
        }
    }

    /// Registers `waiter` as waiting for the materials of `product` (counted as a
    /// shortage of each of them the first time).
    pub fn wait(&mut self, model: &Model, waiter: MaterialWaiter, product: ProductIdx) {
        if !self.waiters.contains(&waiter) {
            self.waiters.push(waiter);
            for &(m, _) in &model.products[product as usize].materials {
                self.stock[m as usize].shortages += 1;
            }
        }
    }

    /// Everything waiting for material, in the order it began to wait; forgotten here
    /// (a waiter that still finds none registers again).
    pub fn take_waiters(&mut self) -> Vec<MaterialWaiter> {
        std::mem::take(&mut self.waiters)
    }

    fn reorder_for_factory(
        &mut self,
        model: &Model,
        agenda: &mut Agenda,
        material: u32,
        factory: u32,
        haul: &mut impl Haul,
    ) {
        let spec = &model.materials[material as usize];
        let (reorder, qty) = (spec.factory_reorder, spec.factory_order);
        let s = &mut self.stock[material as usize];
        if s.factory[factory as usize] + s.on_way[factory as usize] > reorder {
            return;
        }
        s.on_way[factory as usize] += qty;
        if s.hub >= qty && s.backorders.is_empty() {
            s.touch(agenda.now());
            s.hub -= qty;
            s.hub_min = s.hub_min.min(s.hub);
            self.ship(model, agenda, material, factory, qty, haul);
        } else {
            s.backorders.push_back((factory, qty));
            s.update_stockout(agenda.now());
        }
        self.reorder_for_hub(model, agenda, material);
    }

    fn reorder_for_hub(&mut self, model: &Model, agenda: &mut Agenda, material: u32) {
        let spec = &model.materials[material as usize];
        let s = &mut self.stock[material as usize];
        let backordered: u32 = s.backorders.iter().map(|b| b.1).sum();
        if s.hub + s.on_order > spec.reorder_point + backordered {
            return;
        }
        let qty = spec.order_quantity.max(backordered);
        s.on_order += qty;
        s.supplier_orders += 1;
        agenda.schedule(agenda.now() + spec.lead_time, Event::SupplyArrive { material, qty });
    }

    /// A supplier delivery reached the hub: fills backorders, then reorders if needed.
    pub fn on_supply(
        &mut self,
        model: &Model,
        agenda: &mut Agenda,
        material: u32,
        qty: u32,
        haul: &mut impl Haul,
    ) {
        let now = agenda.now();
        let s = &mut self.stock[material as usize];
        s.touch(now);
        s.hub += qty;
        s.on_order -= qty;
        let mut shipments = Vec::new();
        while let Some(&(factory, want)) = s.backorders.front() {
            if s.hub < want {
                break;
            }
            s.hub -= want;
            s.backorders.pop_front();
            shipments.push((factory, want));
        }
        s.hub_min = s.hub_min.min(s.hub);
        s.update_stockout(now);
        for (factory, want) in shipments {
            self.ship(model, agenda, material, factory, want, haul);
        }
        self.reorder_for_hub(model, agenda, material);
    }

    /// Sends material from the hub to a factory: by truck when there is a lane for it,
    /// otherwise straight away.
    fn ship(
        &mut self,
        model: &Model,
        agenda: &mut Agenda,
        material: u32,
        factory: u32,
        qty: u32,
        haul: &mut impl Haul,
    ) {
        match model.material_lane(factory) {
            Some((hub, dock)) => {
                haul.haul(model, agenda, hub, dock, Cargo::Material { material, factory, qty })
            }
            None => self.deliver(agenda, material, factory, qty),
        }
    }

    /// Material reached a factory; whatever waits for material gets a retry.
    pub fn deliver(&mut self, agenda: &mut Agenda, material: u32, factory: u32, qty: u32) {
        let s = &mut self.stock[material as usize];
        s.factory[factory as usize] += qty;
        s.on_way[factory as usize] -= qty;
        if !self.waiters.is_empty() {
            agenda.follow_up(Followup::Material);
        }
    }

    /// Restarts the statistics at `now` (end of warm-up); the stock carries on.
    pub fn reset_statistics(&mut self, now: Micros) {
        for s in &mut self.stock {
            s.hub_area = 0;
            s.hub_last = now;
            s.hub_min = s.hub;
            s.stockout = 0;
            if s.stockout_since.is_some() {
                s.stockout_since = Some(now);
            }
            s.supplier_orders = 0;
            s.shortages = 0;
        }
    }

    /// Material `material`'s figures up to `now`.
    pub fn view(&self, material: usize) -> MaterialView<'_> {
        let m = &self.stock[material];
        MaterialView {
            hub: m.hub,
            on_order: m.on_order,
            factory: &m.factory,
            on_way: &m.on_way,
            shortages: m.shortages,
        }
    }

    pub fn figures(&self, material: usize, now: Micros) -> StockFigures<'_> {
        let s = &self.stock[material];
        StockFigures {
            hub_now: s.hub,
            hub_area: s.hub_area + u128::from(now - s.hub_last) * u128::from(s.hub),
            hub_min: s.hub_min,
            stockout: s.stockout + s.stockout_since.map_or(0, |since| now - since),
            supplier_orders: s.supplier_orders,
            shortages: s.shortages,
            factory: &s.factory,
        }
    }

    /// Whether some product's releases draw on `factory`'s stock.
    pub fn stocked_at(&self, factory: u32) -> bool {
        self.product_factory.contains(&Some(factory))
    }
}

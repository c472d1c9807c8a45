//! How parts move through the model: the routing decisions the simulation makes and the
//! server shows. Pure functions of the model, decided here once for both.

use std::collections::BTreeMap;

use super::types::{Model, Product, Release, StationIdx};

/// How a part travels from a station to the next station of its routing
/// ([`Model::route`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// On the conveyor with this index.
    Conveyor(u32),
    /// By AGV of `fleet` from node `from` to node `to` of the fleet's path graph.
    Agv { fleet: u32, from: u32, to: u32 },
    /// By truck from road node `from` (a dock) to road node `to` (another dock).
    Truck { from: u32, to: u32 },
    /// Straight into the next station's buffer.
    Direct,
}

/// One end of a possible flow of parts. Ordered by kind (in this order), then index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Station(StationIdx),
    Source(u32),
    Sink(u32),
    /// The shared hub that finished parts are shipped to.
    Hub,
}

/// A directed link along which parts can flow, derived from the routings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowLink {
    pub from: Endpoint,
    pub to: Endpoint,
    /// How parts travel along it: between stations as [`Model::route`] decides; from
    /// sources and to sinks directly; to the hub by truck from the factory's dock.
    pub route: Route,
}

impl Model {
    /// The AGV lane `(fleet, pickup node, drop node)` that carries a part from station
    /// `from` to station `to`, if any: the step's own fleet (`carry`), else the factory's
    /// when both stations stand in it, provided both have nodes on that fleet's graph.
    pub fn agv_lane(&self, from: StationIdx, to: StationIdx, carry: Option<u32>) -> Option<(u32, u32, u32)> {
        let (a, b) = (&self.stations[from as usize], &self.stations[to as usize]);
        let fleet = carry.or_else(|| {
            let f = a.factory?;
            (b.factory == Some(f)).then(|| self.factories[f as usize].agv).flatten()
        })?;
        let graph = self.fleets[fleet as usize].graph;
        match (a.node, b.node) {
            (Some((ga, na)), Some((gb, nb))) if ga == graph && gb == graph && na != nb => {
                Some((fleet, na, nb))
            }
            _ => None,
        }
    }

    /// How a part travels from station `from` to station `to`, the next station of its
    /// routing (whose step names fleet `carry`, if any): on the conveyor between them if
    /// there is one; else by AGV when the step or the factory names a fleet whose graph
    /// both stations stand on; else by truck when they stand in different factories with
    /// docks (and the complex has trucks); else directly into the buffer.
    #[inline]
    pub fn route(&self, from: StationIdx, to: StationIdx, carry: Option<u32>) -> Route {
        for &(target, c) in &self.stations[from as usize].conveyors_out {
            if target == to {
                return Route::Conveyor(c);
            }
        }
        if (carry.is_some() || !self.fleets.is_empty())
            && let Some((fleet, a, b)) = self.agv_lane(from, to, carry)
        {
            return Route::Agv { fleet, from: a, to: b };
        }
        let (fa, fb) = (self.stations[from as usize].factory, self.stations[to as usize].factory);
        if fa != fb
            && self.has_trucks()
            && let (Some(fa), Some(fb)) = (fa, fb)
            && let (Some(da), Some(db)) = (self.factories[fa as usize].dock, self.factories[fb as usize].dock)
            && da != db
        {
            return Route::Truck { from: da, to: db };
        }
        Route::Direct
    }

    /// The road lane `(dock, hub)` by which parts that finish their routing at `station`
    /// are shipped: when the complex has trucks and the station's factory a dock other
    /// than the hub.
    pub fn shipping_lane(&self, station: StationIdx) -> Option<(u32, u32)> {
        if !self.has_trucks() {
            return None;
        }
        let factory = self.stations[station as usize].factory?;
        let dock = self.factories[factory as usize].dock?;
        let (_, hub) = self.roads.as_ref()?;
        (dock != *hub).then_some((dock, *hub))
    }

    /// Whether the complex has trucks (a road network and a truck pool).
    pub fn has_trucks(&self) -> bool {
        self.trucks.is_some() && self.roads.is_some()
    }

    /// The factory whose material stock a release of `product` draws on: that of the
    /// first station of its first step.
    pub fn release_factory(&self, product: &Product) -> Option<u32> {
        product.steps.first().and_then(|s| s.at.first()).and_then(|&st| self.stations[st as usize].factory)
    }

    /// The road lane `(hub, dock)` by which material reaches `factory`: by truck when the
    /// complex has trucks and the factory a dock; None means it arrives at once.
    pub fn material_lane(&self, factory: u32) -> Option<(u32, u32)> {
        let dock = self.factories[factory as usize].dock?;
        let (_, hub) = self.roads.as_ref()?;
        self.has_trucks().then_some((*hub, dock))
    }

    /// Every link along which parts can flow, one per `(from, to)` pair, ordered by
    /// `(from, to)`: from sources to the first stations of their products, between the
    /// stations of consecutive routing steps, and from the last stations to the
    /// product's sink and, when finished parts are shipped, to the hub. Should two
    /// products move parts between the same two stations by different means, the first
    /// routing's is kept.
    pub fn flow_links(&self) -> Vec<FlowLink> {
        let mut links: BTreeMap<(Endpoint, Endpoint), Route> = BTreeMap::new();
        let mut insert = |from: Endpoint, to: Endpoint, route: Route| {
            links.entry((from, to)).or_insert(route);
        };
        for (src_idx, src) in self.sources.iter().enumerate() {
            let mut products: Vec<usize> = src.mix.iter().map(|m| usize::from(m.1)).collect();
            if let Release::Schedule(rows) = &src.release {
                products.extend(rows.iter().map(|r| usize::from(r.1)));
            }
            for p in products {
                if let Some(first) = self.products.get(p).and_then(|p| p.steps.first()) {
                    for &s in &first.at {
                        insert(Endpoint::Source(src_idx as u32), Endpoint::Station(s), Route::Direct);
                    }
                }
            }
        }
        for product in &self.products {
            for pair in product.steps.windows(2) {
                for &a in &pair[0].at {
                    for &b in &pair[1].at {
                        insert(Endpoint::Station(a), Endpoint::Station(b), self.route(a, b, pair[1].carry));
                    }
                }
            }
            if let Some(last) = product.steps.last() {
                for &a in &last.at {
                    if let Some(sink) = product.sink {
                        insert(Endpoint::Station(a), Endpoint::Sink(sink), Route::Direct);
                    }
                    if let Some((dock, hub)) = self.shipping_lane(a) {
                        insert(Endpoint::Station(a), Endpoint::Hub, Route::Truck { from: dock, to: hub });
                    }
                }
            }
        }
        links.into_iter().map(|((from, to), route)| FlowLink { from, to, route }).collect()
    }
}

//! The values subsystems hand each other: orders go out, deliveries come back.
//!
//! No subsystem reaches into another's state. When the flow of parts needs a transport,
//! it hands a [`TransportOrder`] or a [`Cargo`] out; when a vehicle or a truck unloads,
//! what it carried comes back as a value, and the coordinator ([`crate::sim`]) gives it
//! to its owner. This module holds only those values and the one interface ([`Haul`])
//! through which cargo leaves, so that every subsystem depends on it and on nothing else
//! of its peers.

use crate::model::{Model, StationIdx};
use crate::sim::agenda::Agenda;

/// Index of a part in the flow's part table; opaque to everyone else.
pub(crate) type PartId = u32;

/// A part to carry by AGV from one station's node to another's. The flow reserved the
/// part's slot in `station`'s buffer when it placed the order and takes it back when the
/// vehicle delivers.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct TransportOrder {
    pub part: PartId,
    /// Pickup node.
    pub from: u32,
    /// Drop node.
    pub to: u32,
    /// Station whose buffer the part goes into.
    pub station: StationIdx,
}

/// What a truck carries between road nodes.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) enum Cargo {
    /// A part on its way to a station in another factory.
    Part { part: PartId, station: StationIdx },
    /// Bought-in material from the hub for a factory.
    Material { material: u32, factory: u32, qty: u32 },
    /// Finished units shipped from a factory's dock to the hub.
    Shipment { units: u32 },
}

impl Cargo {
    /// Units this cargo takes up on a truck.
    pub(crate) fn units(&self) -> u32 {
        match self {
            Cargo::Part { .. } => 1,
            Cargo::Material { qty, .. } => *qty,
            Cargo::Shipment { units } => *units,
        }
    }
}

/// Cargo a truck unloaded that belongs to another subsystem (shipments end at the hub
/// and stay with the trucks).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Delivery {
    /// A part for `station`'s buffer (flow).
    Part { part: PartId, station: StationIdx },
    /// Material for a factory's stock (materials).
    Material { material: u32, factory: u32, qty: u32 },
}

/// Something that waits for material to arrive at a factory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum MaterialWaiter {
    /// A source whose next release needs the material.
    Source(u32),
    /// A station fed by a saturated source.
    Station(StationIdx),
}

/// Whoever carries cargo between road nodes (the trucks). Cargo leaves through this
/// interface at the moment it is handed over, so that the order of events stays exactly
/// that of the hand-overs.
pub(crate) trait Haul {
    /// Puts `cargo` on the dock at road node `from`, bound for road node `to`.
    fn haul(&mut self, model: &Model, agenda: &mut Agenda, from: u32, to: u32, cargo: Cargo);
}

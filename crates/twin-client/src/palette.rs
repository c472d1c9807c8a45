//! Colours of station and vehicle states, shared by the 3D materials and the HUD legend
//! so both always agree.

use bevy::prelude::*;
use twin_proto::v1::{StationStateKind, VehicleKind, VehicleStateKind};

/// Station states in legend order; also the order of the shared state materials.
pub const STATION_STATES: [StationStateKind; 8] = [
    StationStateKind::Busy,
    StationStateKind::Starved,
    StationStateKind::Blocked,
    StationStateKind::Down,
    StationStateKind::Setup,
    StationStateKind::OffShift,
    StationStateKind::Idle,
    StationStateKind::Unspecified,
];

/// Vehicle states in legend order; also the order of the shared vehicle materials.
pub const VEHICLE_STATES: [VehicleStateKind; 7] = [
    VehicleStateKind::Idle,
    VehicleStateKind::TravellingEmpty,
    VehicleStateKind::TravellingLoaded,
    VehicleStateKind::Loading,
    VehicleStateKind::WaitingTraffic,
    VehicleStateKind::Charging,
    VehicleStateKind::Unspecified,
];

/// sRGB colour of a station state. The scheme follows common andon conventions: green
/// busy, yellow starved, orange blocked, red down, blue setup, grey off shift.
pub fn station_state_rgb(state: StationStateKind) -> [u8; 3] {
    match state {
        StationStateKind::Busy => [46, 170, 80],
        StationStateKind::Starved => [235, 200, 40],
        StationStateKind::Blocked => [240, 130, 30],
        StationStateKind::Down => [215, 40, 40],
        StationStateKind::Setup => [60, 120, 220],
        StationStateKind::OffShift => [90, 90, 100],
        StationStateKind::Idle => [170, 175, 185],
        StationStateKind::Unspecified => [120, 60, 160],
    }
}

/// sRGB colour of a vehicle state.
pub fn vehicle_state_rgb(state: VehicleStateKind) -> [u8; 3] {
    match state {
        VehicleStateKind::Idle => [180, 180, 190],
        VehicleStateKind::TravellingEmpty => [80, 170, 230],
        VehicleStateKind::TravellingLoaded => [20, 90, 200],
        VehicleStateKind::Loading => [120, 200, 120],
        VehicleStateKind::WaitingTraffic => [240, 140, 30],
        VehicleStateKind::Charging => [200, 80, 220],
        VehicleStateKind::Unspecified => [120, 60, 160],
    }
}

/// sRGB body colour of a vehicle kind: saturated hues that no state, ground, road or
/// flow line uses, so vehicles stand out at site zoom (the render test looks for them).
/// The state shows on the vehicle's roof patch.
pub fn vehicle_kind_rgb(kind: VehicleKind) -> [u8; 3] {
    match kind {
        VehicleKind::Truck => [170, 240, 20],
        VehicleKind::Agv | VehicleKind::Unspecified => [255, 40, 160],
    }
}

/// Bevy colour of a station state.
pub fn station_state_colour(state: StationStateKind) -> Color {
    let [r, g, b] = station_state_rgb(state);
    Color::srgb_u8(r, g, b)
}

/// Bevy colour of a vehicle state.
pub fn vehicle_state_colour(state: VehicleStateKind) -> Color {
    let [r, g, b] = vehicle_state_rgb(state);
    Color::srgb_u8(r, g, b)
}

/// Position of a station state in [`STATION_STATES`] (index of its shared material).
pub fn station_state_slot(state: StationStateKind) -> usize {
    STATION_STATES.iter().position(|&s| s == state).unwrap_or(STATION_STATES.len() - 1)
}

/// Position of a vehicle state in [`VEHICLE_STATES`] (index of its shared material).
pub fn vehicle_state_slot(state: VehicleStateKind) -> usize {
    VEHICLE_STATES.iter().position(|&s| s == state).unwrap_or(VEHICLE_STATES.len() - 1)
}

/// Short legend label of a station state.
pub fn station_state_label(state: StationStateKind) -> &'static str {
    match state {
        StationStateKind::Busy => "busy",
        StationStateKind::Starved => "starved",
        StationStateKind::Blocked => "blocked",
        StationStateKind::Down => "down",
        StationStateKind::Setup => "setup",
        StationStateKind::OffShift => "off shift",
        StationStateKind::Idle => "idle",
        StationStateKind::Unspecified => "unknown",
    }
}

/// Short legend label of a vehicle state.
pub fn vehicle_state_label(state: VehicleStateKind) -> &'static str {
    match state {
        VehicleStateKind::Idle => "idle",
        VehicleStateKind::TravellingEmpty => "empty",
        VehicleStateKind::TravellingLoaded => "loaded",
        VehicleStateKind::Loading => "loading",
        VehicleStateKind::WaitingTraffic => "waiting",
        VehicleStateKind::Charging => "charging",
        VehicleStateKind::Unspecified => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_station_state_has_its_own_colour_and_slot() {
        for (slot, &state) in STATION_STATES.iter().enumerate() {
            assert_eq!(station_state_slot(state), slot);
            for &other in &STATION_STATES[slot + 1..] {
                assert_ne!(station_state_rgb(state), station_state_rgb(other), "{state:?} vs {other:?}");
            }
        }
    }

    #[test]
    fn down_is_red_and_busy_is_green() {
        let [r, g, _] = station_state_rgb(StationStateKind::Down);
        assert!(r > 200 && g < 80);
        let [r, g, _] = station_state_rgb(StationStateKind::Busy);
        assert!(g > r);
    }

    #[test]
    fn vehicle_kind_colours_differ_from_every_state_colour() {
        for kind in [VehicleKind::Agv, VehicleKind::Truck] {
            let k = vehicle_kind_rgb(kind).map(i32::from);
            let far = |c: [u8; 3]| k.iter().zip(c).map(|(a, b)| (a - i32::from(b)).abs()).sum::<i32>() > 120;
            assert!(STATION_STATES.iter().all(|&s| far(station_state_rgb(s))), "{kind:?}");
            assert!(VEHICLE_STATES.iter().all(|&s| far(vehicle_state_rgb(s))), "{kind:?}");
        }
    }

    #[test]
    fn every_vehicle_state_has_a_slot() {
        for (slot, &state) in VEHICLE_STATES.iter().enumerate() {
            assert_eq!(vehicle_state_slot(state), slot);
        }
    }
}

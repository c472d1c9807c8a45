//! The Sparkplug vocabulary of this project: which edge nodes and devices a plant
//! publishes, the metric names and types, and the state strings. The plant emulator
//! (`twin plant`) publishes exactly this; the twin's ingest reads exactly this.
//!
//! - Group id: [`DEFAULT_GROUP`] unless configured.
//! - Edge node = one per factory; edge node id = the scene's factory id.
//! - Device = one per station (device id = station id), and one per AGV where the
//!   scene has fleets (device id = the vehicle id as the core's vehicle views name it).
//! - Timestamps (payload and metric) are plant time as ms since the Unix epoch:
//!   [`timestamp_ms`]`(Plant/Epoch, sim_time_us)`. An emulator at `--speed S` therefore
//!   has a clock S times faster than the wall; a real plant runs at speed 1.
//! - `seq` runs 0..=255 per edge node over NBIRTH, NDATA, DBIRTH, DDATA and DDEATH
//!   (NBIRTH has 0) and wraps ([`next_seq`]); NDEATH has none. `bdSeq` increments per
//!   MQTT session of the edge node.

/// Group id used when none is configured.
pub const DEFAULT_GROUP: &str = "twin";

// --- Edge node (NBIRTH, NDATA, NDEATH, NCMD) ---

/// UInt64: birth/death sequence of the edge node's MQTT session. In the NBIRTH and in
/// the NDEATH Last Will registered with that session's CONNECT, so a host can tell which
/// birth a death belongs to.
pub const BD_SEQ: &str = "bdSeq";
/// Boolean: `false` in the NBIRTH; an NCMD carrying `true` asks the edge node to publish
/// its NBIRTH and every DBIRTH again (seq restarts at 0 with the NBIRTH).
pub const REBIRTH: &str = "Node Control/Rebirth";
/// UInt64: ms since the Unix epoch that corresponds to plant time 0 (in the NBIRTH).
pub const PLANT_EPOCH: &str = "Plant/Epoch";

// --- Station devices (DBIRTH, DDATA, DDEATH) ---

/// String: what the station does now, one of [`STATION_STATES`].
pub const STATE: &str = "State";
/// UInt64: cumulative parts that entered the station's buffer.
pub const PARTS_IN: &str = "Parts/In";
/// UInt64: cumulative parts the station completed.
pub const PARTS_OUT: &str = "Parts/Out";
/// UInt32: parts waiting in the station's buffer.
pub const BUFFER_LEVEL: &str = "Buffer/Level";
/// UInt64: microseconds of processing of one completed part (blocking and waiting
/// excluded); the metric timestamp is the completion time. One metric per completed
/// cycle, so a DDATA may carry several.
pub const CYCLE_DURATION: &str = "Cycle/Duration";
/// String: the product of the cycle, right after its [`CYCLE_DURATION`] metric.
pub const CYCLE_PRODUCT: &str = "Cycle/Product";

/// Station `State` values.
pub const STATE_BUSY: &str = "busy";
pub const STATE_SETUP: &str = "setup";
pub const STATE_STARVED: &str = "starved";
pub const STATE_BLOCKED: &str = "blocked";
pub const STATE_DOWN: &str = "down";
pub const STATE_OFF_SHIFT: &str = "off_shift";
/// Every station `State` value.
pub const STATION_STATES: [&str; 6] =
    [STATE_BUSY, STATE_SETUP, STATE_STARVED, STATE_BLOCKED, STATE_DOWN, STATE_OFF_SHIFT];

// --- Vehicle devices ---

/// Vehicle `State` (String), one of [`VEHICLE_STATES`]; same metric name as stations.
pub const VEHICLE_STATE: &str = STATE;
/// Double: metres, scene coordinates.
pub const POSITION_X: &str = "Position/X";
/// Double: metres, scene coordinates.
pub const POSITION_Y: &str = "Position/Y";
/// Double: state of charge, 0..=1.
pub const BATTERY: &str = "Battery";

/// Vehicle `State` values.
pub const VEHICLE_IDLE: &str = "idle";
pub const VEHICLE_TRAVELLING_EMPTY: &str = "travelling_empty";
pub const VEHICLE_TRAVELLING_LOADED: &str = "travelling_loaded";
pub const VEHICLE_HANDLING: &str = "handling";
pub const VEHICLE_WAITING_TRAFFIC: &str = "waiting_traffic";
pub const VEHICLE_CHARGING: &str = "charging";
/// Every vehicle `State` value.
pub const VEHICLE_STATES: [&str; 6] = [
    VEHICLE_IDLE,
    VEHICLE_TRAVELLING_EMPTY,
    VEHICLE_TRAVELLING_LOADED,
    VEHICLE_HANDLING,
    VEHICLE_WAITING_TRAFFIC,
    VEHICLE_CHARGING,
];

/// Plant time `sim_time_us` (µs since plant time 0) as ms since the Unix epoch, given
/// `Plant/Epoch` (rounded down to the ms).
pub fn timestamp_ms(epoch_ms: u64, sim_time_us: u64) -> u64 {
    epoch_ms + sim_time_us / 1000
}

/// The `seq` after `seq` (0..=255, wrapping).
pub fn next_seq(seq: u64) -> u64 {
    (seq + 1) % 256
}

#[cfg(test)]
mod tests {
    #[test]
    fn seq_wraps_and_timestamps_add_the_epoch() {
        assert_eq!(super::next_seq(0), 1);
        assert_eq!(super::next_seq(255), 0);
        assert_eq!(super::timestamp_ms(1_000, 2_500), 1_002);
    }
}

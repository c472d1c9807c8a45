//! Every conversion between twin-core types and twin.v1 wire types, and from core
//! refusals to gRPC statuses. Conversion only: what to show is decided by the core
//! (routes, flow links, KPIs, limits) or measured in [`crate::measure`]; nothing else in
//! the workspace converts between the two.
//!
//! - [`layout`](mod@layout): the static layout of a model.
//! - [`state`]: the live state of stations, vehicles, KPIs, the clock, rush orders.
//! - [`report`](mod@report): the typed report.
//! - [`request`]: requests into core commands; refusals into statuses.
//! - [`experiment`]: experiment events.
//! - [`alarms`]: sync status per station and deviation alarms.
//! - [`forecast`]: forecast requests, results and progress.
//! - [`timeline`]: checkpoints and Seek refusals (time travel).

pub mod alarms;
pub mod experiment;
pub mod forecast;
pub mod layout;
pub mod report;
pub mod request;
pub mod state;
pub mod timeline;

pub use self::alarms::{alarm, alarm_summary, sync_status};
pub use self::experiment::{experiment_failed, experiment_finished, experiment_started, replication_done};
pub use self::forecast::{forecast_progress, forecast_request, forecast_result, forecast_status};
pub use self::layout::{TRUCK_FLEET_ID, layout, scene_info, set_layout_servers, set_layout_vehicles};
pub use self::report::report;
pub use self::request::{
    break_down, command_status, control_status, inject_status, parameter, repair, run_to, rush_order, speed,
};
pub use self::state::{
    StationSync, agv_state, bottleneck_ranking, clock, flow_rates, kpi_summary, order_id, receipt,
    rush_order_progress, station_state, truck_state,
};
pub use self::timeline::{checkpoint_info, seek_status};

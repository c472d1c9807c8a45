//! `MotionPlugin`: smooth vehicle motion between state frames. Each new vehicle state
//! starts a segment from where the vehicle is drawn *now* to the reported position, lasting
//! one (smoothed) frame interval. Vehicles therefore never jump, at the cost of one frame
//! interval of display latency. Only big discontinuities (reset, teleport) snap.

use bevy::prelude::*;

use crate::model::LiveState;
use crate::site::{VehicleIndex, finite, site_to_world};

/// Frame interval assumed before two frames have arrived, seconds (the 30 Hz stream).
const INITIAL_FRAME_INTERVAL_S: f32 = 1.0 / 30.0;
/// Weight of the newest arrival gap in the smoothed frame interval.
const INTERVAL_SMOOTHING: f32 = 0.2;
/// Bounds of the smoothed frame interval, seconds (one lost frame must not freeze motion).
const FRAME_INTERVAL_RANGE_S: (f32, f32) = (1.0 / 120.0, 1.0);
/// A reported jump longer than this snaps instead of gliding, metres.
const TELEPORT_DISTANCE_M: f32 = 200.0;
/// Height of a vehicle's underside above ground, metres (factory floor slab).
const VEHICLE_LIFT_M: f32 = 0.1;

/// Interpolates vehicles between state frames.
pub struct MotionPlugin;

impl Plugin for MotionPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<FrameTiming>().add_systems(
            Update,
            (
                (time_frame_arrivals, retarget_vehicles).chain().run_if(resource_changed::<LiveState>),
                move_vehicles,
            )
                .chain(),
        );
    }
}

/// Arrival times of state frames, to size interpolation segments.
#[derive(Resource, Debug)]
pub struct FrameTiming {
    /// Seq of the last frame seen.
    last_seq: u64,
    /// Client time of its arrival, seconds.
    last_arrival_s: f64,
    /// Smoothed gap between arrivals, seconds.
    pub interval_s: f32,
}

impl Default for FrameTiming {
    fn default() -> Self {
        Self { last_seq: 0, last_arrival_s: f64::NEG_INFINITY, interval_s: INITIAL_FRAME_INTERVAL_S }
    }
}

/// One interpolation segment of a vehicle.
#[derive(Component, Debug, Clone, PartialEq)]
pub struct MotionTrack {
    /// Start of the segment (world, ground level).
    pub from: Vec3,
    /// End of the segment: the last reported position.
    pub to: Vec3,
    /// Yaw at the start, radians.
    pub from_yaw: f32,
    /// Reported yaw, radians.
    pub to_yaw: f32,
    /// Client time the segment started, seconds.
    pub start_s: f64,
    /// Length of the segment, seconds.
    pub duration_s: f32,
    /// `LiveState::vehicle_rev` the segment was built from.
    pub seen_rev: u64,
    /// False until the first reported position (the vehicle stays hidden until then).
    pub placed: bool,
}

impl Default for MotionTrack {
    fn default() -> Self {
        Self {
            from: Vec3::ZERO,
            to: Vec3::ZERO,
            from_yaw: 0.0,
            to_yaw: 0.0,
            start_s: 0.0,
            duration_s: 0.0,
            seen_rev: 0,
            placed: false,
        }
    }
}

impl MotionTrack {
    /// Position and yaw drawn at client time `now_s`.
    pub fn sample(&self, now_s: f64) -> (Vec3, f32) {
        let t = if self.duration_s > 0.0 {
            (((now_s - self.start_s) as f32) / self.duration_s).clamp(0.0, 1.0)
        } else {
            1.0
        };
        (self.from.lerp(self.to, t), lerp_angle(self.from_yaw, self.to_yaw, t))
    }

    /// Starts a new segment towards `target` from wherever the vehicle is drawn now.
    pub fn retarget(&mut self, target: Vec3, yaw: f32, now_s: f64, duration_s: f32) {
        if !self.placed || target.distance(self.sample(now_s).0) > TELEPORT_DISTANCE_M {
            *self = Self {
                from: target,
                to: target,
                from_yaw: yaw,
                to_yaw: yaw,
                placed: true,
                seen_rev: self.seen_rev,
                ..default()
            };
            return;
        }
        let (position, current_yaw) = self.sample(now_s);
        self.from = position;
        self.from_yaw = current_yaw;
        self.to = target;
        self.to_yaw = yaw;
        self.start_s = now_s;
        self.duration_s = duration_s;
    }
}

/// Interpolates between two angles along the shorter arc.
pub fn lerp_angle(a: f32, b: f32, t: f32) -> f32 {
    let tau = std::f32::consts::TAU;
    let delta = (b - a).rem_euclid(tau);
    let delta = if delta > std::f32::consts::PI { delta - tau } else { delta };
    a + delta * t
}

fn time_frame_arrivals(time: Res<Time>, live: Res<LiveState>, mut timing: ResMut<FrameTiming>) {
    if live.seq == timing.last_seq {
        return;
    }
    let now = time.elapsed_secs_f64();
    let gap = (now - timing.last_arrival_s) as f32;
    if gap.is_finite() && live.seq == timing.last_seq + 1 {
        let (min, max) = FRAME_INTERVAL_RANGE_S;
        let smoothed = timing.interval_s + INTERVAL_SMOOTHING * (gap - timing.interval_s);
        timing.interval_s = smoothed.clamp(min, max);
    }
    timing.last_seq = live.seq;
    timing.last_arrival_s = now;
}

fn retarget_vehicles(
    time: Res<Time>,
    live: Res<LiveState>,
    timing: Res<FrameTiming>,
    mut vehicles: Query<(&VehicleIndex, &mut MotionTrack)>,
) {
    let now = time.elapsed_secs_f64();
    for (index, mut track) in &mut vehicles {
        let i = index.0 as usize;
        let (Some(state), Some(&rev)) = (live.vehicles.get(i), live.vehicle_rev.get(i)) else {
            continue;
        };
        if rev == track.seen_rev || rev == 0 {
            continue;
        }
        track.seen_rev = rev;
        let target = site_to_world(state.x, state.y, 0.0);
        track.retarget(target, finite(state.heading_rad), now, timing.interval_s);
    }
}

/// Runs every frame over every vehicle: no allocation, and a transform is written (and so
/// marked changed for propagation and render extraction) only when the vehicle moved.
pub(crate) fn move_vehicles(
    time: Res<Time>,
    mut vehicles: Query<(&MotionTrack, &mut Transform, &mut Visibility)>,
) {
    let now = time.elapsed_secs_f64();
    for (track, mut transform, mut visibility) in &mut vehicles {
        if !track.placed {
            continue;
        }
        let (position, yaw) = track.sample(now);
        let translation = position + Vec3::Y * (VEHICLE_LIFT_M + transform.scale.y * 0.5);
        let rotation = Quat::from_rotation_y(yaw);
        if transform.translation != translation || transform.rotation != rotation {
            transform.translation = translation;
            transform.rotation = rotation;
        }
        if *visibility == Visibility::Hidden {
            *visibility = Visibility::Inherited;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bevy::time::TimeUpdateStrategy;
    use twin_proto::v1::{Layout, StateFrame, Vehicle, VehicleState};

    use super::*;

    #[test]
    fn sample_interpolates_and_clamps() {
        let mut track = MotionTrack::default();
        track.retarget(Vec3::ZERO, 0.0, 0.0, 0.1);
        track.retarget(Vec3::new(10.0, 0.0, 0.0), 0.0, 1.0, 0.5);
        assert_eq!(track.sample(1.0).0, Vec3::ZERO);
        assert!((track.sample(1.25).0.x - 5.0).abs() < 1e-4);
        assert_eq!(track.sample(9.0).0, Vec3::new(10.0, 0.0, 0.0));
    }

    #[test]
    fn retarget_mid_segment_starts_where_the_vehicle_is_drawn() {
        let mut track = MotionTrack::default();
        track.retarget(Vec3::ZERO, 0.0, 0.0, 0.1);
        track.retarget(Vec3::new(10.0, 0.0, 0.0), 0.0, 1.0, 1.0);
        let drawn = track.sample(1.5).0;
        track.retarget(Vec3::new(10.0, 0.0, 10.0), 0.0, 1.5, 1.0);
        assert!((track.sample(1.5).0 - drawn).length() < 1e-5, "no jump on a new frame");
    }

    #[test]
    fn far_jumps_snap() {
        let mut track = MotionTrack::default();
        track.retarget(Vec3::ZERO, 0.0, 0.0, 0.1);
        track.retarget(Vec3::new(1000.0, 0.0, 0.0), 0.0, 1.0, 0.5);
        assert_eq!(track.sample(1.0).0, Vec3::new(1000.0, 0.0, 0.0));
    }

    #[test]
    fn angles_take_the_short_way() {
        let a = 3.0;
        let b = -3.0; // 0.28 rad away across +-pi
        let mid = lerp_angle(a, b, 0.5);
        assert!((mid.rem_euclid(std::f32::consts::TAU) - std::f32::consts::PI).abs() < 0.01, "{mid}");
    }

    fn frame(seq: u64, full: bool, x: f64) -> StateFrame {
        StateFrame {
            seq,
            full,
            layout_generation: 1,
            vehicles: vec![VehicleState { index: 0, x, y: 0.0, ..Default::default() }],
            ..Default::default()
        }
    }

    #[test]
    fn vehicles_glide_between_frames_in_an_app() {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(10)))
            .add_plugins(MotionPlugin);
        let layout = Layout {
            layout_generation: 1,
            vehicles: vec![Vehicle { index: 0, ..Default::default() }],
            ..Default::default()
        };
        app.insert_resource(crate::model::live_for(&layout, Some(&frame(1, true, 0.0))));
        let vehicle = app
            .world_mut()
            .spawn((VehicleIndex(0), MotionTrack::default(), Transform::default(), Visibility::Hidden))
            .id();

        app.update();
        let placed = app.world().get::<Transform>(vehicle).expect("transform").translation;
        assert_eq!(placed.x, 0.0);
        assert_eq!(app.world().get::<Visibility>(vehicle), Some(&Visibility::Inherited));

        app.world_mut()
            .resource_mut::<LiveState>()
            .apply_frame(&frame(2, false, 3.0), Some(1))
            .expect("delta");
        app.update();
        let x1 = app.world().get::<Transform>(vehicle).expect("transform").translation.x;
        assert!(x1 < 3.0, "vehicle must not jump to the new position, got {x1}");
        for _ in 0..200 {
            app.update();
        }
        let x2 = app.world().get::<Transform>(vehicle).expect("transform").translation.x;
        assert!((x2 - 3.0).abs() < 1e-4, "vehicle reaches the reported position, got {x2}");
    }

    /// Counts transforms marked changed in the last update.
    #[derive(Resource, Default)]
    struct ChangedTransforms(usize);

    fn count_changed(moved: Query<(), Changed<Transform>>, mut count: ResMut<ChangedTransforms>) {
        count.0 = moved.iter().count();
    }

    #[test]
    fn a_vehicle_at_rest_does_not_mark_its_transform_changed() {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(10)))
            .add_plugins(MotionPlugin)
            .init_resource::<ChangedTransforms>()
            .add_systems(PostUpdate, count_changed);
        let layout = Layout {
            layout_generation: 1,
            vehicles: vec![Vehicle { index: 0, ..Default::default() }],
            ..Default::default()
        };
        app.insert_resource(crate::model::live_for(&layout, Some(&frame(1, true, 0.0))));
        app.world_mut().spawn((
            VehicleIndex(0),
            MotionTrack::default(),
            Transform::default(),
            Visibility::Hidden,
        ));
        app.update();
        app.world_mut()
            .resource_mut::<LiveState>()
            .apply_frame(&frame(2, false, 3.0), Some(1))
            .expect("delta");
        // The new segment starts where the vehicle is drawn, so it moves from the next frame.
        app.update();
        app.update();
        assert_eq!(app.world().resource::<ChangedTransforms>().0, 1, "a moving vehicle is written");
        for _ in 0..200 {
            app.update();
        }
        assert_eq!(app.world().resource::<ChangedTransforms>().0, 0, "a still vehicle is not");
    }
}

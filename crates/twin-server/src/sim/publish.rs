//! Snapshots for the viewers: what the simulation thread publishes after each chunk of
//! events or command.

use super::*;

impl Driver {
    pub(super) fn snapshot(&mut self, timeline: v1::Timeline) -> Arc<Snapshot> {
        let now = Instant::now();
        let sim_now = self.sim.now();
        self.clock.sim_time = sim_now;
        if !self.clock.paused {
            let wall = now.duration_since(self.speed_window.0).as_secs_f64();
            if wall >= 1.0 {
                self.clock.achieved_speed = sim_now.saturating_sub(self.speed_window.1) as f64 / 1e6 / wall;
                self.speed_window = (now, sim_now);
            }
        }
        let key = (self.generation, self.sim.alarms_revision());
        if key != self.alarms_at {
            let model = &self.scene.model;
            let wire: Vec<v1::Alarm> = self.sim.alarms().iter().map(|a| convert::alarm(model, a)).collect();
            let summary = convert::alarm_summary(&wire, self.sim.alarms_raised());
            self.alarms = (Arc::new(wire), Arc::new(summary));
            self.alarms_at = key;
        }
        let views: Vec<_> = self.sim.station_views().collect();
        let completed: Vec<u64> = views.iter().map(|v| v.completed).collect();
        let rates = self.throughput.update(sim_now, &completed);
        let stations = views
            .iter()
            .enumerate()
            .map(|(i, view)| {
                let utilization = self.report.stations.get(i).map_or(0.0, |s| s.utilization);
                let s = i as u32;
                let sync = convert::StationSync {
                    status: self.sim.sync_status(s),
                    last_observed: self.sim.last_observed(s),
                    open_alarms: self.alarms.1.open_alarms.iter().filter(|a| a.station_index == s).count()
                        as u32,
                };
                convert::station_state(i, view, rates[i], utilization, sync)
            })
            .collect();
        let counts = self.scene.flows.counts(self.sim.flows(), &views);
        let flows =
            convert::flow_rates(self.scene.flows.measured(&self.flow_window.update(sim_now, &counts)));
        let model = &self.scene.model;
        let rush_orders =
            self.sim.rush_orders().iter().map(|o| convert::rush_order_progress(model, o)).collect();
        let vehicles = self.vehicles(sim_now);
        Arc::new(Snapshot {
            generation: self.generation,
            scene: Arc::clone(&self.scene),
            layout: Arc::clone(&self.layout),
            clock: self.clock,
            stations,
            vehicles,
            flows,
            rush_orders,
            kpis: self.kpis,
            forecast: self.forecast.clone(),
            bottlenecks: v1::BottleneckRanking {
                momentary_station_index: self.sim.momentary_bottleneck(),
                ..self.ranking.clone()
            },
            alarms: Arc::clone(&self.alarms.0),
            alarm_summary: Arc::clone(&self.alarms.1),
            timeline,
            published: now,
        })
    }

    /// Vehicle states now. Speeds are measured over the simulated time since the last
    /// snapshot (kept while the clock stands); a parked truck keeps its last heading.
    fn vehicles(&mut self, sim_now: Micros) -> Vec<v1::VehicleState> {
        let dt_s = sim_now.saturating_sub(self.motion_t) as f64 / 1e6;
        let fresh = self.motion.is_empty() || sim_now < self.motion_t;
        let layout = &self.layout.vehicles;
        let prev = |i: usize| if fresh { None } else { self.motion.get(i).copied() };
        let speed = |i: usize, moving: bool, x: f64, y: f64| -> f64 {
            if !moving {
                return 0.0;
            }
            match prev(i) {
                Some(p) if dt_s > 0.0 => (x - p.x).hypot(y - p.y) / dt_s,
                Some(p) => p.speed,
                None => layout.get(i).map_or(0.0, |v| v.max_speed_m_s),
            }
        };
        let mut states = Vec::with_capacity(layout.len());
        for (i, view) in self.sim.vehicle_views().enumerate() {
            let v = speed(i, view.state.is_moving(), view.x, view.y);
            states.push(convert::agv_state(i, &view, v));
        }
        let n_agvs = states.len();
        for (k, view) in self.sim.truck_views().enumerate() {
            let i = n_agvs + k;
            let v = speed(i, view.moving, view.x, view.y);
            let heading = match prev(i) {
                Some(p) if !view.moving => p.heading,
                _ => view.heading,
            };
            states.push(convert::truck_state(i, &view, heading, v));
        }
        if dt_s > 0.0 || fresh {
            self.motion_t = sim_now;
        }
        self.motion = states
            .iter()
            .map(|s| Motion { x: s.x, y: s.y, heading: s.heading_rad, speed: s.speed_m_s })
            .collect();
        states
    }

    /// Publishes a snapshot of the view (call with the live run's parts in place).
    pub(super) fn publish(&mut self) {
        let timeline = self.timeline();
        let snapshot = self.on_view(|d| d.snapshot(timeline));
        self.last_publish = snapshot.published;
        if let Some(publisher) = &self.publisher {
            publisher.send_replace(snapshot);
        }
    }
}

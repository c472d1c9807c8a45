//! Forecast requests into the core's terms, and forecasts into wire form.

use tonic::Status;
use twin_core::forecast::{Band, Forecast, ForecastError, Horizon, Kpi, Request};
use twin_proto::v1;

/// The core's request from ForecastRequest. Field checks that need the live clock (the
/// horizon's place, the replication count) are the core's and come back as
/// [`forecast_status`].
pub fn forecast_request(req: &v1::ForecastRequest) -> Result<Request, Status> {
    let horizon = match (req.ahead_us, req.until_us) {
        (0, 0) => Horizon::EndOfShift,
        (ahead, 0) => Horizon::Ahead(ahead),
        (0, until) => Horizon::At(until),
        _ => return Err(Status::invalid_argument("horizon: set at most one of ahead_us and until_us")),
    };
    let kpis = req
        .kpis
        .iter()
        .map(|&k| match v1::ForecastKpi::try_from(k) {
            Ok(v1::ForecastKpi::PartsFinished) => Ok(Kpi::PartsFinished),
            Ok(v1::ForecastKpi::Throughput) => Ok(Kpi::Throughput),
            Ok(v1::ForecastKpi::Wip) => Ok(Kpi::Wip),
            Ok(v1::ForecastKpi::ValueAddedRate) => Ok(Kpi::ValueAddedRate),
            Ok(v1::ForecastKpi::OnTime) => Ok(Kpi::OnTime),
            Ok(v1::ForecastKpi::Unspecified) | Err(_) => {
                Err(Status::invalid_argument(format!("kpis: unknown or unspecified ForecastKpi {k}")))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Request { horizon, replications: req.replications, kpis })
}

/// INVALID_ARGUMENT naming the field (`replications` or `horizon`).
pub fn forecast_status(e: &ForecastError) -> Status {
    Status::invalid_argument(e.to_string())
}

fn band(b: Option<Band>) -> Option<v1::ForecastBand> {
    b.map(|b| v1::ForecastBand { p10: b.p10, p50: b.p50, p90: b.p90, mean: b.mean })
}

/// The wire form of a forecast that took `wall_s` seconds.
pub fn forecast_result(f: &Forecast, wall_s: f64) -> v1::ForecastResult {
    v1::ForecastResult {
        seed: f.seed,
        from_us: f.from,
        horizon_us: f.until,
        replications: f.replications,
        parts_finished: band(f.parts_finished),
        throughput_per_hour: band(f.throughput_per_hour),
        wip_end: band(f.wip_end),
        wip_mean: band(f.wip_mean),
        value_added_rate: band(f.value_added_rate),
        orders: f
            .orders
            .iter()
            .map(|o| v1::OrderRisk {
                order_id: o.id.clone(),
                product_id: o.product.clone(),
                released_at_us: o.released_at,
                due_at_us: o.due,
                on_time_probability: o.on_time_probability,
                quantity: o.quantity,
                on_time_risk: o.on_time_risk,
            })
            .collect(),
        orders_beyond_horizon: f.orders_beyond_horizon,
        wall_s,
    }
}

/// A progress event.
pub fn forecast_progress(done: u32, total: u32, from_us: u64, horizon_us: u64) -> v1::ForecastEvent {
    v1::ForecastEvent {
        event: Some(v1::forecast_event::Event::Progress(v1::ForecastProgress {
            done,
            total,
            from_us,
            horizon_us,
        })),
    }
}

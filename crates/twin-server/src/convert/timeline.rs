//! Time travel: checkpoints into CheckpointInfo, Seek refusals into statuses.

use tonic::Status;
use twin_proto::v1;

use crate::sim::timeline::SeekError;
use crate::store::checkpoints::Info;

/// A checkpoint on disk as ListCheckpoints lists it.
pub fn checkpoint_info(info: &Info) -> v1::CheckpointInfo {
    v1::CheckpointInfo {
        sim_time_us: info.meta.sim_time,
        command_seq: info.meta.run_commands,
        // With live ingest: the last raw telemetry record whose decisions it includes.
        telemetry_seq: info.meta.telemetry.as_ref().map_or(0, |t| t.processed_through),
        bytes: info.bytes,
        written_unix_ms: info.meta.written_unix_ms,
    }
}

/// Status of a refused Seek: a time outside the held range is INVALID_ARGUMENT, a
/// damaged checkpoint DATA_LOSS, a run replaced meanwhile ABORTED, a telemetry log that
/// cannot be read INTERNAL.
pub fn seek_status(e: SeekError) -> Status {
    match e {
        SeekError::Future { .. } | SeekError::TooEarly { .. } => Status::invalid_argument(e.to_string()),
        SeekError::Checkpoint { .. } => Status::data_loss(e.to_string()),
        SeekError::RunChanged => Status::aborted(e.to_string()),
        SeekError::Telemetry(_) => Status::internal(e.to_string()),
    }
}

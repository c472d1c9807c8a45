//! Generated Rust bindings of the twin's public gRPC contract (`proto/twin/v1/twin.proto`).
//!
//! Layout:
//! - [`v1`]: prost messages and enums of package `twin.v1`, with the tonic client
//!   ([`v1::twin_service_client`]) and server ([`v1::twin_service_server`]) modules.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptor set for gRPC reflection.
//! - [`sparkplug`]: the Sparkplug B MQTT payload (`proto/sparkplug/sparkplug_b.proto`),
//!   topic names, data types, metric helpers and the metric vocabulary the plant
//!   emulator publishes and the twin's ingest reads.
//!
//! Architecture invariant: this crate contains generated code only. It knows nothing about
//! the simulation core; converting between core and wire types is the server's job.

/// Package `twin.v1`. Additive changes only; breaking changes go to a new `v2` module.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("twin.v1");
}

pub mod sparkplug;

/// Encoded `google.protobuf.FileDescriptorSet` of `twin.v1` (with source info), for
/// `tonic-reflection`'s `register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/twin_descriptor.bin"));

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_types::FileDescriptorSet;

    use super::FILE_DESCRIPTOR_SET;

    #[test]
    fn descriptor_set_contains_the_twin_service() {
        let fds = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor set decodes");
        let file = fds.file.iter().find(|f| f.package() == "twin.v1").expect("twin.v1 file present");
        let service = file.service.iter().find(|s| s.name() == "TwinService").expect("TwinService present");
        let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        for expected in ["GetLayout", "StreamState", "SetSpeed", "GetReport", "StartExperiment"] {
            assert!(methods.contains(&expected), "{expected} missing from {methods:?}");
        }
        let stream = service.method.iter().find(|m| m.name() == "StreamState").expect("StreamState present");
        assert!(stream.server_streaming(), "StreamState streams frames");
    }

    #[test]
    fn generated_messages_round_trip() {
        use super::v1::{StateFrame, StationState, StationStateKind};
        let frame = StateFrame {
            seq: 1,
            full: true,
            stations: vec![StationState {
                index: 3,
                state: StationStateKind::Blocked as i32,
                ..Default::default()
            }],
            ..Default::default()
        };
        let decoded = StateFrame::decode(frame.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(decoded, frame);
        assert_eq!(decoded.stations[0].state(), StationStateKind::Blocked);
    }
}

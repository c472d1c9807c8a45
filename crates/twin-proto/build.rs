//! Compiles `proto/twin/v1/twin.proto` with the pure-Rust `protox` compiler (no system
//! `protoc`), generates prost messages plus tonic client and server stubs, and writes the
//! encoded `FileDescriptorSet` for the server's reflection service. Also compiles the
//! Sparkplug B payload (`proto/sparkplug/sparkplug_b.proto`) to prost messages only: it is
//! an MQTT payload, not a gRPC service, and stays out of the reflection descriptor set.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let proto_file = proto_root.join("twin/v1/twin.proto");
    println!("cargo:rerun-if-changed={}", proto_file.display());

    let fds = protox::compile([&proto_file], [&proto_root])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("twin_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)?;

    let sparkplug_file = proto_root.join("sparkplug/sparkplug_b.proto");
    println!("cargo:rerun-if-changed={}", sparkplug_file.display());
    let sparkplug = protox::compile([&sparkplug_file], [&proto_root])?;
    tonic_prost_build::configure().build_client(false).build_server(false).compile_fds(sparkplug)?;
    Ok(())
}

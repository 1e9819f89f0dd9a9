//! Compiles the gRPC contracts with protox, so no system `protoc` is needed.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "shequ/common/v1/common.proto",
        "shequ/complaints/v1/complaints.proto",
        "shequ/alliance/v1/alliance.proto",
        "shequ/care/v1/care.proto",
        "shequ/ops/v1/ops.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("shequ_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}

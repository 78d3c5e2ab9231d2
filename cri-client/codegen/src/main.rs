//! Regenerates `cri-client/src/generated/runtime.v1.rs` from the vendored
//! `cri-client/proto/api.proto` with protox (a protobuf compiler in pure Rust, so no `protoc`
//! is needed) and tonic-prost-build (client only). Run `cargo run -p cri-codegen` after
//! replacing the proto; the output is committed, so building the tool needs neither.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let proto_dir = crate_dir.join("proto");
    let out = crate_dir.join("src/generated");
    std::fs::create_dir_all(&out)?;
    let fds = protox::compile([proto_dir.join("api.proto")], [&proto_dir])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .out_dir(&out)
        .compile_fds(fds)?;
    println!("wrote {}", out.join("runtime.v1.rs").display());
    Ok(())
}

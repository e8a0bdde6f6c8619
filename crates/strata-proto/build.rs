//! Compiles `proto/strata/v1/*.proto` with protox (pure Rust, so no `protoc` is needed) and
//! generates the prost messages and tonic clients and servers from the descriptor set.

use std::{env, error::Error, fs, path::PathBuf};

const FILES: [&str; 5] = [
    "strata/v1/archive.proto",
    "strata/v1/event.proto",
    "strata/v1/ingest.proto",
    "strata/v1/query.proto",
    "strata/v1/replay.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", proto_root.display());
    for file in FILES {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }

    let mut compiler = protox::Compiler::new([&proto_root])?;
    // Imports (the well-known types) are kept so reflection clients such as grpcurl can
    // resolve every type from this one set; source info keeps the comments for them.
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(FILES)?;
    fs::write(
        out_dir.join("strata_v1_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

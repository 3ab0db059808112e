//! Compiles the AG-UI protobuf schema (`proto-schemas/agui/*.proto`) into Rust at build time.
//!
//! `protox` is a pure-Rust protobuf compiler, so no system `protoc` is needed (DESIGN.md,
//! "Crates and what each owns"); `prost-build` turns its `FileDescriptorSet` into code in
//! `OUT_DIR`, which `src/proto.rs` includes as `pub mod pb`.
//!
//! One deliberate rewrite: `google.protobuf.Struct.fields` is declared `map<string, Value>`,
//! which prost would generate as a sorted `BTreeMap` (or a `HashMap`). The reference encoder
//! (`@ag-ui/proto@1.0.0`, ts-proto) writes a Struct's entries in JavaScript property order, so a
//! map type would reorder keys: different bytes, and a JS consumer would see a reordered object.
//! A protobuf map is defined as wire-identical to `repeated FieldsEntry { key = 1; value = 2; }`
//! (protobuf language guide, "Maps" → "Backwards compatibility"), so clearing the `map_entry`
//! flag on `Struct.FieldsEntry` makes prost generate an order-preserving `Vec<FieldsEntry>`
//! without changing a single byte of the wire format. The well-known types are therefore
//! compiled here rather than taken from `prost-types` (whose `Struct` is a `BTreeMap`).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir.join("../../proto-schemas/agui");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    let files = ["events.proto", "types.proto", "patch.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={}", proto_dir.join(file).display());
    }

    // protox resolves `google/protobuf/struct.proto` from its embedded well-known types.
    let mut fds = protox::compile(files, [&proto_dir])?;

    let mut rewritten = false;
    for file in &mut fds.file {
        if file.name() != "google/protobuf/struct.proto" {
            continue;
        }
        for message in &mut file.message_type {
            if message.name() != "Struct" {
                continue;
            }
            let entries = message.nested_type.iter_mut();
            for nested in entries.filter(|nested| nested.name() == "FieldsEntry") {
                if let Some(options) = nested.options.as_mut() {
                    options.map_entry = None;
                    rewritten = true;
                }
            }
        }
    }
    if !rewritten {
        return Err(
            "google.protobuf.Struct.FieldsEntry not found: cannot keep Struct key order".into(),
        );
    }

    prost_build::Config::new()
        .compile_well_known_types()
        .include_file("agui_proto.rs")
        .compile_fds(fds)?;
    Ok(())
}

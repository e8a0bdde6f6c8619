//! Rust types, clients and servers generated from Strata's protobuf definitions
//! (`proto/strata/v1/*.proto`, package `strata.v1`).
//!
//! * [`v1`]: the messages ([`v1::Event`], [`v1::WriteRequest`], ...), the servers
//!   ([`v1::ingest_server::IngestServer`], [`v1::query_server::QueryServer`]) that the API
//!   crate implements, and the clients ([`v1::ingest_client::IngestClient`],
//!   [`v1::query_client::QueryClient`]) for tools and tests.
//! * [`FILE_DESCRIPTOR_SET`]: the encoded descriptor set of these files and their imports,
//!   registered with the gRPC reflection service so `grpcurl` can list and call the services.
//!
//! The code is generated at build time by `build.rs` with protox and tonic-prost-build; edit
//! the `.proto` files, never the output.

/// Package `strata.v1`: messages, the `Ingest` and `Query` services, their clients and
/// servers.
pub mod v1 {
    #![allow(
        missing_docs,
        unreachable_pub,
        clippy::all,
        clippy::pedantic,
        clippy::unwrap_used
    )]
    tonic::include_proto!("strata.v1");
}

/// The encoded `google.protobuf.FileDescriptorSet` of `strata/v1/*.proto` and everything
/// they import, for the reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/strata_v1_descriptor.bin"));

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn descriptor_set_holds_the_services_and_their_imports() {
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
        for file in [
            "strata/v1/event.proto",
            "strata/v1/ingest.proto",
            "strata/v1/query.proto",
            "google/protobuf/timestamp.proto",
            "google/protobuf/duration.proto",
        ] {
            assert!(names.contains(&file), "{file} missing from {names:?}");
        }
        let services: Vec<String> = set
            .file
            .iter()
            .flat_map(|f| {
                f.service
                    .iter()
                    .map(move |s| format!("{}.{}", f.package(), s.name()))
            })
            .collect();
        assert!(services.contains(&"strata.v1.Ingest".to_string()));
        assert!(services.contains(&"strata.v1.Query".to_string()));
    }

    #[test]
    fn messages_round_trip() {
        let req = v1::WriteRequest {
            events: vec![v1::Event {
                tenant: "acme".into(),
                stream: "click".into(),
                key: "user-1".into(),
                id: "e1".into(),
                ts: Some(prost_types::Timestamp {
                    seconds: 1_795_651_200,
                    nanos: 123_456_000,
                }),
                value: Some(1.5),
                attrs: [("page".to_string(), "/home".to_string())].into(),
                payload: r#"{"a": 1}"#.into(),
            }],
        };
        let bytes = req.encode_to_vec();
        let back = v1::WriteRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(back, req);
        assert_eq!(v1::Agg::from_str_name("AGG_AVG"), Some(v1::Agg::Avg));
    }
}

//! The contracts every shequ service agrees on.
//!
//! # Layout
//! - [`common`], [`complaints`], [`alliance`], [`care`], [`ops`]: gRPC messages and services generated from
//!   `shequ/**/*.proto` (tonic + prost, compiled with protox: no system `protoc`).
//! - [`FILE_DESCRIPTOR_SET`]: the compiled descriptors, served by gRPC reflection.
//! - [`codes`]: code names: `named_enum!` (an enum with code names, Chinese
//!   labels, serde and JSON Schema by code name, and its proto enum mapped by
//!   name), and the code names of every proto enum ([`codes::ProtoEnum`]).
//! - [`kinds`]: the vocabulary enums whose values events carry (complaint
//!   category, status, level…, merchant category, care service…), which the
//!   services' domains re-export.
//! - [`events`]: the CloudEvents envelope and the payload of every event type,
//!   described in `events/asyncapi.yaml`.
//! - [`schemas`]: `events/schemas/*.json`, generated from the payload types
//!   (`make schemas` rewrites them; a test fails when they are stale).
//! - [`contract`]: whether the event schemas changed compatibly since the
//!   release kept in `contract/released/` (a test fails on a breaking change).
//! - [`time`]: the district's clock (UTC+8), opening-hours clock times, and
//!   protobuf timestamps.

#![allow(unreachable_pub, missing_debug_implementations)]

/// Messages shared by every service (paging, periods).
pub mod common {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("shequ.common.v1");
    }
}

/// The complaints service (诉求快速响应).
pub mod complaints {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("shequ.complaints.v1");
    }
}

/// The merchant alliance (商户联盟).
pub mod alliance {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("shequ.alliance.v1");
    }
}

/// Pensioner care (党员助老结对帮扶).
pub mod care {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("shequ.care.v1");
    }
}

/// What every service serves for operators (parked events).
pub mod ops {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("shequ.ops.v1");
    }
}

pub mod codes;
pub mod contract;
pub mod events;
pub mod kinds;
pub mod schemas;
pub mod time;

/// Encoded `FileDescriptorSet` of every proto file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/shequ_descriptor.bin"));

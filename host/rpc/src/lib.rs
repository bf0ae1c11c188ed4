//! Tether's agent ↔ server contracts: one versioned protobuf package per feature (`proto/`), the tonic
//! code generated from them, the limits both sides enforce, and the order of streamed messages, declared
//! once here and checked by whichever side receives them.
//!
//! This crate holds no behaviour of either side: the server implements the generated service traits, the
//! agent uses the generated clients. The one piece both share is the transport that carries the same
//! gRPC connection inside a WebSocket ([`websocket`]).

pub mod limits;
pub mod sync_stream;
pub mod tunnel_stream;
pub mod websocket;

/// `tether.agent.v1`: registration, heartbeat, status reports.
pub mod agent {
    pub mod v1 {
        tonic::include_proto!("tether.agent.v1");
    }
}

/// `tether.configuration.v1`: the agent's configuration stream and plugin files.
pub mod configuration {
    pub mod v1 {
        tonic::include_proto!("tether.configuration.v1");
    }
}

/// `tether.gitops.v1`: the files of a manifest project to synchronise.
pub mod gitops {
    pub mod v1 {
        tonic::include_proto!("tether.gitops.v1");
    }
}

/// `tether.tunnel.v1`: the reverse tunnel that carries requests into the agent's cluster.
pub mod tunnel {
    pub mod v1 {
        tonic::include_proto!("tether.tunnel.v1");
    }
}

/// `tether.discovery.v1`: what the agent's cluster runs.
pub mod discovery {
    pub mod v1 {
        tonic::include_proto!("tether.discovery.v1");
    }
}

/// `tether.drift.v1`: drift reports from the agent.
pub mod drift {
    pub mod v1 {
        tonic::include_proto!("tether.drift.v1");
    }
}

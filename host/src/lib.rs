//! The host: a TCP server speaking a line protocol, whose commands are
//! served by plugins loaded from dynamic libraries listed in `config.toml`.
//!
//! The binary (`main.rs`) wires these modules together; they are a library
//! so that benchmarks and fuzz targets can drive framing and dispatch
//! directly.

pub mod admin;
pub mod admin_commands;
pub mod balance;
pub mod blocking_call;
pub mod call_budget;
pub mod call_slots;
pub mod check;
pub mod config;
pub mod connection;
pub mod control;
pub mod crash_mark;
pub mod dispatch;
pub mod framing;
pub mod handover;
pub mod help;
pub mod host_services;
pub mod idle_cores;
pub mod idle_sweep;
pub mod inbox;
pub mod info;
pub mod metrics;
pub mod notify;
pub mod outgoing;
pub mod pattern;
pub mod placement;
pub mod plugin_states;
pub mod plugins;
pub mod proxy_header;
pub mod reload;
pub mod reload_order;
pub mod reload_socket;
pub mod reply;
pub mod say;
pub mod server;
pub mod serving;
pub mod session;
pub mod shared;
pub mod shutdown;
pub mod stats;
pub mod supervisor;
pub mod table_in_force;
pub mod thread_clock;
pub mod tls;
pub mod tls_files;
pub mod transport;
pub mod watchdog;

//! `cocoon-host`: the operator's agent. It validates VM specs ([`spec`]), supervises the VMs
//! ([`supervisor`], state in [`state`]), computes and publishes their expected measurements
//! ([`measure`]) and serves a management API on a unix socket ([`api`]) that the CLI ([`cli`])
//! uses. docs/host.md is the reference.

pub mod api;
pub mod cli;
pub mod doctor;
pub mod error;
pub mod health;
pub mod image;
pub mod measure;
pub mod qemu;
pub mod qmp;
pub mod spec;
pub mod state;
pub mod supervisor;

pub use error::{Error, Result, SpecReason};

//! RA-TLS: certificates carrying attestation evidence.

pub mod cocoon;

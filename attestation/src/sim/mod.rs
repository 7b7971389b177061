//! The simulated TEE (feature `sim`): a deterministic test CA issuing evidence in the real
//! formats. NOT HARDWARE: accepted only by a policy naming the simulated root.

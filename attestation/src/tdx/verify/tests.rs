//! Unit tests (test CA) — filled below.

//! Deterministic stand-in for `fuzz/fuzz_targets/eventlog_parse.rs` (which needs nightly): the
//! real CCEL logs with thousands of mutations (bit flips, truncations, rewritten length and
//! count fields, spliced events) must parse or fail cleanly, never panic, and replay.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use cocoon_attestation::eventlog::runtime::RuntimeLog;
use cocoon_attestation::eventlog::EventLog;
use std::path::PathBuf;

fn vector(relative: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn exercise(bytes: &[u8]) {
    if let Ok(log) = EventLog::parse(bytes) {
        let _ = log.replay();
        for e in &log.events {
            let _ = e.details();
            let _ = e.digest_matches_data();
        }
    }
    if let Ok(rt) = RuntimeLog::parse(bytes) {
        let mut r = [[0u8; 48]; 4];
        rt.replay_onto(&mut r);
    }
}

#[test]
fn mutated_event_logs_never_panic() {
    let mut rng = XorShift(0x5eed_cce1_0000_0001);
    for name in ["CCEL_data_ovmf", "CCEL_data_grub", "ccel.bin"] {
        let original = vector(&format!("eventlog/{name}"));
        // Only the log proper matters; keep a little padding so the end rule is exercised.
        let end = original.iter().rposition(|b| *b != 0xFF).unwrap() + 16;
        let base = &original[..end.min(original.len())];
        for _ in 0..1500 {
            let mut m = base.to_vec();
            match rng.below(5) {
                0 => {
                    let i = rng.below(m.len());
                    m[i] ^= 1 << rng.below(8);
                }
                1 => m.truncate(rng.below(m.len())),
                2 => {
                    // Rewrite a 32-bit field with an extreme value.
                    let i = rng.below(m.len().saturating_sub(4));
                    let v = [0u32, 1, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF][rng.below(6)];
                    m[i..i + 4].copy_from_slice(&v.to_le_bytes());
                }
                3 => {
                    let a = rng.below(m.len());
                    let b = rng.below(m.len());
                    let (lo, hi) = (a.min(b), a.max(b));
                    let chunk = m[lo..hi].to_vec();
                    let at = rng.below(m.len());
                    m.splice(at..at, chunk);
                }
                _ => {
                    let at = rng.below(m.len());
                    let junk: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                    m.splice(at..at, junk);
                }
            }
            exercise(&m);
        }
    }
}

//! TCG/CCEL event log parser, replay and event details, and the RTMR3 runtime log parser:
//! never panic; a parsed log fits the size and event limits.
#![no_main]

use cocoon_attestation::eventlog::runtime::RuntimeLog;
use cocoon_attestation::eventlog::{EventLog, MAX_EVENTS, MAX_EVENT_LOG};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(log) = EventLog::parse(data) {
        assert!(data.len() <= MAX_EVENT_LOG);
        assert!(log.events.len() <= MAX_EVENTS);
        let _ = log.replay();
        for event in &log.events {
            let _ = event.details();
            let _ = event.digest_matches_data();
        }
    }
    if let Ok(rt) = RuntimeLog::parse(data) {
        let mut rtmrs = [[0u8; 48]; 4];
        rt.replay_onto(&mut rtmrs);
        let _ = rt.to_text();
    }
});

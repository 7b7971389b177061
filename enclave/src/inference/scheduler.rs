//! The scheduler loop: admits queued requests between steps (each prefilled in its own run),
//! then runs ONE batched decode step over every active sequence; finished, cancelled and
//! expired sequences leave at once.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often a paused scheduler looks for dropped streams and deadlines.
const PAUSE_POLL: Duration = Duration::from_millis(5);

use tokio::sync::mpsc;

use super::model::{KvCache, Model, RowInput, RowOutput};
use super::sampling::Sampler;
use super::text::{IncrementalDecoder, StopMatcher, StopOutcome, TextCodec};
use super::{FinishReason, GenerationEvent, InferenceError, Pending, Shared};

/// A sequence being decoded.
struct Sequence {
    tokens: Vec<u32>,
    prompt_len: usize,
    cache: KvCache,
    /// The last sampled token: the next step's input.
    next_input: u32,
    generated: usize,
    max_tokens: usize,
    sampler: Sampler,
    decoder: IncrementalDecoder,
    stop: StopMatcher,
    deadline: Option<Instant>,
    tx: mpsc::UnboundedSender<GenerationEvent>,
}

impl Sequence {
    fn finish(&self, shared: &Shared, reason: FinishReason) {
        shared.counters.finished(reason);
        let _ = self.tx.send(GenerationEvent::Finished {
            reason,
            prompt_tokens: self.prompt_len,
            completion_tokens: self.generated,
        });
    }
}

fn finish_pending(p: &Pending, shared: &Shared, reason: FinishReason) {
    shared.counters.finished(reason);
    let _ = p.tx.send(GenerationEvent::Finished {
        reason,
        prompt_tokens: p.prompt.len(),
        completion_tokens: 0,
    });
}

/// What to do with a sequence after a step.
enum Next {
    Continue,
    Done(FinishReason),
}

/// Samples from `logits`, emits the token event and says whether the sequence goes on.
fn advance(
    seq: &mut Sequence,
    logits: &[f32],
    codec: &TextCodec,
    eos: &[u32],
    shared: &Shared,
) -> Next {
    let token = seq.sampler.sample(logits);
    seq.tokens.push(token);
    seq.generated = seq.generated.saturating_add(1);
    shared
        .counters
        .completion_tokens
        .fetch_add(1, Ordering::Relaxed);
    if eos.contains(&token) {
        let text = seq.stop.flush();
        let _ = seq.tx.send(GenerationEvent::Token {
            token_id: token,
            text,
        });
        return Next::Done(FinishReason::Stop);
    }
    let delta = match seq.decoder.step(codec, &seq.tokens) {
        Ok(d) => d,
        Err(_) => return Next::Done(FinishReason::Error),
    };
    let (mut text, stopped) = match seq.stop.feed(&delta) {
        StopOutcome::Continue(t) => (t, false),
        StopOutcome::Stopped(t) => (t, true),
    };
    let at_length = seq.generated >= seq.max_tokens;
    if at_length && !stopped {
        text.push_str(&seq.stop.flush());
    }
    let _ = seq.tx.send(GenerationEvent::Token {
        token_id: token,
        text,
    });
    if stopped {
        Next::Done(FinishReason::Stop)
    } else if at_length {
        Next::Done(FinishReason::Length)
    } else {
        seq.next_input = token;
        Next::Continue
    }
}

fn timed_run(
    model: &mut Model,
    rows: &[RowInput<'_>],
    shared: &Shared,
) -> Result<Vec<RowOutput>, InferenceError> {
    let start = Instant::now();
    let out = model.run(rows);
    let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    shared
        .counters
        .run_micros
        .fetch_add(micros, Ordering::Relaxed);
    shared
        .counters
        .session_micros
        .store(model.session_micros, Ordering::Relaxed);
    shared
        .counters
        .reused_batch_runs
        .store(model.reused_batch_runs, Ordering::Relaxed);
    out
}

/// Prefills one admitted request in its own run; returns it if it goes on decoding.
fn prefill(p: Pending, model: &mut Model, codec: &TextCodec, shared: &Shared) -> Option<Sequence> {
    let layers = model.meta.num_layers;
    let eos = model.meta.eos_token_ids.clone();
    let empty = KvCache::empty(layers);
    shared.counters.prefills.fetch_add(1, Ordering::Relaxed);
    let prompt_len = p.prompt.len();
    shared.counters.prompt_tokens.fetch_add(
        u64::try_from(prompt_len).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    let result = timed_run(
        model,
        &[RowInput {
            tokens: &p.prompt,
            cache: &empty,
        }],
        shared,
    );
    let out = match result.map(|mut v| v.pop()) {
        Ok(Some(o)) => o,
        Ok(None) | Err(_) => {
            finish_pending(&p, shared, FinishReason::Error);
            return None;
        }
    };
    let mut seq = Sequence {
        tokens: p.prompt,
        prompt_len,
        cache: out.cache,
        next_input: 0,
        generated: 0,
        max_tokens: p.params.max_tokens,
        sampler: Sampler::new(&p.params),
        decoder: IncrementalDecoder::new(prompt_len),
        stop: StopMatcher::new(p.params.stop),
        deadline: p.deadline,
        tx: p.tx,
    };
    match advance(&mut seq, &out.logits, codec, &eos, shared) {
        Next::Continue => Some(seq),
        Next::Done(reason) => {
            seq.finish(shared, reason);
            None
        }
    }
}

/// Drops queued requests whose streams are gone and ends those whose deadline passed.
fn sweep_queue(shared: &Shared, now: Instant) {
    let mut q = shared.lock();
    let mut kept = std::collections::VecDeque::with_capacity(q.waiting.len());
    while let Some(p) = q.waiting.pop_front() {
        if p.tx.is_closed() {
            shared.counters.finished(FinishReason::Cancelled);
        } else if p.deadline.is_some_and(|d| now >= d) {
            finish_pending(&p, shared, FinishReason::Deadline);
        } else {
            kept.push_back(p);
        }
    }
    q.waiting = kept;
}

/// The scheduler loop; returns when shut down and drained.
pub(super) fn run(mut model: Model, codec: &TextCodec, shared: &Shared, max_sequences: usize) {
    let eos = model.meta.eos_token_ids.clone();
    let mut active: Vec<Sequence> = Vec::new();
    loop {
        let now = Instant::now();
        // Leavers: dropped streams and expired deadlines.
        active.retain(|s| {
            if s.tx.is_closed() {
                shared.counters.finished(FinishReason::Cancelled);
                false
            } else if s.deadline.is_some_and(|d| now >= d) {
                s.finish(shared, FinishReason::Deadline);
                false
            } else {
                true
            }
        });
        // Publish the count now: the loop may go idle below without another store.
        shared
            .counters
            .active
            .store(active.len(), Ordering::Relaxed);
        sweep_queue(shared, now);

        // Joiners: prefill each on its own, up to the sequence limit.
        while active.len() < max_sequences {
            let next = {
                let mut q = shared.lock();
                if active.is_empty() {
                    // Idle: wait for work or for the end.
                    while q.waiting.is_empty() && !q.shutting_down {
                        q = shared
                            .wake
                            .wait(q)
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                    }
                    if q.waiting.is_empty() && q.shutting_down {
                        q.stopped = true;
                        shared.counters.active.store(0, Ordering::Relaxed);
                        return;
                    }
                }
                q.waiting.pop_front()
            };
            let Some(p) = next else { break };
            if p.tx.is_closed() {
                shared.counters.finished(FinishReason::Cancelled);
                continue;
            }
            if p.deadline.is_some_and(|d| Instant::now() >= d) {
                finish_pending(&p, shared, FinishReason::Deadline);
                continue;
            }
            // The sequence counts as active from before its first token is sent.
            shared
                .counters
                .active
                .store(active.len().saturating_add(1), Ordering::Relaxed);
            if let Some(seq) = prefill(p, &mut model, codec, shared) {
                active.push(seq);
            }
            shared
                .counters
                .active
                .store(active.len(), Ordering::Relaxed);
        }
        shared
            .counters
            .active
            .store(active.len(), Ordering::Relaxed);
        if active.is_empty() {
            continue;
        }
        {
            let q = shared.lock();
            if q.decode_paused {
                // Poll: dropped streams do not signal the condition variable.
                let _ = shared
                    .wake
                    .wait_timeout(q, PAUSE_POLL)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
        }

        // One batched decode step over every active sequence.
        let result = {
            let rows: Vec<RowInput<'_>> = active
                .iter()
                .map(|s| RowInput {
                    tokens: std::slice::from_ref(&s.next_input),
                    cache: &s.cache,
                })
                .collect();
            timed_run(&mut model, &rows, shared)
        };
        shared
            .counters
            .last_batch
            .store(active.len(), Ordering::Relaxed);
        shared.counters.decode_steps.fetch_add(1, Ordering::Relaxed);
        shared.counters.decode_rows.fetch_add(
            u64::try_from(active.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let outputs = match result {
            Ok(o) if o.len() == active.len() => o,
            _ => {
                for s in active.drain(..) {
                    s.finish(shared, FinishReason::Error);
                }
                shared.counters.active.store(0, Ordering::Relaxed);
                continue;
            }
        };
        let mut still = Vec::with_capacity(active.len());
        for (mut seq, out) in active.drain(..).zip(outputs) {
            seq.cache = out.cache;
            match advance(&mut seq, &out.logits, codec, &eos, shared) {
                Next::Continue => still.push(seq),
                Next::Done(reason) => seq.finish(shared, reason),
            }
        }
        active = still;
        shared
            .counters
            .active
            .store(active.len(), Ordering::Relaxed);
    }
}

//! Choosing the next token from logits: greedy, temperature, top-k, top-p, seeded.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// How a sequence picks its tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Most tokens to generate (EOS included).
    pub max_tokens: usize,
    /// 0 = greedy (argmax, lowest id on ties).
    pub temperature: f32,
    /// Nucleus mass in (0, 1]; 1 = off.
    pub top_p: f32,
    /// Keep the k most likely tokens; 0 = off.
    pub top_k: usize,
    /// Seed for reproducible sampling; `None` draws one from the OS.
    pub seed: Option<u64>,
    /// Stop strings: generation ends before the first occurrence, which is not returned.
    pub stop: Vec<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            max_tokens: 16,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: None,
            stop: Vec::new(),
        }
    }
}

/// Limits on stop strings.
pub const MAX_STOP_STRINGS: usize = 16;
/// Longest stop string, bytes.
pub const MAX_STOP_BYTES: usize = 256;

impl SamplingParams {
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.max_tokens == 0 {
            return Err("max_tokens must be at least 1".to_owned());
        }
        if !self.temperature.is_finite() || self.temperature < 0.0 || self.temperature > 100.0 {
            return Err("temperature must be in [0, 100]".to_owned());
        }
        if !self.top_p.is_finite() || self.top_p <= 0.0 || self.top_p > 1.0 {
            return Err("top_p must be in (0, 1]".to_owned());
        }
        if self.stop.len() > MAX_STOP_STRINGS {
            return Err(format!("at most {MAX_STOP_STRINGS} stop strings"));
        }
        if self.stop.iter().any(|s| s.len() > MAX_STOP_BYTES) {
            return Err(format!("stop strings are at most {MAX_STOP_BYTES} bytes"));
        }
        Ok(())
    }
}

/// A sequence's sampler: its parameters and its own random stream.
pub(crate) struct Sampler {
    temperature: f32,
    top_p: f32,
    top_k: usize,
    rng: ChaCha20Rng,
}

impl Sampler {
    pub(crate) fn new(params: &SamplingParams) -> Self {
        let rng = match params.seed {
            Some(seed) => ChaCha20Rng::seed_from_u64(seed),
            None => ChaCha20Rng::from_entropy(),
        };
        Self {
            temperature: params.temperature,
            top_p: params.top_p,
            top_k: params.top_k,
            rng,
        }
    }

    pub(crate) fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.temperature <= 0.0 {
            return argmax(logits);
        }
        // Candidates sorted by logit, descending (ties: lower id first).
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.is_nan())
            .map(|(i, &l)| (u32::try_from(i).unwrap_or(u32::MAX), l))
            .collect();
        if cand.is_empty() {
            return 0;
        }
        // Order: logit descending, then id ascending (a total order, so every step is exact).
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if self.top_k > 0 && self.top_k < cand.len() {
            // O(vocab) selection of the k best (no full sort).
            cand.select_nth_unstable_by(self.top_k.saturating_sub(1), order);
            cand.truncate(self.top_k);
        }
        if self.top_p < 1.0 {
            // The nucleus needs the candidates by probability.
            cand.sort_by(order);
        }
        let max = cand.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
        let inv_t = 1.0 / self.temperature;
        let mut probs: Vec<f64> = cand
            .iter()
            .map(|c| f64::from((c.1 - max) * inv_t).exp())
            .collect();
        let sum: f64 = probs.iter().sum();
        if sum.is_nan() || sum <= 0.0 || !sum.is_finite() {
            return cand.iter().min_by(|a, b| order(a, b)).map_or(0, |c| c.0);
        }
        for p in &mut probs {
            *p /= sum;
        }
        if self.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if acc >= f64::from(self.top_p) {
                    keep = i.saturating_add(1);
                    break;
                }
            }
            probs.truncate(keep);
            cand.truncate(keep);
            let s: f64 = probs.iter().sum();
            if s > 0.0 {
                for p in &mut probs {
                    *p /= s;
                }
            }
        }
        let r: f64 = self.rng.gen::<f64>();
        let mut acc = 0.0;
        for (c, p) in cand.iter().zip(&probs) {
            acc += p;
            if r < acc {
                return c.0;
            }
        }
        cand.last().map_or(0, |c| c.0)
    }
}

/// The index of the largest logit (lowest index on ties; NaN never wins).
pub(crate) fn argmax(logits: &[f32]) -> u32 {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_nan() {
            continue;
        }
        match best {
            Some((_, b)) if l <= b => {}
            _ => best = Some((i, l)),
        }
    }
    best.map_or(0, |(i, _)| u32::try_from(i).unwrap_or(u32::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn argmax_prefers_the_lowest_index_on_ties_and_skips_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, f32::NAN]), 1);
        assert_eq!(argmax(&[f32::NAN, -1.0]), 1);
    }

    #[test]
    fn top_k_one_is_greedy_at_any_temperature() {
        let params = SamplingParams {
            temperature: 5.0,
            top_k: 1,
            seed: Some(3),
            ..SamplingParams::default()
        };
        let mut s = Sampler::new(&params);
        for _ in 0..50 {
            assert_eq!(s.sample(&[0.0, 2.0, 1.9, 0.5]), 1);
        }
    }

    #[test]
    fn same_seed_gives_the_same_draws() {
        let params = SamplingParams {
            temperature: 1.0,
            seed: Some(42),
            ..SamplingParams::default()
        };
        let logits: Vec<f32> = (0..100).map(|i| (i % 7) as f32 * 0.3).collect();
        let a: Vec<u32> = {
            let mut s = Sampler::new(&params);
            (0..64).map(|_| s.sample(&logits)).collect()
        };
        let b: Vec<u32> = {
            let mut s = Sampler::new(&params);
            (0..64).map(|_| s.sample(&logits)).collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn top_k_samples_only_among_the_k_most_likely() {
        let params = SamplingParams {
            temperature: 100.0,
            top_k: 3,
            seed: Some(9),
            ..SamplingParams::default()
        };
        let mut s = Sampler::new(&params);
        let logits = [0.5, 3.0, 0.1, 2.0, 2.5, -1.0, 0.0];
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..300 {
            seen.insert(s.sample(&logits));
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![1, 3, 4]);
    }

    #[test]
    fn high_temperature_without_limits_reaches_every_token() {
        let params = SamplingParams {
            temperature: 100.0,
            seed: Some(5),
            ..SamplingParams::default()
        };
        let mut s = Sampler::new(&params);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..500 {
            seen.insert(s.sample(&[1.0, 0.0, 2.0, 0.5]));
        }
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn tiny_top_p_keeps_only_the_most_likely_token() {
        let params = SamplingParams {
            temperature: 1.0,
            top_p: 0.01,
            seed: Some(1),
            ..SamplingParams::default()
        };
        let mut s = Sampler::new(&params);
        for _ in 0..50 {
            assert_eq!(s.sample(&[0.0, 1.0, 3.0, 2.0]), 2);
        }
    }
}

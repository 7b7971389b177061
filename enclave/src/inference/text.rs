//! Tokenizer, incremental (UTF-8 safe) detokenization, stop strings and the chat template.

use minijinja::{Environment, ErrorKind, Value};
use serde::Serialize;

use super::error::InferenceError;

/// A chat message for the template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// Fuel for one template render (bounds loops in a hostile or buggy template).
const TEMPLATE_FUEL: u64 = 1_000_000;

pub(crate) struct TextCodec {
    tokenizer: tokenizers::Tokenizer,
    chat_template: Option<String>,
    bos_token: String,
    eos_token: String,
}

impl TextCodec {
    pub(crate) fn new(
        tokenizer_json: &[u8],
        chat_template: Option<String>,
        bos_token_id: Option<u32>,
        eos_token_id: Option<u32>,
    ) -> Result<Self, InferenceError> {
        let tokenizer = tokenizers::Tokenizer::from_bytes(tokenizer_json).map_err(|e| {
            InferenceError::Tokenizer {
                message: e.to_string(),
            }
        })?;
        let name = |id: Option<u32>| {
            id.and_then(|i| tokenizer.id_to_token(i))
                .unwrap_or_default()
        };
        let bos_token = name(bos_token_id);
        let eos_token = name(eos_token_id);
        let codec = Self {
            tokenizer,
            chat_template,
            bos_token,
            eos_token,
        };
        // Compile once now so that a broken template fails the load, not the first request.
        if let Some(t) = &codec.chat_template {
            let env = template_env();
            env.template_from_str(t)
                .map_err(|e| InferenceError::ChatTemplate {
                    message: e.to_string(),
                })?;
        }
        Ok(codec)
    }

    pub(crate) fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Token ids of `text`, special tokens in the text recognised, none added.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>, InferenceError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| InferenceError::Tokenize {
                message: e.to_string(),
            })
    }

    pub(crate) fn decode(&self, ids: &[u32]) -> Result<String, InferenceError> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| InferenceError::Tokenize {
                message: e.to_string(),
            })
    }

    pub(crate) fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, InferenceError> {
        let source = self
            .chat_template
            .as_deref()
            .ok_or(InferenceError::NoChatTemplate)?;
        render_chat_template(
            source,
            messages,
            add_generation_prompt,
            &self.bos_token,
            &self.eos_token,
        )
    }
}

/// Renders a Hugging Face chat template: `messages`, `add_generation_prompt`, `bos_token`,
/// `eos_token`, `raise_exception(msg)`, `tojson`, Python string methods; `trim_blocks` and
/// `lstrip_blocks` as in transformers; bounded by fuel.
pub fn render_chat_template(
    source: &str,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
    bos_token: &str,
    eos_token: &str,
) -> Result<String, InferenceError> {
    let env = template_env();
    let template = env
        .template_from_str(source)
        .map_err(|e| InferenceError::ChatTemplate {
            message: e.to_string(),
        })?;
    template
        .render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => bos_token,
            eos_token => eos_token,
        })
        .map_err(|e| InferenceError::ChatTemplate {
            message: match e.kind() {
                ErrorKind::InvalidOperation => e
                    .detail()
                    .map_or_else(|| e.to_string(), std::borrow::ToOwned::to_owned),
                _ => e.to_string(),
            },
        })
}

fn raise_exception(message: String) -> Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
}

/// The environment HF chat templates expect: Python-like string methods, `raise_exception`,
/// `tojson`, no HTML escaping, `trim_blocks`/`lstrip_blocks` as in transformers.
fn template_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_filter("tojson", tojson);
    env
}

/// `tojson` as transformers defines it for chat templates: Python's `json.dumps` with
/// `ensure_ascii=False` (separators `", "` and `": "`, or newlines and `indent` spaces), no HTML
/// escaping, keys in insertion order.
fn tojson(value: Value, kwargs: minijinja::value::Kwargs) -> Result<Value, minijinja::Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    // Accepted for compatibility; the output is the same either way for our inputs.
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    let mut out = Vec::new();
    let result = match indent {
        Some(n) => {
            let pad = vec![b' '; n.min(16)];
            let fmt = serde_json::ser::PrettyFormatter::with_indent(&pad);
            let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
            value.serialize(&mut ser)
        }
        None => {
            let mut ser = serde_json::Serializer::with_formatter(&mut out, PyCompact);
            value.serialize(&mut ser)
        }
    };
    result.map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let text = String::from_utf8(out)
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    Ok(Value::from_safe_string(text))
}

/// Python's default `json.dumps` separators: `", "` and `": "`.
struct PyCompact;

impl serde_json::ser::Formatter for PyCompact {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// Turns a growing token list into UTF-8 text deltas: text is released only once the
/// tokens decode without a trailing replacement character, and decoding runs over a small
/// window so that tokenizers that merge spaces across tokens come out right.
#[derive(Debug)]
pub(crate) struct IncrementalDecoder {
    prefix_offset: usize,
    read_offset: usize,
}

impl IncrementalDecoder {
    /// `tokens` starts with the prompt; the window begins a few tokens before its end.
    pub(crate) fn new(prompt_len: usize) -> Self {
        Self {
            prefix_offset: prompt_len.saturating_sub(5),
            read_offset: prompt_len,
        }
    }

    /// The text that the last token of `tokens` adds (possibly empty while a character is
    /// incomplete).
    pub(crate) fn step(
        &mut self,
        codec: &TextCodec,
        tokens: &[u32],
    ) -> Result<String, InferenceError> {
        let prefix_ids = tokens
            .get(self.prefix_offset..self.read_offset)
            .unwrap_or_default();
        let all_ids = tokens.get(self.prefix_offset..).unwrap_or_default();
        let prefix = codec.decode(prefix_ids)?;
        let full = codec.decode(all_ids)?;
        if full.len() > prefix.len() && !full.ends_with('\u{FFFD}') {
            let delta = match full.get(prefix.len()..) {
                Some(d) if full.starts_with(&prefix) => d.to_owned(),
                // The window re-decoded differently: release what is new by characters.
                _ => full.chars().skip(prefix.chars().count()).collect(),
            };
            self.prefix_offset = self.read_offset;
            self.read_offset = tokens.len();
            Ok(delta)
        } else {
            Ok(String::new())
        }
    }
}

/// Holds back text that may be the start of a stop string and finds stop strings that span
/// tokens.
#[derive(Debug, Default)]
pub(crate) struct StopMatcher {
    stops: Vec<String>,
    pending: String,
}

/// What to emit after feeding text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StopOutcome {
    /// Emit this text (maybe empty); go on.
    Continue(String),
    /// Emit this text (the text before the stop string); the sequence stops.
    Stopped(String),
}

impl StopMatcher {
    pub(crate) fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            pending: String::new(),
        }
    }

    pub(crate) fn feed(&mut self, delta: &str) -> StopOutcome {
        if self.stops.is_empty() {
            return StopOutcome::Continue(delta.to_owned());
        }
        self.pending.push_str(delta);
        let earliest = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min();
        if let Some(at) = earliest {
            let before = self.pending.get(..at).unwrap_or_default().to_owned();
            self.pending.clear();
            return StopOutcome::Stopped(before);
        }
        // Keep the longest suffix that is a prefix of some stop string.
        let mut keep_from = self.pending.len();
        for (i, _) in self.pending.char_indices() {
            let suffix = self.pending.get(i..).unwrap_or_default();
            if self.stops.iter().any(|s| s.starts_with(suffix)) {
                keep_from = i;
                break;
            }
        }
        let emit = self.pending.get(..keep_from).unwrap_or_default().to_owned();
        let rest = self.pending.get(keep_from..).unwrap_or_default().to_owned();
        self.pending = rest;
        StopOutcome::Continue(emit)
    }

    /// The held-back text, released when the sequence ends without a stop string.
    pub(crate) fn flush(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn stop_string_spanning_deltas_is_found_and_not_emitted() {
        let mut m = StopMatcher::new(vec!["END".to_owned()]);
        assert_eq!(m.feed("abcE"), StopOutcome::Continue("abc".to_owned()));
        assert_eq!(m.feed("N"), StopOutcome::Continue(String::new()));
        assert_eq!(m.feed("Dxyz"), StopOutcome::Stopped(String::new()));
    }

    #[test]
    fn held_back_prefix_is_released_when_it_turns_out_not_to_be_a_stop() {
        let mut m = StopMatcher::new(vec!["END".to_owned()]);
        assert_eq!(m.feed("aE"), StopOutcome::Continue("a".to_owned()));
        assert_eq!(m.feed("x"), StopOutcome::Continue("Ex".to_owned()));
        assert_eq!(m.feed("EN"), StopOutcome::Continue(String::new()));
        assert_eq!(m.flush(), "EN");
    }

    #[test]
    fn earliest_of_several_stop_strings_wins() {
        let mut m = StopMatcher::new(vec!["cd".to_owned(), "b".to_owned()]);
        assert_eq!(m.feed("abcd"), StopOutcome::Stopped("a".to_owned()));
    }

    fn msgs(pairs: &[(&str, &str)]) -> Vec<ChatMessage> {
        pairs
            .iter()
            .map(|(r, c)| ChatMessage {
                role: (*r).to_owned(),
                content: (*c).to_owned(),
            })
            .collect()
    }

    /// SmolLM2-135M-Instruct's chat template (from its GGUF / tokenizer_config.json).
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn smollm2_template_renders_exactly_as_transformers_does() {
        let out = render_chat_template(
            SMOLLM2,
            &msgs(&[("user", "What is the capital of France?")]),
            true,
            "",
            "<|im_end|>",
        )
        .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
        );
        let with_system = render_chat_template(
            SMOLLM2,
            &msgs(&[("system", "Be brief."), ("user", "Hi")]),
            false,
            "",
            "",
        )
        .unwrap();
        assert_eq!(
            with_system,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        );
    }

    #[test]
    fn raise_exception_in_a_template_is_a_chat_template_error_with_its_message() {
        let t = "{% if messages[0]['role'] == 'assistant' %}{{ raise_exception('Conversation must start with a user') }}{% endif %}ok";
        let err = render_chat_template(t, &msgs(&[("assistant", "x")]), false, "", "").unwrap_err();
        assert_eq!(
            err,
            InferenceError::ChatTemplate {
                message: "Conversation must start with a user".to_owned()
            }
        );
    }

    #[test]
    fn templates_get_tojson_python_methods_bos_and_loop_variables() {
        let t = "{{ bos_token }}{% for m in messages %}{{ loop.index0 }}:{{ m.content.strip() | tojson }}{% if not loop.last %},{% endif %}{% endfor %}{{ eos_token }}";
        let out = render_chat_template(
            t,
            &msgs(&[("user", "  a\"b  "), ("assistant", "c")]),
            false,
            "<s>",
            "</s>",
        )
        .unwrap();
        assert_eq!(out, "<s>0:\"a\\\"b\",1:\"c\"</s>");
    }

    #[test]
    fn tojson_matches_python_json_dumps_as_transformers_calls_it() {
        let t =
            "{{ messages | tojson }}|{{ messages[0] | tojson(indent=2) }}|{{ '<b>&' | tojson }}";
        let out = render_chat_template(t, &msgs(&[("user", "é\n")]), false, "", "").unwrap();
        assert_eq!(
            out,
            "[{\"role\": \"user\", \"content\": \"é\\n\"}]|{\n  \"role\": \"user\",\n  \"content\": \"é\\n\"\n}|\"<b>&\""
        );
    }

    #[test]
    fn a_template_that_never_ends_runs_out_of_fuel() {
        let t = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        assert!(matches!(
            render_chat_template(t, &[], false, "", ""),
            Err(InferenceError::ChatTemplate { .. })
        ));
    }

    fn committed_tokenizer(model: &str) -> TextCodec {
        let path = crate::inference::workspace_root()
            .join("tests/data/models")
            .join(model)
            .join("tokenizer.json");
        TextCodec::new(&std::fs::read(path).unwrap(), None, None, None).unwrap()
    }

    #[test]
    fn incremental_decoding_releases_a_multibyte_character_only_when_complete() {
        // Byte-level tokenizer: the id of byte b is b, so "é" is two tokens.
        let codec = committed_tokenizer("successor");
        let mut tokens = codec.encode("ab").unwrap();
        let mut dec = IncrementalDecoder::new(tokens.len());
        let mut deltas = Vec::new();
        for t in codec.encode("é€x").unwrap() {
            tokens.push(t);
            deltas.push(dec.step(&codec, &tokens).unwrap());
        }
        assert_eq!(deltas, vec!["", "é", "", "", "€", "x"]);
    }

    #[test]
    fn incremental_decoding_keeps_spaces_of_merged_tokens() {
        let codec = committed_tokenizer("tiny-gpt");
        let text = "hello the world";
        let ids = codec.encode(text).unwrap();
        let mut tokens = Vec::new();
        let mut dec = IncrementalDecoder::new(0);
        let mut out = String::new();
        for t in ids {
            tokens.push(t);
            out.push_str(&dec.step(&codec, &tokens).unwrap());
        }
        assert_eq!(out, text);
    }

    #[test]
    fn no_stop_strings_passes_text_through() {
        let mut m = StopMatcher::new(vec![String::new()]);
        assert_eq!(m.feed("x"), StopOutcome::Continue("x".to_owned()));
    }
}

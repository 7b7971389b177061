//! Parsing the JSON of `/v1/chat/completions` and `/v1/completions` into engine requests.
//!
//! Policy (docs/api.md): unknown fields are ignored; known OpenAI fields we do not implement
//! are accepted only with their neutral value (e.g. `n: 1`, `presence_penalty: 0`,
//! `logprobs: false`) and refused with 400 otherwise, naming the field in `param`.

use serde_json::{Map, Value};

use super::error::ApiError;
use crate::inference::{ChatMessage, MAX_STOP_BYTES, MAX_STOP_STRINGS};

/// What both endpoints share.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    pub model: Option<String>,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_tokens: Option<usize>,
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: usize,
    pub seed: Option<u64>,
    pub stop: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
}

/// The prompt of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Chat(Vec<ChatMessage>),
    Text(String),
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    pub common: Common,
    pub prompt: Prompt,
}

/// Which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
}

const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

pub fn parse(body: &[u8], endpoint: Endpoint) -> Result<ParsedRequest, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::InvalidRequest {
        message: format!("the body is not valid JSON: {e}"),
        param: None,
        code: "invalid_json",
    })?;
    let Value::Object(map) = value else {
        return Err(ApiError::InvalidRequest {
            message: "the body must be a JSON object".into(),
            param: None,
            code: "invalid_json",
        });
    };
    let common = common(&map, endpoint)?;
    let prompt = match endpoint {
        Endpoint::Chat => Prompt::Chat(messages(&map)?),
        Endpoint::Completions => Prompt::Text(prompt(&map)?),
    };
    Ok(ParsedRequest { common, prompt })
}

fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

fn number(map: &Map<String, Value>, key: &'static str) -> Result<Option<f64>, ApiError> {
    match present(map, key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid(key, format!("`{key}` must be a number"))),
    }
}

fn count(map: &Map<String, Value>, key: &'static str) -> Result<Option<usize>, ApiError> {
    match present(map, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid(key, format!("`{key}` must be a non-negative integer"))
            }),
    }
}

fn boolean(map: &Map<String, Value>, key: &'static str) -> Result<bool, ApiError> {
    match present(map, key) {
        None => Ok(false),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| ApiError::invalid(key, format!("`{key}` must be a boolean"))),
    }
}

/// A field we accept only with its neutral value.
fn neutral(
    map: &Map<String, Value>,
    key: &'static str,
    is_neutral: impl Fn(&Value) -> bool,
    what: &str,
) -> Result<(), ApiError> {
    match present(map, key) {
        Some(v) if !is_neutral(v) => Err(ApiError::unsupported(
            key,
            format!("`{key}` is not supported (only {what})"),
        )),
        _ => Ok(()),
    }
}

fn is_zero(v: &Value) -> bool {
    v.as_f64() == Some(0.0)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn common(map: &Map<String, Value>, endpoint: Endpoint) -> Result<Common, ApiError> {
    let model = match present(map, "model") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::invalid("model", "`model` must be a string")),
    };
    match present(map, "n") {
        None => {}
        Some(v) if v.as_u64() == Some(1) => {}
        Some(_) => {
            return Err(ApiError::unsupported(
                "n",
                "`n` must be 1: one choice per request is supported",
            ))
        }
    }
    neutral(map, "presence_penalty", is_zero, "0")?;
    neutral(map, "frequency_penalty", is_zero, "0")?;
    neutral(map, "logit_bias", is_empty, "an empty object")?;
    neutral(map, "tools", is_empty, "an empty list")?;
    neutral(map, "functions", is_empty, "an empty list")?;
    neutral(map, "best_of", |v| v.as_u64() == Some(1), "1")?;
    neutral(map, "echo", |v| v.as_bool() == Some(false), "false")?;
    neutral(map, "suffix", |v| v.as_str() == Some(""), "an empty string")?;
    neutral(
        map,
        "response_format",
        |v| v.get("type").and_then(Value::as_str) == Some("text"),
        "{\"type\": \"text\"}",
    )?;
    match endpoint {
        Endpoint::Chat => {
            neutral(map, "logprobs", |v| v.as_bool() == Some(false), "false")?;
            neutral(map, "top_logprobs", is_zero, "0")?;
        }
        // In /v1/completions `logprobs` is a count.
        Endpoint::Completions => neutral(map, "logprobs", is_zero, "0 or null")?,
    }

    let max_tokens = match count(map, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => count(map, "max_tokens")?,
    };
    if max_tokens == Some(0) {
        return Err(ApiError::invalid(
            if present(map, "max_completion_tokens").is_some() {
                "max_completion_tokens"
            } else {
                "max_tokens"
            },
            "the token limit must be at least 1",
        ));
    }
    let temperature = number(map, "temperature")?.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid(
            "temperature",
            "`temperature` must be between 0 and 2",
        ));
    }
    let top_p = number(map, "top_p")?.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid(
            "top_p",
            "`top_p` must be greater than 0 and at most 1",
        ));
    }
    let top_k = match present(map, "top_k") {
        None => 0,
        // -1 means "off", as in vLLM.
        Some(v) if v.as_i64() == Some(-1) => 0,
        Some(_) => count(map, "top_k")?.unwrap_or(0),
    };
    let seed = match present(map, "seed") {
        None => None,
        Some(v) => match (v.as_u64(), v.as_i64()) {
            (Some(u), _) => Some(u),
            (None, Some(i)) => Some(u64::from_ne_bytes(i.to_ne_bytes())),
            _ => return Err(ApiError::invalid("seed", "`seed` must be an integer")),
        },
    };
    let stop = stop(map)?;
    let stream = boolean(map, "stream")?;
    let include_usage = match present(map, "stream_options") {
        None => false,
        Some(_) if !stream => {
            return Err(ApiError::invalid(
                "stream_options",
                "`stream_options` is only allowed when `stream` is true",
            ))
        }
        Some(Value::Object(options)) => match options.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ApiError::invalid(
                    "stream_options",
                    "`stream_options.include_usage` must be a boolean",
                ))
            }
        },
        Some(_) => {
            return Err(ApiError::invalid(
                "stream_options",
                "`stream_options` must be an object",
            ))
        }
    };
    #[allow(clippy::cast_possible_truncation)]
    Ok(Common {
        model,
        max_tokens,
        temperature: temperature as f32,
        top_p: top_p as f32,
        top_k,
        seed,
        stop,
        stream,
        include_usage,
    })
}

fn stop(map: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let list = match present(map, "stop") {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::invalid("stop", "`stop` must be a string or a list of strings")
            })?,
        Some(_) => {
            return Err(ApiError::invalid(
                "stop",
                "`stop` must be a string or a list of strings",
            ))
        }
    };
    if list.len() > MAX_STOP_STRINGS {
        return Err(ApiError::invalid(
            "stop",
            format!("at most {MAX_STOP_STRINGS} stop strings"),
        ));
    }
    if list
        .iter()
        .any(|s| s.is_empty() || s.len() > MAX_STOP_BYTES)
    {
        return Err(ApiError::invalid(
            "stop",
            format!("each stop string must be 1 to {MAX_STOP_BYTES} bytes"),
        ));
    }
    Ok(list)
}

fn messages(map: &Map<String, Value>) -> Result<Vec<ChatMessage>, ApiError> {
    let Some(Value::Array(items)) = present(map, "messages") else {
        return Err(ApiError::invalid(
            "messages",
            "`messages` must be a non-empty list of messages",
        ));
    };
    if items.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "`messages` must be a non-empty list of messages",
        ));
    }
    items.iter().map(message).collect()
}

fn message(item: &Value) -> Result<ChatMessage, ApiError> {
    let role = item
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("messages", "each message needs a string `role`"))?;
    if !ROLES.contains(&role) {
        return Err(ApiError::invalid(
            "messages",
            format!("unknown role {role:?} (system, developer, user, assistant, tool)"),
        ));
    }
    let content = match item.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (
                    part.get("type").and_then(Value::as_str),
                    part.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    _ => {
                        return Err(ApiError::unsupported(
                            "messages",
                            "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported",
                        ))
                    }
                }
            }
            text
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "messages",
                "a message's `content` must be a string or a list of text parts",
            ))
        }
    };
    Ok(ChatMessage {
        role: role.to_owned(),
        content,
    })
}

fn prompt(map: &Map<String, Value>) -> Result<String, ApiError> {
    let bad = || {
        ApiError::invalid(
            "prompt",
            "`prompt` must be a non-empty string or a list of exactly one string",
        )
    };
    let text = match present(map, "prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => match items.as_slice() {
            [Value::String(s)] => s.clone(),
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    if text.is_empty() {
        return Err(bad());
    }
    Ok(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn chat(json: &str) -> Result<ParsedRequest, ApiError> {
        parse(json.as_bytes(), Endpoint::Chat)
    }

    fn param_of(err: ApiError) -> Option<&'static str> {
        match err {
            ApiError::InvalidRequest { param, .. } => param,
            other => panic!("not an invalid request: {other:?}"),
        }
    }

    #[test]
    fn a_minimal_chat_request_gets_openai_defaults() {
        let r = chat(r#"{"messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert_eq!(r.common.temperature, 1.0);
        assert_eq!(r.common.top_p, 1.0);
        assert_eq!(r.common.max_tokens, None);
        assert!(!r.common.stream);
        assert_eq!(
            r.prompt,
            Prompt::Chat(vec![ChatMessage {
                role: "user".into(),
                content: "hi".into()
            }])
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_neutral_values_accepted() {
        let r = chat(
            r#"{"messages":[{"role":"user","content":"hi"}],"user":"u","whatever":{"x":1},
               "n":1,"presence_penalty":0,"frequency_penalty":0.0,"logprobs":false,"logit_bias":{}}"#,
        )
        .unwrap();
        assert_eq!(r.common.model, None);
    }

    #[test]
    fn unsupported_values_name_their_field() {
        let m = r#""messages":[{"role":"user","content":"hi"}]"#;
        for (extra, param) in [
            (r#""n":2"#, "n"),
            (r#""presence_penalty":0.5"#, "presence_penalty"),
            (r#""logprobs":true"#, "logprobs"),
            (r#""tools":[{"type":"function"}]"#, "tools"),
            (r#""temperature":3"#, "temperature"),
            (r#""top_p":0"#, "top_p"),
            (r#""max_tokens":0"#, "max_tokens"),
            (r#""stop":[1]"#, "stop"),
            (
                r#""stream_options":{"include_usage":true}"#,
                "stream_options",
            ),
            (r#""seed":"x""#, "seed"),
        ] {
            let err = chat(&format!("{{{m},{extra}}}")).unwrap_err();
            assert_eq!(param_of(err), Some(param), "{extra}");
        }
    }

    #[test]
    fn max_completion_tokens_wins_over_max_tokens() {
        let r = chat(
            r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"max_completion_tokens":7}"#,
        )
        .unwrap();
        assert_eq!(r.common.max_tokens, Some(7));
    }

    #[test]
    fn prompt_is_a_string_or_a_list_of_one_string() {
        let p = |j: &str| parse(j.as_bytes(), Endpoint::Completions);
        assert_eq!(
            p(r#"{"prompt":"ab"}"#).unwrap().prompt,
            Prompt::Text("ab".into())
        );
        assert_eq!(
            p(r#"{"prompt":["ab"]}"#).unwrap().prompt,
            Prompt::Text("ab".into())
        );
        assert_eq!(
            param_of(p(r#"{"prompt":["a","b"]}"#).unwrap_err()),
            Some("prompt")
        );
        assert_eq!(param_of(p(r#"{"prompt":""}"#).unwrap_err()), Some("prompt"));
        assert_eq!(
            param_of(p(r#"{"prompt":[1,2]}"#).unwrap_err()),
            Some("prompt")
        );
    }

    #[test]
    fn stop_and_stream_options_parse() {
        let r = chat(
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
                "stop":"x","stream":true,"stream_options":{"include_usage":true},"seed":-1,"top_k":-1}"#,
        )
        .unwrap();
        assert_eq!(r.common.stop, vec!["x".to_owned()]);
        assert!(r.common.stream && r.common.include_usage);
        assert_eq!(r.common.seed, Some(u64::MAX));
        assert_eq!(r.common.top_k, 0);
        assert_eq!(
            r.prompt,
            Prompt::Chat(vec![ChatMessage {
                role: "user".into(),
                content: "ab".into()
            }])
        );
    }

    #[test]
    fn malformed_json_is_refused_as_invalid_json() {
        assert!(matches!(
            chat("{"),
            Err(ApiError::InvalidRequest {
                code: "invalid_json",
                ..
            })
        ));
        assert!(matches!(
            chat("[]"),
            Err(ApiError::InvalidRequest {
                code: "invalid_json",
                ..
            })
        ));
    }
}

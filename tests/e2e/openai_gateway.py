"""The official OpenAI Python SDK, unchanged, against `cocoon gateway` (run by tests/e2e/gateway.sh).

Asserts: models.list() names the served model; a chat completion and a streamed one answer
"Paris" (and both went sealed to the enclave's HPKE key); a gateway whose policy pins another model digest refuses with a 502 whose error code is
policy_rejected, without retrying, and the enclave saw no chat request at all.
"""

import argparse
import ssl
import sys
import time
import urllib.request

import openai
from openai import OpenAI

QUESTION = "What is the capital of France? Answer in one word."


def enclave_metric(enclave: str, prefix: str) -> int:
    # /metrics is public; the test reads it without checking the RA-TLS certificate.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(f"https://{enclave}/metrics", context=context, timeout=10) as r:
        text = r.read().decode()
    return sum(
        int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def enclave_chat_requests(enclave: str) -> int:
    return enclave_metric(enclave, 'cocoon_requests_total{route="/v1/chat/completions"')


def wait_ready(base_url: str) -> None:
    health = base_url.removesuffix("/v1") + "/health"
    for _ in range(600):
        try:
            with urllib.request.urlopen(health, timeout=10) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit(f"the enclave behind {base_url} never became ready")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--refusing-gateway", required=True)
    parser.add_argument("--enclave", required=True)
    args = parser.parse_args()

    wait_ready(args.gateway)
    client = OpenAI(base_url=args.gateway, api_key="not-needed-locally", timeout=120)

    models = client.models.list()
    ids = [m.id for m in models.data]
    assert ids, ids
    model = ids[0]
    print(f"models.list(): {ids}")

    answer = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=12,
        temperature=0,
    )
    text = answer.choices[0].message.content
    assert "Paris" in text, text
    assert answer.usage.completion_tokens > 0, answer.usage
    print(f"chat.completions.create: {text!r}")

    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=12,
        temperature=0,
        stream=True,
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    streamed = "".join(pieces)
    assert "Paris" in streamed, pieces
    assert len([p for p in pieces if p]) > 1, f"expected several deltas, got {pieces}"
    assert streamed == text, (streamed, text)
    print(f"stream=True: {len(pieces)} chunks, {streamed!r}")
    sealed = enclave_metric(args.enclave, "cocoon_sealed_requests_total ")
    assert sealed == 2, f"expected both chats sealed to the enclave's HPKE key, metrics say {sealed}"

    before = enclave_chat_requests(args.enclave)
    refusing = OpenAI(base_url=args.refusing_gateway, api_key="x", timeout=60, max_retries=2)
    try:
        refusing.chat.completions.create(
            model=model, messages=[{"role": "user", "content": QUESTION}], max_tokens=4
        )
        sys.exit("the gateway with the wrong policy answered")
    except openai.APIStatusError as e:
        assert e.status_code == 502, e
        body = e.body if isinstance(e.body, dict) else {}
        code = body.get("code") or body.get("error", {}).get("code")
        assert code == "policy_rejected", e.body
        assert "claims.model_blake3" in str(e), str(e)
        print(f"wrong policy: refused, {e.status_code} {code}")
    after = enclave_chat_requests(args.enclave)
    assert after == before, f"the enclave saw {after - before} chat requests from the refusing gateway"


if __name__ == "__main__":
    main()

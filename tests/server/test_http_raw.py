"""The wire format with curl and raw sockets: SSE framing exactly as OpenAI sends it,
error codes and bodies for malformed requests, tokenize/detokenize, health, metrics."""
import json
import shutil
import socket
import subprocess

import pytest

CHAT = "/v1/chat/completions"


def curl(server, path, data=None, *extra, binary=False):
    """(status, headers, body bytes) of one curl call."""
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed (scripts/setup.sh installs it)")
    cmd = ["curl", "-sS", "-N", "-i", "--max-time", "120", server.url + path, *extra]
    if data is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    raw = subprocess.run(cmd, input=data if isinstance(data, bytes) else (data or "").encode(), capture_output=True,
                         check=True).stdout
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def error_of(server, path, data, expect_status, *extra):
    status, headers, body = curl(server, path, data, *extra)
    assert status == expect_status, body
    assert headers["content-type"].startswith("application/json")
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"]
    return err


def test_sse_wire_format(server):
    req = json.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, "stream": True,
                      "stream_options": {"include_usage": True}})
    status, headers, body = curl(server, CHAT, req)
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["transfer-encoding"] == "chunked"  # curl de-chunks the body for us
    text = body.decode()
    assert text.endswith("\n\ndata: [DONE]\n\n")
    events = text.split("\n\n")[:-1]
    assert all(e.startswith("data: ") and "\n" not in e for e in events), events
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length")
    assert chunks[-2]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1
    assert all(c["usage"] is None for c in chunks[:-1])
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


def test_http10_stream_is_close_delimited(server):
    body = json.dumps({"prompt": "Hello", "max_tokens": 3, "stream": True}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
        s.sendall(b"POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\n\r\n" + body)
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert payload.endswith(b"data: [DONE]\n\n")


def test_malformed_json(server):
    err = error_of(server, CHAT, '{"messages": [', 400)
    assert err["type"] == "invalid_request_error"
    assert err["code"] == "invalid_json"


def test_wrong_types(server):
    for field, value in [("max_tokens", "5"), ("temperature", "hot"), ("stream", 1), ("messages", "hi"),
                         ("stop", 3), ("n", 1.5)]:
        body = {"messages": [{"role": "user", "content": "x"}], field: value}
        err = error_of(server, CHAT, json.dumps(body), 400)
        assert err["param"] == field, (field, err)


def test_bad_values(server):
    for field, value in [("max_tokens", -3), ("temperature", 2.5), ("top_p", 1.5), ("n", 0), ("n", 100),
                         ("max_tokens", 2 ** 64), ("max_tokens", 1e30)]:
        body = {"messages": [{"role": "user", "content": "x"}], field: value}
        err = error_of(server, CHAT, json.dumps(body), 400)
        assert err["param"] == field, (field, err)
    assert error_of(server, CHAT, json.dumps({"messages": []}), 400)["param"] == "messages"


def test_invalid_utf8(server):
    raw = b'{"messages": [{"role": "user", "content": "caf\xe9"}]}'
    err = error_of(server, CHAT, raw, 400)
    assert "UTF-8" in err["message"]


def test_oversized_body(server):
    big = b'{"messages": [{"role": "user", "content": "' + b"a" * (9 << 20) + b'"}]}'
    err = error_of(server, CHAT, big, 413)
    assert "8388608" in err["message"]
    # The server keeps serving.
    assert curl(server, "/health")[0] == 200


def test_huge_max_tokens_is_clamped(server):
    body = {"prompt": "Write the number 7:", "max_tokens": 10 ** 15, "stop": ["\n", ".", " "], "temperature": 0}
    status, _, out = curl(server, "/v1/completions", json.dumps(body))
    assert status == 200, out
    r = json.loads(out)
    assert r["choices"][0]["finish_reason"] in ("stop", "length")


def test_unknown_fields_are_ignored(server):
    body = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 2, "user": "u1",
            "some_future_field": {"a": [1, 2]}, "metadata": None, "store": False}
    status, _, out = curl(server, CHAT, json.dumps(body))
    assert status == 200, out


def test_not_found_and_method(server):
    assert error_of(server, "/v1/nope", None, 404)["code"] == "unknown_url"
    status, headers, _ = curl(server, CHAT)  # GET
    assert status == 405 and headers["allow"] == "POST"


def test_malformed_request_line(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        raw = s.recv(65536)
    assert raw.startswith(b"HTTP/1.1 400")


def test_tokenize_detokenize(server):
    status, _, out = curl(server, "/tokenize", json.dumps({"content": "Hello world", "add_special": False}))
    assert status == 200
    tokens = json.loads(out)["tokens"]
    assert tokens and all(isinstance(t, int) for t in tokens)
    status, _, out = curl(server, "/detokenize", json.dumps({"tokens": tokens}))
    assert json.loads(out) == {"content": "Hello world"}
    assert error_of(server, "/detokenize", json.dumps({"tokens": [10 ** 9]}), 400)["param"] == "tokens"


def test_health_and_metrics(server):
    status, _, out = curl(server, "/health")
    assert status == 200 and json.loads(out) == {"status": "ok"}
    curl(server, "/v1/completions", json.dumps({"prompt": "a", "max_tokens": 2}))
    status, headers, out = curl(server, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = out.decode()
    for family in ["flashlm_requests_total{status=\"200\"}", "flashlm_time_to_first_token_seconds_bucket",
                   "flashlm_inter_token_latency_seconds_bucket", "flashlm_prompt_tokens_total",
                   "flashlm_generated_tokens_total", "flashlm_running_sequences", "flashlm_waiting_sequences",
                   "flashlm_kv_blocks_used", "flashlm_kv_blocks_free", "flashlm_batch_tokens_last_step",
                   "flashlm_generated_tokens_per_second"]:
        assert family in text, family
    assert "flashlm_requests_total{status=\"400\"}" in text  # from the error tests before

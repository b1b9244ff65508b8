"""POST /v1/messages (Anthropic's Messages API) through the real anthropic client: text,
system prompts, max_tokens and stop_reason, stop_sequences, streaming (raw events in
order, and the SDK's stream helper), client tools with tool_choice any / tool and the
tool_use -> tool_result round trip, and errors in Anthropic's shape naming the field."""
import json

import anthropic
import httpx
import jsonschema
import pytest

WEATHER = {"name": "get_weather", "description": "Get the current weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture()
def claude(server):
    return anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0, timeout=120)


def test_text_reply_matches_the_same_chat_request(claude, client):
    m = claude.messages.create(model="m", max_tokens=12, extra_body={"temperature": 0}, system="You are terse.",
                               messages=[{"role": "user", "content": "What is 2+2?"}])
    assert m.id.startswith("msg_") and m.type == "message" and m.role == "assistant"
    assert m.content[0].type == "text"
    c = client.chat.completions.create(model="m", max_tokens=12, temperature=0,
                                       messages=[{"role": "system", "content": "You are terse."},
                                                 {"role": "user", "content": "What is 2+2?"}])
    assert m.content[0].text == c.choices[0].message.content
    assert m.usage.input_tokens == c.usage.prompt_tokens
    assert m.stop_reason == ("max_tokens" if c.choices[0].finish_reason == "length" else "end_turn")
    cut = claude.messages.create(model="m", max_tokens=3, messages=[{"role": "user", "content": "Tell a story."}])
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 3


def test_stream_events_and_helper(claude):
    args = dict(model="m", max_tokens=20, extra_body={"temperature": 0},
                messages=[{"role": "user", "content": "Name three fruits."}])
    whole = claude.messages.create(**args)
    types, text = [], ""
    for ev in claude.messages.create(stream=True, **args):
        types.append(ev.type)
        if ev.type == "content_block_delta":
            text += ev.delta.text
    assert types[:2] == ["message_start", "content_block_start"]  # the SDK drops "ping" events
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert text == whole.content[0].text
    with claude.messages.stream(**args) as s:
        final = s.get_final_message()
    assert final.content[0].text == whole.content[0].text


def test_tool_use_round_trip(claude):
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    m = claude.messages.create(model="m", max_tokens=60, extra_body={"temperature": 0}, tools=[WEATHER],
                               tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
                               messages=ask)
    assert m.stop_reason == "tool_use"
    uses = [b for b in m.content if b.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather" and uses[0].id.startswith("toolu_")
    jsonschema.validate(uses[0].input, WEATHER["input_schema"])
    follow = ask + [{"role": "assistant", "content": [u.model_dump() for u in uses]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id,
                                                  "content": "21 C and clear"}]}]
    m2 = claude.messages.create(model="m", max_tokens=20, extra_body={"temperature": 0}, tools=[WEATHER],
                                tool_choice={"type": "none"}, messages=follow)
    assert m2.content[0].type == "text" and m2.content[0].text
    assert m2.usage.input_tokens > m.usage.input_tokens - 100  # the history is in the prompt
    # Streamed, the call arrives as input_json_delta and reassembles to the same input.
    with claude.messages.stream(model="m", max_tokens=60, extra_body={"temperature": 0}, tools=[WEATHER],
                                tool_choice={"type": "any", "disable_parallel_tool_use": True}, messages=ask) as s:
        final = s.get_final_message()
    streamed = [b for b in final.content if b.type == "tool_use"]
    assert len(streamed) == 1
    jsonschema.validate(streamed[0].input, WEATHER["input_schema"])


def test_errors_have_anthropics_shape(server, claude):
    bad = [({"max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
           ({"messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
           ({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
            "messages[0].content[0].type"),
           ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
             "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
           ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
             "thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking")]
    for body, name in bad:
        r = httpx.post(server.url + "/v1/messages", json={"model": "m", **body}, timeout=30)
        assert r.status_code == 400, (body, r.text)
        j = r.json()
        assert j["type"] == "error" and j["error"]["type"] == "invalid_request_error"
        assert name in j["error"]["message"], (name, j)
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(model="m", max_tokens=0, messages=[{"role": "user", "content": "x"}])


def test_api_key_in_x_api_key_header():
    from conftest import start_server

    s = start_server("--api-key", "sekret", "-c", "512").wait_ready()
    try:
        ok = anthropic.Anthropic(base_url=s.url, api_key="sekret", max_retries=0, timeout=60)
        assert ok.messages.create(model="m", max_tokens=2, messages=[{"role": "user", "content": "hi"}]).content
        with pytest.raises(anthropic.AuthenticationError):
            anthropic.Anthropic(base_url=s.url, api_key="wrong", max_retries=0).messages.create(
                model="m", max_tokens=2, messages=[{"role": "user", "content": "hi"}])
    finally:
        assert s.stop() == 0, s.output()

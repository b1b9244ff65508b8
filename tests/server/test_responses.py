"""POST /v1/responses through the real openai client: text input and message items,
instructions, max_output_tokens, streaming events (checked in order and reassembled), JSON
schema output via text.format, function tools and their call/output items over two turns,
previous_response_id, and the 400/404s. Also system_fingerprint on chat completions."""
import json

import jsonschema
import openai
import pytest

WEATHER = {"type": "function", "name": "get_weather", "description": "Get the current weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def test_text_input_and_instructions(client):
    r = client.responses.create(model="m", input="Name a color.", instructions="Answer in one word.",
                                max_output_tokens=16, temperature=0)
    assert r.id.startswith("resp_") and r.object == "response"
    assert r.status in ("completed", "incomplete")
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.output_text == r.output[0].content[0].text and r.output_text
    assert r.instructions == "Answer in one word."
    assert r.usage.input_tokens > 0 and 0 < r.usage.output_tokens <= 16
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    cut = client.responses.create(model="m", input="Tell me a long story.", max_output_tokens=5, temperature=0)
    assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens"


def test_message_items_match_the_same_chat_request(client):
    items = [{"role": "system", "content": "You are terse."},
             {"role": "user", "content": [{"type": "input_text", "text": "What is 2+2?"}]}]
    r = client.responses.create(model="m", input=items, max_output_tokens=12, temperature=0)
    c = client.chat.completions.create(model="m", messages=[{"role": "system", "content": "You are terse."},
                                                            {"role": "user", "content": "What is 2+2?"}],
                                       max_tokens=12, temperature=0)
    assert r.output_text == c.choices[0].message.content
    assert r.usage.input_tokens == c.usage.prompt_tokens
    assert c.system_fingerprint and c.system_fingerprint.startswith("fp_")


def test_stream_events_arrive_in_order_and_reassemble(client):
    args = dict(model="m", input="Name three fruits.", max_output_tokens=20, temperature=0)
    whole = client.responses.create(**args)
    types, text, seqs = [], "", []
    for ev in client.responses.create(stream=True, **args):
        types.append(ev.type)
        seqs.append(ev.sequence_number)
        if ev.type == "response.output_text.delta":
            text += ev.delta
        if ev.type in ("response.completed", "response.incomplete"):
            final = ev.response
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types[-4:-1] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    assert types[-1] in ("response.completed", "response.incomplete")
    assert seqs == list(range(len(seqs)))
    assert text == whole.output_text == final.output_text


def test_json_schema_text_format(client):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    r = client.responses.create(model="m", input="Ann is 30. Reply in JSON.", max_output_tokens=60, temperature=0,
                                text={"format": {"type": "json_schema", "name": "person", "schema": schema,
                                                 "strict": True}})
    jsonschema.validate(json.loads(r.output_text), schema)


def test_function_call_round_trip_with_previous_response_id(client):
    first = client.responses.create(model="m", input="What is the weather in Paris?", tools=[WEATHER],
                                    tool_choice="required", parallel_tool_calls=False, max_output_tokens=60,
                                    temperature=0)
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert calls[0].call_id.startswith("call_")
    jsonschema.validate(json.loads(calls[0].arguments), WEATHER["parameters"])
    second = client.responses.create(
        model="m", previous_response_id=first.id, tools=[WEATHER], tool_choice="none", max_output_tokens=20,
        temperature=0, input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "21 C, clear"}])
    assert second.previous_response_id == first.id
    assert second.output_text
    # The stored conversation (question, call, result) is in the second prompt.
    fresh = client.responses.create(model="m", input="What is the weather in Paris?", max_output_tokens=1)
    assert second.usage.input_tokens > fresh.usage.input_tokens + 15


def test_streamed_function_call_events(client):
    events = list(client.responses.create(model="m", input="Weather in Oslo?", tools=[WEATHER],
                                          tool_choice={"type": "function", "name": "get_weather"},
                                          parallel_tool_calls=False, max_output_tokens=60, temperature=0,
                                          stream=True))
    types = [e.type for e in events]
    assert "response.function_call_arguments.delta" in types
    done = [e for e in events if e.type == "response.function_call_arguments.done"][0]
    item = [e for e in events if e.type == "response.output_item.done"][0].item
    assert item.type == "function_call" and item.name == "get_weather"
    assert json.loads(done.arguments) == json.loads(item.arguments)
    assert types[-1] == "response.completed"


def test_bad_requests_name_the_field(client):
    bad = [({"input": 3}, "input"),
           ({"input": [{"type": "input_image", "image_url": "x"}]}, "input[0].type"),
           ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
           ({"input": "x", "reasoning": {"effort": "low"}}, "reasoning"),
           ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
           ({"input": "x", "text": {"format": {"type": "json_schema", "name": "x",
                                               "schema": {"type": "integer", "minimum": 0}}}}, "text.format.schema"),
           ({"input": "x", "tools": [{"type": "function", "name": "bad name"}]}, "tools[0].name")]
    for extra, param in bad:
        with pytest.raises(openai.BadRequestError) as e:
            client.responses.create(model="m", **extra)
        assert e.value.body["param"] == param, (extra, e.value.body)
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model="m", input="x", previous_response_id="resp_unknown")
    assert e.value.body["param"] == "previous_response_id"

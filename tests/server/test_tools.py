"""Tool calling through the real clients (openai, langchain-openai): tools, tool_choice
(auto, none, required, a named function), parallel_tool_calls, calls parsed into
message.tool_calls and streamed as delta.tool_calls, a two-turn round trip with the tool's
result, LangChain's bind_tools and with_structured_output in its three methods, and 400s for
malformed tools. SmolLM2 and Gemma 3 have templates without tool support, so they use the
generic JSON call format (src/server/tool_calls.h), grammar-constrained: every call must
name an offered tool and carry arguments that validate against its schema (jsonschema)."""
import json

import httpx
import jsonschema
import openai
import pytest

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "The current time in a time zone.",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"],
                   "additionalProperties": False}}}
TOOLS = [WEATHER, TIME]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
ASK = [{"role": "user", "content": "What is the weather in Paris right now?"}]


@pytest.fixture()
def api(model_client):
    return model_client


def check_call(call):
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name in SCHEMAS
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_required_and_named_choices_give_valid_calls(api, temperature):
    for choice, name in [("required", None), ({"type": "function", "function": {"name": "get_time"}}, "get_time")]:
        r = api.chat.completions.create(model="m", messages=ASK, tools=TOOLS, tool_choice=choice,
                                        parallel_tool_calls=False, max_tokens=80, temperature=temperature, seed=3)
        c = r.choices[0]
        assert c.finish_reason == "tool_calls", c
        assert c.message.content is None
        assert len(c.message.tool_calls) == 1
        check_call(c.message.tool_calls[0])
        if name:
            assert c.message.tool_calls[0].function.name == name


def test_auto_gives_either_an_answer_or_valid_calls(api):
    r = api.chat.completions.create(model="m", messages=ASK, tools=TOOLS, max_tokens=80, temperature=0,
                                    parallel_tool_calls=False)
    c = r.choices[0]
    if c.message.tool_calls:
        assert c.finish_reason == "tool_calls"
        for call in c.message.tool_calls:
            check_call(call)
    else:
        assert isinstance(c.message.content, str) and c.message.content


def test_none_leaves_the_reply_free(client):
    r = client.chat.completions.create(model="m", messages=ASK, tools=TOOLS, tool_choice="none", max_tokens=20,
                                       temperature=0)
    assert r.choices[0].message.tool_calls is None
    assert r.choices[0].message.content


def test_streamed_call_deltas_reassemble_to_the_non_streamed_call(client):
    args = dict(model="m", messages=ASK, tools=TOOLS, tool_choice="required", parallel_tool_calls=False,
                max_tokens=80, temperature=0)
    whole = client.chat.completions.create(**args).choices[0].message.tool_calls
    calls, finish = {}, None
    for chunk in client.chat.completions.create(stream=True, **args):
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for d in choice.delta.tool_calls or []:
            c = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
            c["id"] = d.id or c["id"]
            if d.function and d.function.name:
                c["name"] += d.function.name
            if d.function and d.function.arguments:
                c["arguments"] += d.function.arguments
    assert finish == "tool_calls"
    assert len(calls) == len(whole) == 1
    assert calls[0]["id"].startswith("call_")
    assert calls[0]["name"] == whole[0].function.name
    assert json.loads(calls[0]["arguments"]) == json.loads(whole[0].function.arguments)


def test_two_turn_round_trip_keeps_calls_and_results(client):
    first = client.chat.completions.create(model="m", messages=ASK, tools=TOOLS, tool_choice="required",
                                           parallel_tool_calls=False, max_tokens=80, temperature=0)
    msg = first.choices[0].message
    call = msg.tool_calls[0]
    history = ASK + [msg.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"sky": "clear", "c": 21})}]
    second = client.chat.completions.create(model="m", messages=history, tools=TOOLS, tool_choice="none",
                                            max_tokens=30, temperature=0)
    assert second.choices[0].message.content
    # The call and its result are part of the second prompt.
    alone = client.chat.completions.create(model="m", messages=ASK, tools=TOOLS, tool_choice="none", max_tokens=1)
    assert second.usage.prompt_tokens > alone.usage.prompt_tokens + 20


def test_malformed_tools_are_400s_naming_the_field(server, client):
    bad = [
        ({"tools": "notalist"}, "tools"),
        ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools[0].function.name"),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
         "tool_choice.function.name"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {"name": "f", "strict": True, "parameters": {
            "type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}}}]},
         "tools[0].function.parameters"),
        ({"tools": TOOLS, "response_format": {"type": "json_object"}}, "response_format"),
    ]
    for extra, param in bad:
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model="m", messages=ASK, max_tokens=5, **extra)
        assert e.value.body["param"] == param, (extra, e.value.body)
    r = httpx.post(server.url + "/v1/chat/completions", timeout=30, json={
        "messages": ASK + [{"role": "tool", "content": "21"}], "max_tokens": 5})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages[1].tool_call_id"


def test_langchain_bind_tools_and_structured_output(server):
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    llm = ChatOpenAI(base_url=server.url + "/v1", api_key="unused", model="m", temperature=0, max_tokens=100,
                     max_retries=0)

    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return "sunny"

    ai = llm.bind_tools([get_weather], tool_choice="get_weather", parallel_tool_calls=False).invoke(
        "What is the weather in Paris?")
    assert len(ai.tool_calls) == 1 and ai.tool_calls[0]["name"] == "get_weather"
    assert isinstance(ai.tool_calls[0]["args"]["city"], str)

    class Person(BaseModel):
        name: str
        age: int

    prompt = [("system", 'Reply with a JSON object {"name": string, "age": integer} and nothing else.'),
              ("user", "Ann is 30 years old.")]
    for method in ["function_calling", "json_schema", "json_mode"]:
        out = llm.with_structured_output(Person, method=method).invoke(prompt)
        assert isinstance(out, Person), (method, out)


def test_litellm_tool_calls_plain_and_streamed(server, monkeypatch):
    # The bundled model-cost map, not a download at import (no network in CI).
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    args = dict(model="openai/m", api_base=server.url + "/v1", api_key="unused", messages=ASK, tools=TOOLS,
                tool_choice="required", parallel_tool_calls=False, max_tokens=80, temperature=0)
    r = litellm.completion(**args)
    assert r.choices[0].finish_reason == "tool_calls"
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name in SCHEMAS
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])
    rebuilt = litellm.stream_chunk_builder(list(litellm.completion(stream=True, **args)))
    again = rebuilt.choices[0].message.tool_calls[0]
    assert again.function.name == call.function.name
    assert json.loads(again.function.arguments) == json.loads(call.function.arguments)
    text = litellm.completion(model="openai/m", api_base=server.url + "/v1", api_key="unused", max_tokens=8,
                              temperature=0, messages=[{"role": "user", "content": "Say hi."}])
    assert text.choices[0].message.content

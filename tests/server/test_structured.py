"""Structured output and the fields around it, through the real openai client:
response_format json_schema / json_object, llama-server's `grammar` (GBNF), logit_bias,
and 400s for OpenAI fields flashlm does not implement. Every constrained output must
parse and validate against its schema (the jsonschema package), greedy and sampled."""
import json

import jsonschema
import openai
import pytest

SCHEMAS = {
    "person": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
               "required": ["name", "age"], "additionalProperties": False},
    "colors": {"type": "object", "properties": {"colors": {"type": "array", "items": {"enum": ["red", "green", "blue"]},
               "minItems": 1, "maxItems": 3}}, "required": ["colors"], "additionalProperties": False},
    "flag": {"type": "object", "properties": {"ok": {"type": "boolean"}, "note": {"type": ["string", "null"]}},
             "required": ["ok", "note"], "additionalProperties": False},
    "point": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
              "required": ["x", "y"], "additionalProperties": False},
    "zip": {"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
            "required": ["zip"], "additionalProperties": False},
    "short": {"type": "object", "properties": {"word": {"type": "string", "minLength": 1, "maxLength": 8}},
              "required": ["word"], "additionalProperties": False},
    "tree": {"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
             "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
             "required": ["v", "kids"], "additionalProperties": False}}, "$ref": "#/$defs/node"},
    "choice": {"anyOf": [{"type": "object", "properties": {"cat": {"const": "meow"}}, "required": ["cat"]},
                         {"type": "object", "properties": {"dog": {"const": "woof"}}, "required": ["dog"]}]},
    "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
    "optional": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                 "additionalProperties": False},
}


def chat(client, schema, temperature, seed=1):
    return client.chat.completions.create(
        model="m", temperature=temperature, seed=seed, max_tokens=400, frequency_penalty=1.0,
        messages=[{"role": "user", "content": "Answer in JSON. Describe a small example."}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}})


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_json_schema_output_validates(client, name, temperature):
    r = chat(client, SCHEMAS[name], temperature)
    c = r.choices[0]
    assert c.finish_reason == "stop", c.message.content
    jsonschema.validate(json.loads(c.message.content), SCHEMAS[name])


def test_json_object_parses(client):
    r = client.chat.completions.create(model="m", temperature=0, max_tokens=400, frequency_penalty=1.0,
                                       messages=[{"role": "user", "content": "Give me a JSON object about a cat."}],
                                       response_format={"type": "json_object"})
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_n_choices_each_follow_the_schema(client):
    r = client.chat.completions.create(model="m", temperature=1.0, seed=3, n=3, max_tokens=400,
                                       messages=[{"role": "user", "content": "A person, as JSON."}],
                                       response_format={"type": "json_schema", "json_schema": {
                                           "name": "p", "schema": SCHEMAS["person"]}})
    for c in r.choices:
        jsonschema.validate(json.loads(c.message.content), SCHEMAS["person"])


def test_streamed_constrained_output_matches_the_schema(client):
    chunks = client.chat.completions.create(
        model="m", temperature=0, max_tokens=400, stream=True,
        messages=[{"role": "user", "content": "A point, as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": SCHEMAS["point"]}})
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    jsonschema.validate(json.loads(text), SCHEMAS["point"])


def test_gbnf_grammar_field(client):
    r = client.completions.create(model="m", prompt="Is the sky blue? Answer:", temperature=1.0, seed=5,
                                  max_tokens=20, extra_body={"grammar": 'root ::= " " ("yes" | "no") "."'})
    assert r.choices[0].text in (" yes.", " no.")
    assert r.choices[0].finish_reason == "stop"


def test_logit_bias_bans_and_forces(client, server):
    import httpx
    base = client.completions.create(model="m", prompt="The capital of France is", temperature=0, max_tokens=1,
                                      logprobs=1)
    first = base.choices[0].text
    tok = httpx.post(server.url + "/tokenize", json={"content": first}, timeout=30).json()["tokens"]
    assert len(tok) == 1
    banned = client.completions.create(model="m", prompt="The capital of France is", temperature=0, max_tokens=1,
                                       logit_bias={str(tok[0]): -100})
    assert banned.choices[0].text != first
    forced = client.completions.create(model="m", prompt="The capital of France is", temperature=1.0, seed=2,
                                       max_tokens=3, logit_bias={str(tok[0]): 100})
    assert forced.choices[0].text == first * 3


@pytest.mark.parametrize("extra,param", [
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"$ref": "#/nope"}}}]},
     "tools[0].function.parameters"),
    ({"tools": "notalist"}, "tools"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integer",
                                                                                         "minimum": 0}}}},
     "response_format.json_schema.schema"),
    ({"response_format": {"type": "xml"}}, "response_format.type"),
    ({"grammar": "root ::= root \"a\""}, "grammar"),
    ({"logit_bias": {"abc": 1}}, "logit_bias"),
    ({"logit_bias": {"5": 200}}, "logit_bias.5"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
    ({"messages": [{"role": "user", "content": "hi", "tool_calls": [{"id": "1", "type": "function",
                    "function": {"name": "f", "arguments": "{}"}}]}]},
     "messages[0].tool_calls"),
])
def test_unsupported_or_malformed_fields_are_400s_naming_them(client, extra, param):
    body = {"messages": [{"role": "user", "content": "hi"}], **extra}
    msgs = body.pop("messages")
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="m", max_tokens=4, messages=msgs, extra_body=body)
    assert e.value.body["param"] == param, e.value.body


def test_vllm_structured_outputs_choice_and_regex(client):
    r = client.completions.create(model="m", prompt="The sky is", temperature=1.0, seed=4, max_tokens=10,
                                  extra_body={"structured_outputs": {"choice": [" blue", " green", " \"grey\""]}})
    assert r.choices[0].text in (" blue", " green", " \"grey\"")
    r = client.completions.create(model="m", prompt="Call me at", temperature=0.7, seed=4, max_tokens=20,
                                  extra_body={"structured_outputs": {"regex": r"^ \d{3}-\d{4}$"}})
    t = r.choices[0].text
    assert len(t) == 9 and t[0] == " " and t[4] == "-" and (t[1:4] + t[5:]).isdigit(), t

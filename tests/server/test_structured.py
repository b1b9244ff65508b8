"""Structured output and the fields around it, through the real openai client:
response_format json_schema / json_object, llama-server's `grammar` (GBNF), logit_bias,
and 400s for OpenAI fields flashlm does not implement. Every constrained output must
parse and validate against its schema (the jsonschema package), greedy and sampled."""
import json
from concurrent.futures import ThreadPoolExecutor

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
    # Extraction-style schemas as apps write them (pydantic / zod output shapes).
    "address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"},
                "zip": {"type": "string", "pattern": "^[0-9]{5}$"}, "country": {"enum": ["US", "FR", "DE"]}},
                "required": ["street", "city", "zip", "country"], "additionalProperties": False},
    "event": {"type": "object", "properties": {"title": {"type": "string", "maxLength": 40},
              "date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
              "attendees": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 4}},
              "required": ["title", "date", "attendees"], "additionalProperties": False},
    "sentiment": {"type": "object", "properties": {"label": {"enum": ["positive", "negative", "neutral"]},
                  "score": {"type": "number"}}, "required": ["label", "score"], "additionalProperties": False},
    "todo": {"type": "object", "properties": {"items": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
             "type": "object", "properties": {"task": {"type": "string", "maxLength": 30}, "done": {"type": "boolean"}},
             "required": ["task", "done"], "additionalProperties": False}}},
             "required": ["items"], "additionalProperties": False},
    "rgb": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "integer"}, {"type": "integer"}],
            "items": False, "minItems": 3},
    "nullable_int": {"type": "object", "properties": {"count": {"type": ["integer", "null"]}},
                     "required": ["count"], "additionalProperties": False},
    "bool_only": {"type": "boolean"},
    "int_only": {"type": "integer"},
    "enum_only": {"enum": ["small", "medium", "large", 3, None]},
    "const_version": {"type": "object", "properties": {"version": {"const": 2}, "name": {"type": "string",
                      "maxLength": 16}}, "required": ["version", "name"], "additionalProperties": False},
    "defs_user": {"$defs": {"email": {"type": "string", "pattern": "^[a-z]{1,8}@[a-z]{1,8}\\.com$"}},
                  "type": "object", "properties": {"primary": {"$ref": "#/$defs/email"},
                  "backup": {"$ref": "#/$defs/email"}}, "required": ["primary", "backup"],
                  "additionalProperties": False},
    "definitions_old": {"definitions": {"n": {"type": "integer"}}, "type": "array", "items": {"$ref": "#/definitions/n"},
                        "maxItems": 5},
    "nested": {"type": "object", "properties": {"user": {"type": "object", "properties": {
               "id": {"type": "integer"}, "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3}},
               "required": ["id", "tags"], "additionalProperties": False}}, "required": ["user"],
               "additionalProperties": False},
    "oneof_shape": {"oneOf": [{"type": "object", "properties": {"circle": {"type": "number"}}, "required": ["circle"],
                                "additionalProperties": False},
                               {"type": "object", "properties": {"square": {"type": "number"}},
                                "required": ["square"], "additionalProperties": False}]},
    "allof_single": {"allOf": [{"type": "object", "properties": {"k": {"type": "string", "maxLength": 10}},
                                "required": ["k"], "additionalProperties": False}]},
    "string_array": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 12}, "minItems": 2,
                     "maxItems": 4},
    "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
               "minItems": 2, "maxItems": 2},
    "hex_color": {"type": "object", "properties": {"color": {"type": "string", "pattern": "^#[0-9a-f]{6}$"}},
                  "required": ["color"], "additionalProperties": False},
    "open_object": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
    "product": {"type": "object", "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"},
                "price": {"type": "number"}, "in_stock": {"type": "boolean"},
                "category": {"enum": ["tools", "food", "toys"]}},
                "required": ["sku", "price", "in_stock", "category"], "additionalProperties": False},
}


def chat(client, schema, temperature, seed=1):
    return client.chat.completions.create(
        model="m", temperature=temperature, seed=seed, max_tokens=400, frequency_penalty=1.0,
        messages=[{"role": "user", "content": "Answer in JSON. Describe a small example."}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}})


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_json_schema_output_validates(model_client, temperature):
    """Every schema of the corpus, sent at once (the server batches them): each output that
    ends ("stop") must validate. A small model may instead run on inside an unbounded
    string until max_tokens ("length"); that is the model's choice, not a grammar failure,
    and the output is then a prefix, so at most 10% may end that way."""
    with ThreadPoolExecutor(8) as ex:
        replies = dict(zip(sorted(SCHEMAS), ex.map(lambda n: chat(model_client, SCHEMAS[n], temperature),
                                                    sorted(SCHEMAS))))
    cut = [n for n, r in replies.items() if r.choices[0].finish_reason == "length"]
    for name, r in replies.items():
        if name in cut:
            continue
        assert r.choices[0].finish_reason == "stop", (name, r.choices[0])
        jsonschema.validate(json.loads(r.choices[0].message.content), SCHEMAS[name])
    print(f"{len(replies) - len(cut)} of {len(replies)} outputs ended and validated; cut at max_tokens: {cut}")
    assert len(cut) <= len(SCHEMAS) // 10, cut


def test_json_object_parses(client):
    # A prompt the model answers in a few dozen tokens whatever the CPU's kernels: "Give me
    # a JSON object about a cat." nests objects until max_tokens on AVX-512 machines (the
    # grammar keeps it valid, the cut leaves it unfinished).
    r = client.chat.completions.create(model="m", temperature=0, max_tokens=400, frequency_penalty=1.0,
                                       messages=[{"role": "user", "content":
                                                  "Describe a cat as a JSON object with a name and an age."}],
                                       response_format={"type": "json_object"})
    assert r.choices[0].finish_reason == "stop", r.choices[0]
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

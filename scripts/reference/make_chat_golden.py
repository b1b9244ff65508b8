#!/usr/bin/env python3
"""Golden outputs for flashlm's chat-template interpreter (src/chat/), rendered by
Python jinja2 configured the way Hugging Face transformers renders chat templates
(transformers.utils.chat_template_utils._compile_jinja_template):

  ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                extensions=[jinja2.ext.loopcontrols])
  + tojson = json.dumps(ensure_ascii=False, indent=..., sort_keys=...)
  + globals raise_exception (raises TemplateError) and strftime_now.

Templates live in tests/golden/chat/templates/*.jinja:
  smollm2.jinja      tokenizer.chat_template of models/SmolLM2-135M-Instruct.Q4_1.gguf
                     (extracted with --extract below; gemma-3-270m's GGUF has none)
  qwen2_5.jinja      Qwen2.5-Instruct tokenizer_config.json chat_template
  qwen3.jinja        Qwen3 (0.6B..) chat_template: <think> handling, tool calls
  llama3.jinja       Llama-3.3-70B-Instruct (same family as 3.1 with tools)
  mistral_nemo.jinja Mistral-Nemo-Instruct-2407 (role alternation + tool calls)
  gemma3.jinja       Gemma-3 instruction-tuned models

Run:  /opt/flashlm-ref/bin/python scripts/reference/make_chat_golden.py [--extract]
Also writes tests/golden/chat/features.json: small snippets exercising each language
feature alone (with HF's whitespace options and with Jinja's defaults) and snippets
that must fail. Writes tests/golden/chat/<template>.json: {"template": file, "cases": [{"name",
"context", "expected"} or {"name", "context", "error"}]}.
"""
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden", "chat")
TEMPLATES = os.path.join(OUT, "templates")


def make_env():
    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        raise TemplateError("strftime_now is not used by the golden cases (clock-dependent)")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def extract_gguf_template():
    from gguf import GGUFReader

    path = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    reader = GGUFReader(path)
    field = reader.fields["tokenizer.chat_template"]
    with open(os.path.join(TEMPLATES, "smollm2.jinja"), "wb") as f:
        f.write(bytes(field.parts[field.data[0]]))


SYS = {"role": "system", "content": "You are a terse assistant."}
U1 = {"role": "user", "content": "Hello! What's 2+2?"}
A1 = {"role": "assistant", "content": "2+2 = 4."}
U2 = {"role": "user", "content": "  And in French, s'il vous plaît? \"quotes\" & <tags>  "}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
TOOL_USER = {"role": "user", "content": "What's the weather in Paris?"}


def ctx(messages, gen=True, **extra):
    c = {"messages": messages, "add_generation_prompt": gen, "bos_token": "<s>", "eos_token": "</s>"}
    c.update(extra)
    return c


def common_cases():
    return [
        ("single_user", ctx([U1])),
        ("single_user_no_gen", ctx([U1], gen=False)),
        ("system_multi_turn", ctx([SYS, U1, A1, U2])),
        ("system_multi_turn_no_gen", ctx([SYS, U1, A1, U2], gen=False)),
        ("no_system_multi_turn", ctx([U1, A1, U2])),
        ("unicode", ctx([{"role": "user", "content": "naïve café — 日本語 😀\nsecond line\ttab"}])),
    ]


def qwen_tool_cases(thinking):
    call_dict = {"role": "assistant", "content": "",
                 "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]}
    tool_msg = {"role": "tool", "content": "{\"temperature\": 21, \"sky\": \"clear\"}"}
    cases = [
        ("tools_defined", ctx([SYS, TOOL_USER], tools=[WEATHER_TOOL])),
        ("tools_no_system", ctx([TOOL_USER], tools=[WEATHER_TOOL])),
        ("tool_call_round_trip", ctx([SYS, TOOL_USER, call_dict, tool_msg, tool_msg], tools=[WEATHER_TOOL])),
    ]
    if thinking:
        cases += [
            ("think_in_history", ctx([U1, {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"}, U2])),
            ("think_last_assistant", ctx([U1, {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"}], gen=False)),
            ("reasoning_content_field", ctx([U1, {"role": "assistant", "content": "4", "reasoning_content": "2 and 2"}], gen=False)),
            ("enable_thinking_false", ctx([U1], enable_thinking=False)),
            ("enable_thinking_true", ctx([U1], enable_thinking=True)),
            ("string_arguments", ctx([TOOL_USER, {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}, tool_msg])),
            ("rejects_none_content", ctx([{"role": "user", "content": None}])),
        ]
    return cases


def cases_for(name):
    cases = common_cases()
    if name == "qwen2_5":
        cases += qwen_tool_cases(False)
    elif name == "qwen3":
        cases += qwen_tool_cases(True)
    elif name == "llama3":
        call = {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}
        two_calls = {"role": "assistant", "tool_calls": call["tool_calls"] * 2}
        cases += [
            ("date_string", ctx([SYS, U1], date_string="01 Jan 2025")),
            ("tools_in_user_message", ctx([SYS, TOOL_USER], tools=[WEATHER_TOOL])),
            ("tools_in_system", ctx([SYS, TOOL_USER], tools=[WEATHER_TOOL], tools_in_user_message=False)),
            ("tool_call_round_trip", ctx([TOOL_USER, call, {"role": "tool", "content": {"temperature": 21}}], tools=[WEATHER_TOOL])),
            ("builtin_tools", ctx([TOOL_USER], builtin_tools=["code_interpreter", "brave_search", "wolfram_alpha"])),
            ("rejects_two_tool_calls", ctx([TOOL_USER, two_calls])),
            ("rejects_tools_without_user", ctx([SYS], tools=[WEATHER_TOOL])),
        ]
    elif name == "mistral_nemo":
        call = {"role": "assistant", "tool_calls": [{"id": "abcDEF123", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}
        cases += [
            ("tools", ctx([TOOL_USER], tools=[WEATHER_TOOL])),
            ("tool_call_round_trip", ctx([TOOL_USER, call, {"role": "tool", "tool_call_id": "abcDEF123", "content": "21 C"}, A1, U2], tools=[WEATHER_TOOL])),
            ("rejects_role_order", ctx([U1, U2])),
            ("rejects_assistant_first", ctx([A1, U1])),
            ("rejects_bad_tool_call_id", ctx([TOOL_USER, {"role": "assistant", "tool_calls": [{"id": "short", "function": {"name": "f", "arguments": {}}}]}])),
            ("rejects_unknown_role", ctx([{"role": "narrator", "content": "x"}])),
        ]
    elif name == "gemma3":
        cases += [
            ("rejects_role_order", ctx([U1, U2])),
            ("rejects_system_then_assistant", ctx([SYS, A1])),
            ("multimodal_content", ctx([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "  Describe this.  "}]}])),
            ("system_as_parts", ctx([{"role": "system", "content": [{"type": "text", "text": "Be brief."}]}, U1])),
            ("rejects_invalid_content", ctx([{"role": "user", "content": 42}])),
        ]
    elif name == "smollm2":
        cases += [("assistant_prefill", ctx([U1, A1], gen=False))]
    return cases


# Language-feature snippets: each alone, rendered in HF's configuration (hf) and with
# Jinja's defaults (plain: trim_blocks=False, lstrip_blocks=False).
FEATURES = [
    ("text_only", "plain text\n", {}),
    ("print_vars", "{{ a }}|{{ b }}|{{ c }}|{{ d }}|{{ e }}|{{ f }}|{{ missing }}|", {"a": 1, "b": 2.5, "c": "s", "d": True, "e": None, "f": [1, "x", None, False, {"k": 1.0}]}),
    ("comment", "a{# a comment #}b\n  {# indented comment #}\nc", {}),
    ("ws_dash", "a  {{- ' b ' -}}  c\n  {%- if true -%}  d  {%- endif -%}  \ne", {}),
    ("ws_blocks_lines", "<ul>\n  {% for x in xs %}\n    <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n", {"xs": [1, 2]}),
    ("ws_plus", "a\n  {%+ if true +%}\nb\n  {%+ endif %}\nc", {}),
    ("ws_var_no_lstrip", "x\n    {{ 'v' }}\n  y", {}),
    ("trailing_newline", "line\n", {}),
    ("if_elif_else", "{% for n in [1, 2, 3, 4] %}{% if n == 1 %}one{% elif n == 2 %}two{% elif n > 3 %}big{% else %}other{% endif %},{% endfor %}", {}),
    ("for_loop_vars", "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", {}),
    ("for_else", "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}{% for x in [1] %}{{ x }}{% else %}empty{% endfor %}", {}),
    ("for_filter", "{% for x in range(10) if x is odd %}{{ x }}/{{ loop.length }} {% endfor %}", {}),
    ("for_unpack_items", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d|items %}{{ k }}{% endfor %}{% for k in d %}{{ k }}{% endfor %}", {"d": {"z": 1, "a": 2}}),
    ("for_prev_next_cycle", "{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.cycle('a','b') }} {% endfor %}", {}),
    ("loop_controls", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("nested_loops", "{% for a in [1,2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }}{% endfor %}{{ loop.index }} {% endfor %}", {}),
    ("set_scoping", "{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}{% if true %}{% set x = 3 %}{% endif %}{{ x }}", {}),
    ("set_tuple", "{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}", {}),
    ("set_block", "{% set greeting %}Hi {{ name }}!{% endset %}[{{ greeting }}]", {"name": "Bo"}),
    ("namespace", "{% set ns = namespace(found=false, n=0) %}{% for x in [1, 5, 2] %}{% if x > 3 %}{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.found }} {{ ns.n }}", {}),
    ("macro", "{% macro tag(name, body='-', cls=none) %}<{{ name }}{% if cls %} class={{ cls }}{% endif %}>{{ body }}</{{ name }}>{% endmacro %}{{ tag('b') }}{{ tag('i', 'x') }}{{ tag('p', cls='c', body='y') }}", {}),
    ("macro_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(6) }}", {}),
    ("arithmetic", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 - 4 }} {{ 7.5 // 2 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 10 / 5 }} {{ -(3) }} {{ 3 - -2 }}", {}),
    ("string_ops", "{{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ 'x' ~ missing ~ 'y' }}", {}),
    ("comparisons", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ 1 != 2 }} {{ [1,2] == [1,2] }} {{ 2 >= 2 }} {{ 'x' <= 'w' }} {{ none == none }}", {}),
    ("logic", "{{ true and 'x' }} {{ 0 or 'y' }} {{ not [] }} {{ '' or [] or 'z' }} {{ not 1 == 2 }} {{ 1 and 0 }}", {}),
    ("in_not_in", "{{ 'b' in 'abc' }} {{ 2 in [1,2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ 'z' not in 'abc' }}", {}),
    ("ternary", "{{ 'yes' if x else 'no' }} {{ 'yes' if not x else 'no' }} [{{ 'only' if false }}] {{ 1 if false else 2 if true else 3 }}", {"x": 1}),
    ("slicing", "{{ s[::-1] }} {{ s[1:] }} {{ s[:-1] }} {{ s[1:4:2] }} {{ l[::-1] }} {{ l[-2:] }} {{ l[5:] }} {{ s[-1] }} {{ l[0] }} {{ 'héllo'[1] }} {{ 'héllo'[::-1] }}", {"s": "abcdef", "l": [1, 2, 3]}),
    ("attr_subscript", "{{ d.a }} {{ d['a'] }} {{ d.b.c }} {{ d['b']['c'] }} {{ l.0 }} {{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }} {{ d.missing is defined }}", {"d": {"a": 1, "b": {"c": [2]}}, "l": ["x"]}),
    ("string_literals", "{{ 'it\\'s' }} {{ \"dq \\\"x\\\"\" }} {{ 'tab\\tnl\\nend' }} {{ 'uni \\u00e9 \\x41' }} {{ 'back\\\\slash' }} {{ 'adj' 'acent' }} {{ 'raw \\d' }}", {}),
    ("literals", "{{ [1, 'a', [2]] }} {{ {'k': 'v', 'n': [1]} }} {{ (1, 2) }} {{ true }} {{ True }} {{ none }} {{ None }} {{ 1_000 }} {{ 1.50 }} {{ 2e3 }}", {}),
    ("filters_string", "{{ '  hi  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'Ab'|upper }}|{{ 'Ab'|lower }}|{{ 'hELLO wORLD'|capitalize }}|{{ 'hello big-world (x)'|title }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 'a&<>\"\\''|escape }}|{{ 'x'|safe }}", {}),
    ("filters_length_default", "{{ [1,2]|length }} {{ 'héllo'|length }} {{ {'a':1}|count }} {{ missing|default('d') }} {{ ''|default('e') }} {{ ''|default('e', true) }} {{ none|d('n') }} {{ missing|length }}", {}),
    ("filters_list", "{{ [3,1,2]|first }} {{ [3,1,2]|last }} {{ 'abc'|list }} {{ [3,1,2]|sort }} {{ [3,1,2]|reverse|list }} {{ 'abc'|reverse }} {{ ['a','A','b','a']|unique|list }} {{ [1,2,3]|sum }} {{ [4,2,8]|min }} {{ [4,2,8]|max }} {{ [1,2]|join }} {{ ['a','b']|join(', ') }}", {}),
    ("filters_numbers", "{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ '2.5'|float }} {{ -3|abs }} {{ -2.5|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.567|round(2) }} {{ 2.1|round(0, 'ceil') }} {{ 5|round }} {{ 42|string ~ '!' }}", {}),
    ("filters_dicts", "{{ d|dictsort }} {{ d|dictsort(by='value', reverse=true) }} {{ d|items|list }}", {"d": {"b": 1, "a": 3, "C": 2}}),
    ("filters_selectattr", "{{ ms|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }} {{ ms|rejectattr('role', 'equalto', 'user')|map(attribute='role')|list }} {{ ms|selectattr('tool')|list|length }} {{ ms|selectattr('tool', 'defined')|list|length }} {{ ms|rejectattr('tool', 'undefined')|map(attribute='tool')|first }} {{ [1,2,3,4]|select('even')|list }} {{ [1,2,3]|reject('odd')|list }} {{ ['a','b']|map('upper')|list }} {{ ms|map(attribute='x', default='-')|join }}", {"ms": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "tool": "t"}, {"role": "user", "content": "c"}]}),
    ("filter_tojson", "{{ d|tojson }}\n{{ d|tojson(indent=2) }}\n{{ d|tojson(sort_keys=true) }}\n{{ 'q\"\\n\u00e9'|tojson }} {{ [1.0, 2.5, none, true]|tojson }} {{ {}|tojson }} {{ []|tojson(indent=4) }}", {"d": {"z": [1, {"y": None}], "a": "s", "f": 0.5}}),
    ("string_methods", "{{ s.startswith('He') }} {{ s.endswith(('x', 'lo')) }} {{ s.split('l') }} {{ '  a  b '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ '  x  '.strip() }}|{{ 'xxaxx'.lstrip('x') }}|{{ 'xxaxx'.rstrip('x') }}|{{ s.upper() }} {{ s.lower() }} {{ 'ab cd'.title() }} {{ s.replace('l', 'L') }} {{ '-'.join(['a', 'b']) }} {{ s.find('l') }} {{ 'hello world'.capitalize() }}", {"s": "Hello"}),
    ("tests", "{{ x is defined }} {{ y is undefined }} {{ n is none }} {{ 's' is string }} {{ 1 is number }} {{ 1.5 is number }} {{ d is mapping }} {{ l is iterable }} {{ 's' is iterable }} {{ l is sequence }} {{ 2 is in [1,2] }} {{ false is false }} {{ true is true }} {{ 0 is false }} {{ x is not none }} {{ 4 is divisibleby 2 }} {{ 3 is odd }} {{ d is not mapping }} {{ 1 is integer }} {{ 1.0 is float }} {{ 'a' is equalto 'a' }} {{ l is string }}", {"x": 1, "n": None, "d": {}, "l": [1]}),
    ("strings_unicode", "{{ s|length }} {{ s[0] }} {{ s|upper }} {{ s|reverse }} {% for c in s %}[{{ c }}]{% endfor %}", {"s": "日本ü"}),
    ("raw_block", "{% raw %}{{ not evaluated }} {% if %}{% endraw %}!", {}),
    ("number_literals", "{{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }} {{ 0 }} {{ 00 }} {{ 1.5e3 }} {{ 10 }} {{ 2.5E-3 }}", {}),
    ("range_forms", "{{ range(3)|list }} {{ range(1, 4)|list }} {{ range(10, 0, -3)|list }}", {}),
    ("dict_literal_access", "{% set m = {'role': 'x', 'n': 2} %}{{ m.role }}{{ m['n'] + 1 }}{{ m.items()|list }}{{ m.keys()|list }}{{ m.values()|list }}", {}),
    ("messages_pattern", "{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] | trim + '\\n' }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}", {"bos_token": "<s>", "messages": [{"role": "user", "content": " hi "}], "add_generation_prompt": True}),
    ("filter_precedence", "{{ xs|length - 1 }} {{ -1|abs }} {{ 'a' ~ 'b'|upper }} {{ not xs|length }} {{ (1 + 2)|string + '3' }}", {"xs": [1, 2]}),
    ("undefined_ops", "{{ missing is defined }} [{{ missing }}] {{ missing|default('x') }} {{ missing is iterable }} {% for x in missing %}never{% endfor %}{{ missing == missing }} {{ 'a' in missing }}", {}),
]

# Each must fail: (name, template, context).
FEATURE_ERRORS = [
    ("raise_exception", "{{ raise_exception('custom failure') }}", {}),
    ("unclosed_block", "{% if true %}x", {}),
    ("unclosed_var", "{{ x ", {}),
    ("unclosed_comment", "{# x ", {}),
    ("unknown_filter", "{{ 1|nosuchfilter }}", {}),
    ("unknown_tag", "{% frobnicate %}", {}),
    ("endfor_mismatch", "{% if true %}{% endfor %}", {}),
    ("attr_of_undefined", "{{ missing.attr }}", {}),
    ("call_undefined", "{{ nosuchfunc() }}", {}),
    ("add_str_int", "{{ 'a' + 1 }}", {}),
    ("div_zero", "{{ 1 // 0 }}", {}),
    ("bad_unpack", "{% set a, b = [1, 2, 3] %}", {}),
    ("iterate_none", "{% for x in none %}{% endfor %}", {}),
    ("deep_recursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", {}),
    ("set_attr_non_namespace", "{% set d = {} %}{% set d.x = 1 %}", {}),
    ("compare_mismatch", "{{ 1 < 'a' }}", {}),
    ("bad_syntax", "{{ 1 + }}", {}),
    ("break_outside_loop", "{% break %}", {}),
    ("leading_zero_int", "{{ 01 }}", {}),
    ("if_with_inline_if", "{% if 1 if 0 else 2 %}x{% endif %}", {}),
    ("test_chained_is", "{{ 1 is number is number }}", {}),
]


def make_features():
    plain = ImmutableSandboxedEnvironment(extensions=[jinja2.ext.loopcontrols])
    plain.filters["tojson"] = make_env().filters["tojson"]
    plain.globals.update(make_env().globals)
    hf = make_env()
    cases = []
    for name, source, context in FEATURES:
        for mode, env in (("hf", hf), ("plain", plain)):
            try:
                expected = env.from_string(source).render(**context)
            except Exception as e:  # noqa: BLE001
                raise SystemExit(f"feature {name} ({mode}) failed in jinja2: {e}")
            cases.append({"name": name, "mode": mode, "template": source, "context": context, "expected": expected})
    for name, source, context in FEATURE_ERRORS:
        try:
            got = hf.from_string(source).render(**context)
        except Exception as e:  # noqa: BLE001
            cases.append({"name": name, "mode": "hf", "template": source, "context": context,
                          "error": str(e), "error_type": type(e).__name__})
            continue
        raise SystemExit(f"error case {name} rendered in jinja2: {got!r}")
    with open(os.path.join(OUT, "features.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "jinja2 " + jinja2.__version__, "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"features: {len(cases)} cases")


def main():
    if "--extract" in sys.argv:
        extract_gguf_template()
    env = make_env()
    for fname in sorted(os.listdir(TEMPLATES)):
        if not fname.endswith(".jinja"):
            continue
        name = fname[: -len(".jinja")]
        with open(os.path.join(TEMPLATES, fname), encoding="utf-8") as f:
            source = f.read()
        tmpl = env.from_string(source)
        out_cases = []
        for case_name, context in cases_for(name):
            entry = {"name": case_name, "context": context}
            try:
                entry["expected"] = tmpl.render(**context)
            except Exception as e:  # noqa: BLE001 - any template error is a golden error case
                entry["error"] = str(e)
                entry["error_type"] = type(e).__name__
            out_cases.append(entry)
        with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
            json.dump({"template": "templates/" + fname, "generator": "jinja2 " + jinja2.__version__,
                       "cases": out_cases}, f, ensure_ascii=False, indent=1)
            f.write("\n")
        n_err = sum("error" in c for c in out_cases)
        print(f"{name}: {len(out_cases)} cases ({n_err} errors)")
    make_features()


if __name__ == "__main__":
    main()

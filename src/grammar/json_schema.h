// JSON Schema and regular expressions -> GBNF (grammar/grammar.h), so structured output
// is one grammar engine: response_format json_schema / json_object, llama-server's
// `json_schema` and `grammar` fields all end up as a Grammar.
//
// Supported JSON Schema: type (one or a list), properties + required (in the order
// given; additionalProperties may be false, true or absent and extra keys are not
// generated), items, prefixItems, minItems, maxItems, enum, const, anyOf, oneOf (as
// anyOf), allOf of one schema, $ref to "#", "#/$defs/..." or "#/definitions/..."
// (recursion allowed), string pattern / minLength / maxLength. Annotations (title,
// description, default, examples, format, ...) are ignored, as JSON Schema allows.
// Assertions flashlm cannot enforce (minimum, maximum, multipleOf, not, if/then/else,
// uniqueItems, patternProperties, ...) are errors naming the keyword: the output would
// otherwise not be guaranteed to validate.
//
// Generated whitespace is bounded (one newline and at most 20 indent characters at a
// time) and numbers have at most 16 digits, so a small model cannot loop inside a
// number or a run of blanks.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "util/status.h"

namespace flashlm::grammar {

// GBNF text whose `root` matches exactly the JSON documents the schema describes (minus
// extra object keys and whitespace variants).
Result<std::string> json_schema_to_gbnf(const nlohmann::ordered_json& schema);

// The schema without the assertions json_schema_to_gbnf refuses (minimum, not, ...), for
// schemas whose shape should be enforced but whose values another party checks (the
// parameters of a non-strict tool).
nlohmann::ordered_json drop_unenforceable_keywords(const nlohmann::ordered_json& schema);

// GBNF for any JSON object (response_format json_object).
std::string json_object_gbnf();

// GBNF whose `root` matches the strings of a regular expression (ECMAScript subset:
// literals, ., classes with ranges, \d \w \s and their negations, groups, (?:...), |,
// * + ? {m} {m,} {m,n}, ^ and $ at the ends). Unanchored ends match any text there.
Result<std::string> regex_to_gbnf(std::string_view regex);

}  // namespace flashlm::grammar

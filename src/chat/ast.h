// The syntax tree the parser builds and the evaluator walks. Every node keeps the
// line/column of the token that started it so runtime errors can name a position.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/value.h"

namespace flashlm::chat {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  kLiteral,   // value
  kName,      // name
  kList,      // items; a tuple when `negated` is set
  kDict,      // items = key0, value0, key1, value1, ...
  kGetAttr,   // items[0].name
  kGetItem,   // items[0][items[1]]
  kSlice,     // items[0][items[1]:items[2]:items[3]], missing parts are null
  kCall,      // items[0](items[1..], kwargs)
  kFilter,    // items[0] | name(items[1..], kwargs)
  kTest,      // items[0] is [not] name(items[1..], kwargs); negated
  kUnary,     // op items[0]: "not", "-", "+"
  kBinary,    // items[0] op items[1]: arithmetic, "~", "and", "or"
  kCompare,   // items[0] ops[0] items[1] ops[1] items[2] ... (Python chaining)
  kCondExpr,  // items[1] if items[0] else items[2] (items[2] may be null)
};

struct Expr {
  ExprKind kind;
  int line = 0;
  int column = 0;
  Value value;                  // kLiteral
  std::string name;             // kName, kGetAttr, kFilter, kTest; the operator for kUnary/kBinary
  std::vector<ExprPtr> items;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // kCall, kFilter, kTest
  std::vector<std::string> ops;                         // kCompare
  bool negated = false;                                 // kTest; kList: a tuple
  int depth = 1;                                        // height of this subtree
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind {
  kText,      // text
  kOutput,    // {{ expr }}
  kIf,        // conds[i] -> bodies[i]; else_body
  kFor,       // for targets in expr [if cond]: bodies[0]; else_body
  kSet,       // set targets = expr, or set targets[0].attr = expr (namespace)
  kSetBlock,  // {% set targets[0] %}bodies[0]{% endset %}
  kMacro,     // macro name(params) bodies[0]
  kBreak,
  kContinue,
  kScope,     // a block that just renders bodies[0] ({% generation %})
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null when required
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  int column = 0;
  std::string text;                  // kText; macro name for kMacro
  ExprPtr expr;                      // kOutput, kFor (iterable), kSet
  ExprPtr cond;                      // kFor filter
  std::vector<ExprPtr> conds;        // kIf
  std::vector<Body> bodies;          // kIf (one per cond), kFor/kSetBlock/kMacro/kScope (one)
  Body else_body;                    // kIf, kFor
  std::vector<std::string> targets;  // kFor, kSet, kSetBlock
  std::string attr;                  // kSet on a namespace: targets[0].attr
  std::vector<MacroParam> params;    // kMacro
};

}  // namespace flashlm::chat

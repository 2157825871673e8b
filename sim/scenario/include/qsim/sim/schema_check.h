// A JSON Schema validator for exactly the subset scenarios/schema.json uses, so that the
// published schema is what the loader enforces instead of a document that drifts from it.
//
// Keywords: type, const, enum, minLength, pattern, minimum, maximum, exclusiveMinimum, items,
// minItems, maxItems, properties, required, additionalProperties (false or a schema),
// minProperties, oneOf, and $ref into the same document ("#/$defs/..."). Any other keyword is
// ignored, as JSON Schema ignores unknown keywords ($schema, $id, title, description, default).
//
// Two deliberate departures, both to agree with the loader:
//   - "integer" means a JSON number written without a fraction or exponent (1, not 1.0).
//   - A oneOf whose branches are told apart by a `const` property (fault `kind`, distribution
//     `dist`, arrival `kind`) reports the problems of the branch whose const matches, or
//     "expected one of ..." at that property, instead of "matches no branch".
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace qsim::sim {

struct SchemaProblem {
  std::string path;     // "$.architectures.queue.workrs", "$.faults[0]"
  std::string message;  // what was expected: "unknown key; did you mean \"workers\"?"
};

// Every problem of `instance` against `schema`, in a stable order; empty if it conforms.
std::vector<SchemaProblem> check_schema(const nlohmann::json& schema, const nlohmann::json& instance);

// scenarios/schema.json as built into the library (no source tree needed at run time).
std::string_view scenario_schema_text();
const nlohmann::json& scenario_schema();

}  // namespace qsim::sim

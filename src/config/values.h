// Value parsing for configuration settings: booleans, integers and reals with PostgreSQL
// time and memory units.
//
// Purpose: one implementation of PostgreSQL's guc.c rules (parse_bool, parse_int,
// convert_to_base_unit) shared by every key in the key table. Pure functions, no state.
// Thread-safety: all functions are reentrant.
// Usage:
//   auto ms = parseQuantity("5min", Unit::kMilliseconds);  // 300000.0
//   auto b = parseBool("on");                               // true
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgpilot::config {

// The unit a bare number is taken in, and the unit the result is returned in.
enum class Unit { kNone, kMilliseconds, kSeconds, kMinutes, kBytes, kKilobytes, kMegabytes };

// on/off/true/false/yes/no/1/0, case-insensitive, surrounding blanks ignored.
std::optional<bool> parseBool(std::string_view text);

// A number with an optional unit ("10", "1.5 s", "5min", "0x1F", "64MB"). Integers follow
// strtol base 0 rules like PostgreSQL (leading 0 is octal, 0x hex). Time units: us ms s min
// h d; memory units: B kB MB GB TB (case-sensitive, as in PostgreSQL). A unit is accepted
// only when `base` is of the same kind. Returns the value expressed in `base`, unrounded.
std::optional<double> parseQuantity(std::string_view text, Unit base);

// parseQuantity, rounded to the nearest integer; nullopt when not finite or beyond int64.
std::optional<int64_t> parseInteger(std::string_view text, Unit base);

// Formats a millisecond count with the largest unit that divides it exactly ("5min",
// "1500ms", "0"), the way PostgreSQL's SHOW does.
std::string formatMilliseconds(int64_t ms);

// Text of a unit as written in configuration files ("s", "ms", ...); empty for kNone.
std::string_view unitName(Unit unit);

}  // namespace pgpilot::config

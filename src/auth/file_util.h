// Internal: reading config-style text files for the auth module.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "auth/auth.h"

namespace pgpilot::auth::detail {

// Whole file contents, or "<path>: cannot read: <reason>".
std::expected<std::string, AuthError> readFile(const std::string& path);
// Lines without their '\n' and a trailing '\r'; line i of the result is line i+1 of the file.
std::vector<std::string_view> splitLines(std::string_view text);
std::string lineError(const std::string& name, size_t line, std::string_view msg);

}  // namespace pgpilot::auth::detail

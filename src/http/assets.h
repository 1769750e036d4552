// The dashboard's static files (web/), embedded in the binary at build time by
// cmake/embed_assets.cmake, so pgpilot serves its dashboard without an installed path.
#pragma once

#include <span>
#include <string_view>

namespace pgpilot::http {

struct EmbeddedFile {
  std::string_view path;  // "/index.html"
  std::string_view data;
};

std::span<const EmbeddedFile> embeddedFiles();

// The file for a request path ("/" is "/index.html"); nullptr when there is none.
const EmbeddedFile* findEmbedded(std::string_view path);
// Content-Type from the file name's extension.
std::string_view contentTypeFor(std::string_view path);

}  // namespace pgpilot::http

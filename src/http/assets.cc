#include "http/assets.h"

namespace pgpilot::http {

const EmbeddedFile* findEmbedded(std::string_view path) {
  if (path == "/") path = "/index.html";
  for (const EmbeddedFile& f : embeddedFiles()) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

std::string_view contentTypeFor(std::string_view path) {
  auto ends = [path](std::string_view ext) { return path.ends_with(ext); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".ico")) return "image/x-icon";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

}  // namespace pgpilot::http

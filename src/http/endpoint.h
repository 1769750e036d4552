// Endpoint: pgpilot's HTTP endpoint as the application starts it — the routes (Api) served
// by an HttpServer on the control thread's io_context, on http_listen_addresses:http_port.
// Owner: the application; lives as long as the control io_context runs.
#pragma once

#include <expected>
#include <memory>
#include <string>

#include "http/api.h"
#include "http/server.h"
#include "session/shared.h"

namespace pgpilot::http {

class Endpoint {
 public:
  // Listens and starts serving on `ctx` (the control thread's io_context).
  static std::expected<std::unique_ptr<Endpoint>, std::string> start(asio::io_context& ctx,
                                                                     session::Shared& shared,
                                                                     std::string version);
  void stop() { server_.stop(); }
  int port() const { return server_.boundPort(); }

 private:
  Endpoint(asio::io_context& ctx, session::Shared& shared, std::string version);
  Api api_;
  HttpServer server_;
};

}  // namespace pgpilot::http

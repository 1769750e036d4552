#include "http/endpoint.h"

#include <fmt/format.h>

#include "common/log.h"

namespace pgpilot::http {

Endpoint::Endpoint(asio::io_context& ctx, session::Shared& shared, std::string version)
    : api_(shared, std::move(version)),
      server_(ctx, [this](const Request& r) { return api_.handle(r); }) {}

std::expected<std::unique_ptr<Endpoint>, std::string> Endpoint::start(asio::io_context& ctx,
                                                                      session::Shared& shared,
                                                                      std::string version) {
  const auto& cfg = *shared.config();
  std::unique_ptr<Endpoint> e(new Endpoint(ctx, shared, std::move(version)));
  if (auto r = e->server_.listen(cfg.http_listen_addresses, cfg.http_port); !r) {
    return std::unexpected(r.error());
  }
  e->server_.start();
  std::string addrs;
  for (const auto& a : cfg.http_listen_addresses) addrs += (addrs.empty() ? "" : ",") + a;
  log::logf(log::Level::kLog, "HTTP endpoint listening on {} port {} (POST {})", addrs, e->port(),
            cfg.http_token.empty() ? "disabled: no http_token" : "needs http_token");
  return e;
}

}  // namespace pgpilot::http

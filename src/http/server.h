// HttpServer: a small HTTP/1.1 server for pgpilot's operator endpoint (/metrics, /health,
// /api, the dashboard).
//
// Purpose: accept connections on http_listen_addresses:http_port, parse requests with the
// packaged nodejs http-parser (Debian libhttp-parser-dev; see docs/http.md for why), hand
// each complete request to a Handler coroutine and write its Response. It is built for a
// handful of operators and scrapers, not for traffic: bounded request sizes
// (kMaxHeaderBytes, kMaxBodyBytes), a whole-request deadline (slow clients are cut off),
// an idle keep-alive deadline and a cap on concurrent connections. Anything it cannot
// parse gets a 4xx answer and the connection is closed; nothing a peer sends can throw.
// Owner: the control thread's io_context (the same thread as the monitor); handlers must
// not block (they are coroutines on that io_context).
//
//   HttpServer http(control_ctx, [&](const Request& r) -> net::Task<Response> { ... });
//   if (auto ok = http.listen({"127.0.0.1"}, 8080); !ok) fail(ok.error());
//   http.start();
#pragma once

#include <cstddef>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/stream.h"

namespace pgpilot::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path plus optional "?query"
  std::string path;    // target without the query, percent-decoding not applied
  std::string query;   // after '?', may be empty
  std::string authorization;
  std::string content_type;
  std::string body;
  std::string peer;  // client IP, for logs
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Extra header lines, each "Name: value" without CRLF.
  std::vector<std::string> headers;
};

Response textResponse(int status, std::string body);
std::string_view statusText(int status);
// The bytes of a response (status line, headers, body). HEAD requests get no body.
std::string serialize(const Response& r, bool keep_alive, bool head);

using Handler = std::function<net::Task<Response>(const Request&)>;

struct Limits {
  size_t max_header_bytes = 16 * 1024;  // request line + headers
  size_t max_body_bytes = 64 * 1024;
  size_t max_connections = 64;
  std::chrono::milliseconds request_timeout{10000};  // whole request, first byte to last
  std::chrono::milliseconds idle_timeout{30000};     // keep-alive wait for the next request
  std::chrono::milliseconds write_timeout{10000};
};

class HttpServer {
 public:
  HttpServer(asio::io_context& ctx, Handler handler, Limits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Opens the listeners ("*" = every address, "localhost" = 127.0.0.1).
  std::expected<void, std::string> listen(const std::vector<std::string>& addresses, int port);
  void start();
  // Closes the listeners and every open connection.
  void stop();
  // The port actually bound (tests may listen on port 0).
  int boundPort() const;

 private:
  struct State;
  net::Task<void> acceptLoop(net::tcp::acceptor& acceptor);
  static net::Task<void> serve(std::shared_ptr<State> state, net::tcp::socket sock);

  asio::io_context& ctx_;
  std::shared_ptr<State> state_;
  std::vector<std::unique_ptr<net::tcp::acceptor>> acceptors_;
};

}  // namespace pgpilot::http

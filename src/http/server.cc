#include "http/server.h"

#include <http_parser.h>

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <exception>
#include <unordered_set>

#include "common/log.h"

namespace pgpilot::http {

using log::Level;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// One request being parsed: http-parser calls back into this with pieces of the request
// line, headers and body as they arrive (a header may be split over several reads).
struct Parse {
  const Limits* limits = nullptr;
  Request req;
  size_t header_bytes = 0;
  std::string field;
  std::string value;
  bool in_value = false;
  bool complete = false;
  int error_status = 0;  // non-zero: answer with this status and close

  void flushHeader() {
    if (iequals(field, "authorization")) {
      req.authorization = value;
    } else if (iequals(field, "content-type")) {
      req.content_type = value;
    }
    field.clear();
    value.clear();
    in_value = false;
  }
  bool addHeaderBytes(size_t n, int status) {
    header_bytes += n;
    if (header_bytes <= limits->max_header_bytes) return true;
    error_status = status;
    return false;
  }
};

Parse& of(http_parser* p) {
  return *static_cast<Parse*>(p->data);
}

const http_parser_settings& parserSettings() {
  static const http_parser_settings settings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_url = [](http_parser* p, const char* at, size_t len) {
      if (!of(p).addHeaderBytes(len, 414)) return 1;
      of(p).req.target.append(at, len);
      return 0;
    };
    s.on_header_field = [](http_parser* p, const char* at, size_t len) {
      Parse& st = of(p);
      if (!st.addHeaderBytes(len, 431)) return 1;
      if (st.in_value) st.flushHeader();
      st.field.append(at, len);
      return 0;
    };
    s.on_header_value = [](http_parser* p, const char* at, size_t len) {
      Parse& st = of(p);
      if (!st.addHeaderBytes(len, 431)) return 1;
      st.value.append(at, len);
      st.in_value = true;
      return 0;
    };
    s.on_headers_complete = [](http_parser* p) {
      Parse& st = of(p);
      if (st.in_value) st.flushHeader();
      // content_length is ULLONG_MAX when the request has none (or is chunked).
      if (p->content_length != ULLONG_MAX && p->content_length > st.limits->max_body_bytes) {
        st.error_status = 413;
        http_parser_pause(p, 1);  // returning non-zero here would mean "no body", not error
      }
      return 0;
    };
    s.on_body = [](http_parser* p, const char* at, size_t len) {
      Parse& st = of(p);
      if (st.req.body.size() + len > st.limits->max_body_bytes) {
        st.error_status = 413;
        return 1;
      }
      st.req.body.append(at, len);
      return 0;
    };
    s.on_message_complete = [](http_parser* p) {
      of(p).complete = true;
      http_parser_pause(p, 1);  // one request at a time; the rest stays in the buffer
      return 0;
    };
    return s;
  }();
  return settings;
}

void splitTarget(Request& r) {
  const size_t q = r.target.find('?');
  r.path = r.target.substr(0, q);
  r.query = q == std::string::npos ? std::string() : r.target.substr(q + 1);
}

}  // namespace

std::string_view statusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

Response textResponse(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  if (r.body.empty() || r.body.back() != '\n') r.body += '\n';
  return r;
}

std::string serialize(const Response& r, bool keep_alive, bool head) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n"
      "X-Content-Type-Options: nosniff\r\n",
      r.status, statusText(r.status), r.content_type, r.body.size(),
      keep_alive ? "keep-alive" : "close");
  for (const auto& h : r.headers) {
    out += h;
    out += "\r\n";
  }
  out += "\r\n";
  if (!head) out += r.body;
  return out;
}

struct HttpServer::State {
  Handler handler;
  Limits limits;
  std::unordered_set<net::Stream*> open;
  bool stopped = false;
};

HttpServer::HttpServer(asio::io_context& ctx, Handler handler, Limits limits)
    : ctx_(ctx), state_(std::make_shared<State>()) {
  state_->handler = std::move(handler);
  state_->limits = limits;
}

HttpServer::~HttpServer() {
  stop();
}

std::expected<void, std::string> HttpServer::listen(const std::vector<std::string>& addresses,
                                                    int port) {
  std::vector<std::string> addrs;
  for (const auto& a : addresses) {
    if (a == "*") {
      addrs = {"0.0.0.0", "::"};
      break;
    }
    addrs.push_back(a == "localhost" ? "127.0.0.1" : a);
  }
  for (const auto& a : addrs) {
    std::error_code ec;
    auto addr = asio::ip::make_address(a, ec);
    if (ec) return std::unexpected(fmt::format("invalid http_listen_addresses entry \"{}\"", a));
    net::tcp::endpoint ep(addr, static_cast<unsigned short>(port));
    auto acc = std::make_unique<net::tcp::acceptor>(ctx_);
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && addr.is_v6()) acc->set_option(asio::ip::v6_only(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(64, ec);
    if (ec) {
      return std::unexpected(
          fmt::format("could not listen for HTTP on {}:{}: {}", a, port, ec.message()));
    }
    acceptors_.push_back(std::move(acc));
  }
  return {};
}

void HttpServer::start() {
  for (auto& acc : acceptors_) asio::co_spawn(ctx_, acceptLoop(*acc), asio::detached);
}

void HttpServer::stop() {
  state_->stopped = true;
  for (auto& acc : acceptors_) {
    std::error_code ignored;
    acc->close(ignored);
  }
  for (net::Stream* s : state_->open) s->close();
}

int HttpServer::boundPort() const {
  if (acceptors_.empty()) return 0;
  std::error_code ec;
  auto ep = acceptors_.front()->local_endpoint(ec);
  return ec ? 0 : ep.port();
}

net::Task<void> HttpServer::acceptLoop(net::tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(net::kUseAwaitable);
    if (ec == asio::error::operation_aborted || !acceptor.is_open() || state_->stopped) co_return;
    if (ec) {
      log::logf(Level::kWarning, "HTTP accept failed: {}", ec.message());
      asio::steady_timer t(ctx_);
      t.expires_after(std::chrono::milliseconds(100));
      co_await t.async_wait(net::kUseAwaitable);
      continue;
    }
    if (state_->open.size() >= state_->limits.max_connections) {
      log::logf(Level::kWarning, "HTTP: {} connections open, refusing one more",
                state_->open.size());
      std::error_code ignored;
      sock.close(ignored);
      continue;
    }
    asio::co_spawn(ctx_, serve(state_, std::move(sock)), asio::detached);
  }
}

namespace {

// Registers an open connection with the server so stop() can close it.
class OpenGuard {
 public:
  OpenGuard(std::unordered_set<net::Stream*>& set, net::Stream* s) : set_(set), s_(s) {
    set_.insert(s_);
  }
  ~OpenGuard() { set_.erase(s_); }
  OpenGuard(const OpenGuard&) = delete;
  OpenGuard& operator=(const OpenGuard&) = delete;

 private:
  std::unordered_set<net::Stream*>& set_;
  net::Stream* s_;
};

// Closes after the client has had the response: a close() with unread request bytes
// (an oversized body we refused) makes the kernel send RST, which can destroy the response
// before the client reads it. So: FIN first, drain briefly (bounded), then close.
net::Task<void> lingerClose(net::Stream& stream) {
  std::error_code ec;
  stream.socket().shutdown(net::tcp::socket::shutdown_send, ec);
  if (!ec) {
    auto ex = co_await asio::this_coro::executor;
    net::Deadline deadline(ex, std::chrono::seconds(1), stream);
    std::array<char, 4096> sink;
    for (size_t total = 0; total < 256 * 1024;) {
      auto [rec, n] = co_await stream.readSome(asio::buffer(sink));
      if (rec || n == 0) break;
      total += n;
    }
  }
  stream.close();
}

}  // namespace

net::Task<void> HttpServer::serve(std::shared_ptr<State> state, net::tcp::socket sock) {
  net::Stream stream(std::move(sock));
  OpenGuard guard(state->open, &stream);
  auto ex = co_await asio::this_coro::executor;
  const std::string peer = stream.peerAddress();
  std::string pending;  // bytes read but not parsed yet (pipelined requests)
  std::vector<char> buf(8192);
  for (bool first = true; !state->stopped; first = false) {
    Parse st;
    st.limits = &state->limits;
    http_parser parser;
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &st;
    bool eof = false;
    {
      net::Deadline deadline(ex, first ? state->limits.request_timeout : state->limits.idle_timeout,
                             stream);
      while (!st.complete && st.error_status == 0) {
        if (pending.empty()) {
          auto [ec, n] = co_await stream.readSome(asio::buffer(buf));
          if (ec || n == 0) {
            eof = true;
            break;
          }
          pending.assign(buf.data(), n);
        }
        const size_t used =
            http_parser_execute(&parser, &parserSettings(), pending.data(), pending.size());
        const auto err = HTTP_PARSER_ERRNO(&parser);
        if (err != HPE_OK && err != HPE_PAUSED && st.error_status == 0) st.error_status = 400;
        pending.erase(0, used);
      }
      if (deadline.expired()) co_return;
    }
    if (eof && !st.complete) co_return;  // closed, or reset mid-request: nothing to answer
    Response resp;
    bool keep_alive = false;
    bool head = false;
    if (st.error_status != 0) {
      resp = textResponse(st.error_status, std::string(statusText(st.error_status)));
    } else {
      st.req.method = http_method_str(static_cast<http_method>(parser.method));
      st.req.peer = peer;
      splitTarget(st.req);
      keep_alive = http_should_keep_alive(&parser) != 0;
      head = st.req.method == "HEAD";
      if (head) st.req.method = "GET";
      try {
        resp = co_await state->handler(st.req);
      } catch (const std::exception& e) {
        log::logf(Level::kError, "HTTP {} {}: internal error: {}", st.req.method, st.req.path,
                  e.what());
        resp = textResponse(500, "internal error");
      }
    }
    if (state->stopped) co_return;
    const std::string bytes = serialize(resp, keep_alive, head);
    {
      net::Deadline deadline(ex, state->limits.write_timeout, stream);
      if (co_await stream.writeAll(bytes)) co_return;
    }
    if (!keep_alive) break;
  }
  co_await lingerClose(stream);
}

}  // namespace pgpilot::http

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>

#include "http/server.h"

namespace pgpilot::http {
namespace {

using namespace std::chrono_literals;

// An HttpServer on its own io_context thread, answering with the request it saw.
class ServerFixture : public ::testing::Test {
 protected:
  void startServer(Limits limits = {}) {
    server_ = std::make_unique<HttpServer>(
        ctx_,
        [](const Request& r) -> net::Task<Response> {
          if (r.path == "/throw") throw std::runtime_error("boom");
          co_return textResponse(200, r.method + " " + r.path + " q=" + r.query +
                                          " auth=" + r.authorization + " body=" + r.body);
        },
        limits);
    ASSERT_TRUE(server_->listen({"127.0.0.1"}, 0));
    server_->start();
    thread_ = std::thread([this] { ctx_.run(); });
  }
  void TearDown() override {
    asio::post(ctx_, [this] { server_->stop(); });
    ctx_.stop();
    if (thread_.joinable()) thread_.join();
  }
  // Sends `data`, reads until the server closes or `until` is seen.
  std::string exchange(std::string_view data, std::string_view until = {}) {
    asio::io_context io;
    net::tcp::socket s(io);
    s.connect(
        {asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server_->boundPort())});
    asio::write(s, asio::buffer(data));
    std::string out;
    char buf[4096];
    for (;;) {
      std::error_code ec;
      const size_t n = s.read_some(asio::buffer(buf), ec);
      out.append(buf, n);
      if (ec) break;
      if (!until.empty() && out.find(until) != std::string::npos) break;
    }
    return out;
  }

  asio::io_context ctx_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

TEST_F(ServerFixture, AnswersARequest) {
  startServer();
  const std::string r = exchange(
      "POST /api/x?after=3 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t\r\n"
      "Content-Length: 4\r\nConnection: close\r\n\r\nbody");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200 OK\r\n")) << r;
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos);
  EXPECT_NE(r.find("POST /api/x q=after=3 auth=Bearer t body=body"), std::string::npos) << r;
}

TEST_F(ServerFixture, PipelinedRequestsInOrder) {
  startServer();
  const std::string r = exchange(
      "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  const size_t a = r.find("GET /a");
  const size_t b = r.find("GET /b");
  ASSERT_NE(a, std::string::npos) << r;
  ASSERT_NE(b, std::string::npos) << r;
  EXPECT_LT(a, b);
  EXPECT_NE(r.find("Connection: keep-alive"), std::string::npos);
}

TEST_F(ServerFixture, GarbageIs400) {
  startServer();
  EXPECT_TRUE(exchange("\x01\x02 nonsense\r\n\r\n").starts_with("HTTP/1.1 400 "));
  EXPECT_TRUE(exchange("GET / HTTP/9.9.9\r\n\r\n").starts_with("HTTP/1.1 400 "));
}

TEST_F(ServerFixture, SizeLimits) {
  Limits l;
  l.max_header_bytes = 512;
  l.max_body_bytes = 16;
  startServer(l);
  EXPECT_TRUE(exchange("GET / HTTP/1.1\r\nX: " + std::string(600, 'a') + "\r\n\r\n")
                  .starts_with("HTTP/1.1 431 "));
  EXPECT_TRUE(
      exchange("GET /" + std::string(600, 'a') + " HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 414 "));
  EXPECT_TRUE(exchange("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n" + std::string(17, 'x'))
                  .starts_with("HTTP/1.1 413 "));
  // Chunked bodies are counted as they arrive.
  EXPECT_TRUE(exchange("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "20\r\n" +
                       std::string(32, 'x') + "\r\n0\r\n\r\n")
                  .starts_with("HTTP/1.1 413 "));
  EXPECT_TRUE(exchange("POST / HTTP/1.1\r\nContent-Length: 16\r\nConnection: close\r\n\r\n" +
                       std::string(16, 'x'))
                  .starts_with("HTTP/1.1 200 "));
}

TEST_F(ServerFixture, RefusedLargeBodyStillGetsTheAnswer) {
  Limits l;
  l.max_body_bytes = 16;
  startServer(l);
  // The whole oversized body is already on its way: closing without draining would reset
  // the connection and lose the 413.
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(
        exchange("POST / HTTP/1.1\r\nContent-Length: 200000\r\n\r\n" + std::string(200000, 'x'))
            .starts_with("HTTP/1.1 413 "));
  }
}

TEST_F(ServerFixture, SlowRequestIsCutOff) {
  Limits l;
  l.request_timeout = 200ms;
  startServer(l);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string r = exchange("GET / HTTP/1.1\r\nHost:");  // never finished
  EXPECT_EQ(r, "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST_F(ServerFixture, HandlerExceptionIs500) {
  startServer();
  EXPECT_TRUE(
      exchange("GET /throw HTTP/1.1\r\nConnection: close\r\n\r\n").starts_with("HTTP/1.1 500 "));
  // The server goes on.
  EXPECT_TRUE(
      exchange("GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n").starts_with("HTTP/1.1 200 "));
}

TEST(Serialize, HeadHasNoBody) {
  Response r = textResponse(503, "down");
  const std::string get = serialize(r, false, false);
  const std::string head = serialize(r, false, true);
  EXPECT_TRUE(get.ends_with("\r\n\r\ndown\n"));
  EXPECT_TRUE(
      head.ends_with("Content-Length: 5\r\nConnection: close\r\n"
                     "X-Content-Type-Options: nosniff\r\n\r\n"))
      << head;
}

}  // namespace
}  // namespace pgpilot::http

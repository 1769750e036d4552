// Stream's write paths over real loopback TCP sockets: the non-blocking fast path
// (trySend) and its hand-over to the asynchronous write when the send buffer is full.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "net/stream.h"

namespace pgpilot::net {
namespace {

// A connected pair of loopback TCP sockets on one io_context: `a` writes, `b` reads.
struct Pair {
  asio::io_context io;
  tcp::socket a{io};
  tcp::socket b{io};
  Pair() {
    tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
    a.connect(acc.local_endpoint());
    b = acc.accept();
    // Small buffers so that a few hundred KiB fill them.
    a.set_option(asio::socket_base::send_buffer_size(16 * 1024));
    b.set_option(asio::socket_base::receive_buffer_size(16 * 1024));
  }
};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

TEST(StreamTest, TrySendSendsASmallMessageAtOnce) {
  Pair p;
  Stream w(std::move(p.a));
  const std::string msg = pattern(300);
  asio::const_buffer buf(msg.data(), msg.size());
  std::error_code ec;
  EXPECT_TRUE(w.trySend(buf, ec));
  EXPECT_FALSE(ec);
  EXPECT_EQ(buf.size(), 0u);
  std::string got(msg.size(), '\0');
  asio::read(p.b, asio::buffer(got));
  EXPECT_EQ(got, msg);
}

TEST(StreamTest, TrySendStopsAtAFullBufferAndWriteAllSendsTheRestInOrder) {
  Pair p;
  Stream w(std::move(p.a));
  const std::string msg = pattern(8 << 20);  // far more than both socket buffers hold
  asio::const_buffer buf(msg.data(), msg.size());
  std::error_code ec;
  ASSERT_FALSE(w.trySend(buf, ec)) << "8 MiB fitted into the socket buffers";
  EXPECT_FALSE(ec);
  EXPECT_GT(buf.size(), 0u);
  EXPECT_LT(buf.size(), msg.size()) << "nothing was sent before the buffer filled";

  std::string got;
  std::error_code write_ec = asio::error::would_block;
  asio::co_spawn(
      p.io,
      [&]() -> Task<void> {
        write_ec = co_await w.writeAll(buf);
        // The next write, once there is room again, takes the fast path as before.
        if (!write_ec) write_ec = co_await w.writeAll(std::string_view("tail"));
        w.close();
      },
      asio::detached);
  asio::co_spawn(
      p.io,
      [&]() -> Task<void> {
        std::string chunk(64 * 1024, '\0');
        for (;;) {
          auto [rec, n] = co_await p.b.async_read_some(asio::buffer(chunk), kUseAwaitable);
          got.append(chunk.data(), n);
          if (rec) break;
        }
      },
      asio::detached);
  p.io.run_for(std::chrono::seconds(30));
  EXPECT_FALSE(write_ec);
  ASSERT_EQ(got.size(), msg.size() + 4);
  EXPECT_TRUE(got == msg + "tail") << "bytes reordered or corrupted";
}

TEST(StreamTest, TrySendReportsAClosedPeer) {
  Pair p;
  Stream w(std::move(p.a));
  p.b.close();  // the peer answers further data with a reset
  const std::string msg = pattern(1000);
  std::error_code ec;
  // The first send may still be accepted locally; a later one sees EPIPE/ECONNRESET.
  for (int i = 0; i < 1000 && !ec; ++i) {
    asio::const_buffer buf(msg.data(), msg.size());
    ASSERT_TRUE(w.trySend(buf, ec) || ec);
    if (!ec) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(ec == asio::error::broken_pipe || ec == asio::error::connection_reset)
      << ec.message();
}

TEST(StreamTest, TrySendOnAClosedStreamIsAnError) {
  Pair p;
  Stream w(std::move(p.a));
  w.close();
  const std::string msg = "x";
  asio::const_buffer buf(msg.data(), msg.size());
  std::error_code ec;
  EXPECT_TRUE(w.trySend(buf, ec));
  EXPECT_TRUE(ec);
}

}  // namespace
}  // namespace pgpilot::net

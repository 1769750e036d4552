#include "session/client_session.h"

#include <fmt/format.h>

#include <cctype>
#include <cstring>

#include "admin/show.h"

namespace pgpilot::session {

using log::Level;
namespace fe = protocol::fe;
namespace be = protocol::be;

namespace {

// Server->client: the small messages that drive the session state machine.
bool serverWantsBody(char type) {
  // CommandComplete: to drop a block's BEGIN sent with its first statement whole.
  return type == be::kReadyForQuery || type == be::kParameterStatus || type == be::kErrorResponse ||
         type == be::kCopyInResponse || type == be::kCopyOutResponse ||
         type == be::kCopyBothResponse || type == be::kCommandComplete;
}

constexpr size_t kReadChunk = 64 * 1024;

}  // namespace

bool clientWantsBody(char type) {
  return type == fe::kQuery;
}

ClientSession::ClientSession(Worker& worker, net::Stream client, bool admin)
    : worker_(worker),
      shared_(worker.shared()),
      cfg_(worker.shared().config()),
      admin_(admin),
      started_(std::chrono::system_clock::now()),
      client_(std::move(client)),
      client_write_(worker.context().get_executor()),
      server_idle_(worker.context().get_executor()),
      server_done_(worker.context().get_executor()) {
  client_addr_ = client_.peerAddress();
  id_ = shared_.session_seq.fetch_add(1, std::memory_order_relaxed) + 1;
}

ClientSession::~ClientSession() {
  if (registered_) worker_.unregisterSession(pid_);
}

log::Context ClientSession::logContext() const {
  return log::Context{.session = id_,
                      .node = server_ ? server_->node() : -1,
                      .user = info_.user,
                      .database = info_.database,
                      .application = info_.application_name};
}

net::Task<std::error_code> ClientSession::writeClient(std::string_view data) {
  if (!client_write_.tryLock()) co_await client_write_.lock();
  auto ec = co_await client_.writeAll(data);
  client_write_.unlock();
  co_return ec;
}

bool ClientSession::tryWriteClient(std::string_view& data, std::error_code& ec) {
  if (!client_write_.tryLock()) return false;
  asio::const_buffer b(data.data(), data.size());
  const bool done = client_.trySend(b, ec);
  client_write_.unlock();
  data.remove_prefix(data.size() - b.size());
  return done;
}

net::Task<void> ClientSession::sendError(std::string_view sqlstate, std::string_view message,
                                         std::string_view detail) {
  std::string out;
  protocol::buildError(out, "ERROR", sqlstate, message, detail);
  protocol::buildReadyForQuery(out, tx_status_);
  worker_.errorClasses().count(sqlstate);
  log::logf(Level::kLog, logContext(), "statement refused: {} (SQLSTATE {})", message, sqlstate);
  co_await writeClient(out);
}

net::Task<void> ClientSession::sendFatal(std::string_view sqlstate, std::string_view message,
                                         std::string_view detail) {
  std::string out;
  protocol::buildError(out, "FATAL", sqlstate, message, detail);
  worker_.errorClasses().count(sqlstate);
  log::logf(Level::kLog, logContext(), "closing client session: {} (SQLSTATE {})", message,
            sqlstate);
  co_await writeClient(out);
}

void ClientSession::cancel(int32_t key) {
  if (key != key_ || !server_) return;
  asio::co_spawn(worker_.context(),
                 pool::sendCancel(worker_.context().get_executor(), server_->host(),
                                  server_->port(), server_->backendPid(), server_->backendKey()),
                 asio::detached);
}

void ClientSession::abort() {
  aborted_ = true;
  client_.close();
  for (auto& b : backends_) b->conn->stream().close();
}

void ClientSession::dropNode(int node) {
  // Closing the socket is enough: the session notices at its next use of that backend
  // (an idle one is replaced transparently, a busy one ends with an error).
  if (Backend* b = findBackend(node); b && b->conn) b->conn->stream().close();
}

net::Task<void> ClientSession::run(std::unique_ptr<ClientSession> self, int now_clients) {
  ClientSession& s = *self;
  const int max_clients = s.cfg_->max_client_connections;
  bool ok = false;
  {
    net::Deadline auth_deadline(s.worker_.context().get_executor(), s.cfg_->authentication_timeout,
                                s.client_);
    ok = co_await s.startup();
    // Refuse only after SSL negotiation and the startup packet, as PostgreSQL does: an
    // error in place of the answer to SSLRequest is reported by libpq as an SSL failure.
    // The admin port is exempt: an operator must get in when clients fill the limit.
    if (ok && !s.admin_ && now_clients > max_clients) {
      co_await s.sendFatal("53300", "sorry, too many clients already");
      ok = false;
    }
    // Admin port: only admin_users, refused before any password exchange.
    ok = ok && (!s.admin_ || co_await s.checkAdminUser());
    ok = ok && co_await s.authenticate();
  }
  if (ok && s.admin_) {
    co_await s.adminSession();
  } else if (ok && co_await s.attachServer()) {
    co_await s.relay();
  }
  s.finish();
}

// ---- startup ---------------------------------------------------------------------------

net::Task<bool> ClientSession::startup() {
  pool::MessageReader reader(1024);
  for (;;) {
    auto [ec, frame] = co_await reader.next(client_, /*startup=*/true);
    if (ec == std::errc::invalid_argument) {
      co_await sendFatal("08P01", "invalid length of startup packet");
      co_return false;
    }
    if (ec) co_return false;  // the client went away (or a port scanner)
    auto pkt = protocol::parseStartupPacket(frame.body);
    if (!pkt) {
      co_await sendFatal("08P01", "invalid startup packet layout");
      co_return false;
    }
    using Kind = protocol::StartupPacket::Kind;
    switch (pkt->kind) {
      case Kind::kSslRequest: {
        if (reader.hasBuffered()) {  // bytes after SSLRequest would bypass TLS (CVE-2021-23214)
          co_await sendFatal("08P01", "received unencrypted data after SSL request");
          co_return false;
        }
        // No TLS over a Unix socket, as PostgreSQL (it answers 'N' there).
        const char answer =
            shared_.client_tls && !client_.isTls() && !client_.isLocal() ? 'S' : 'N';
        if (co_await client_.writeAll(std::string_view(&answer, 1))) co_return false;
        if (answer == 'S') {
          if (auto hec = co_await client_.tlsAccept(*shared_.client_tls)) {
            log::logf(Level::kLog, logContext(), "TLS handshake with {} failed: {}", client_addr_,
                      hec.message());
            co_return false;
          }
        }
        continue;
      }
      case Kind::kGssEncRequest: {
        const char answer = 'N';  // GSSAPI encryption is not supported
        if (co_await client_.writeAll(std::string_view(&answer, 1))) co_return false;
        continue;
      }
      case Kind::kCancelRequest:
        Worker::routeCancel(shared_, pkt->cancel_pid, pkt->cancel_key);
        co_return false;
      case Kind::kUnsupported:
        co_await sendFatal("0A000",
                           fmt::format("unsupported frontend protocol {}.{}: server supports 3.0",
                                       pkt->code >> 16, pkt->code & 0xffff));
        co_return false;
      case Kind::kStartup:
        break;
    }
    if ((pkt->code >> 16) != 3) {
      co_await sendFatal("0A000",
                         fmt::format("unsupported frontend protocol {}.{}: server supports 3.0",
                                     pkt->code >> 16, pkt->code & 0xffff));
      co_return false;
    }
    std::vector<std::string> unrecognized;
    for (const auto& [k, v] : pkt->params) {
      if (k == "user") {
        info_.user = v;
      } else if (k == "database") {
        info_.database = v;
      } else if (k == "options") {
        info_.options = v;
      } else if (k == "replication") {
        co_await sendFatal("0A000", "pgpilot does not support replication connections");
        co_return false;
      } else if (k.starts_with("_pq_.")) {
        unrecognized.push_back(k);
      } else {
        if (k == "application_name") info_.application_name = v;
        info_.extra.emplace_back(k, v);
      }
    }
    if (info_.user.empty()) {
      co_await sendFatal("28000", "no PostgreSQL user name specified in startup packet");
      co_return false;
    }
    if (info_.database.empty()) info_.database = info_.user;
    // Protocol 3.x with x > 0 or _pq_ options: say what we speak (protocol docs,
    // "Protocol versions"), then go on with 3.0.
    if ((pkt->code & 0xffff) != 0 || !unrecognized.empty()) {
      std::string out;
      protocol::Writer w(out);
      w.begin(be::kNegotiateProtocolVersion).int32(protocol::kProtocolV3);
      w.int32(static_cast<int32_t>(unrecognized.size()));
      for (const auto& u : unrecognized) w.cstring(u);
      w.finish();
      if (co_await client_.writeAll(out)) co_return false;
    }
    if (cfg_->log_connections) {
      log::logf(Level::kLog, logContext(), "connection received: host={} user={} database={}",
                clientHost(), info_.user, info_.database);
    }
    co_return true;
  }
}

// ---- client authentication ---------------------------------------------------------------

net::Task<bool> ClientSession::authenticate() {
  // Snapshots (a reload may swap them): `passwords` keeps `entry` alive for the exchange.
  const auto passwords = shared_.passwordFile();
  const auto hba = shared_.hbaRules();
  const auth::PasswordEntry* entry = passwords ? passwords->find(info_.user) : nullptr;
  creds_.user = info_.user;
  if (entry) creds_.password = *entry;
  auth::AuthMethod method = auth::AuthMethod::kTrust;
  if (admin_) {
    // The admin port always asks for a password, whatever pool_hba says: SCRAM, or md5
    // when pool_passwd holds only an md5 hash.
    method = entry && entry->kind == auth::PasswordEntry::Kind::kMd5
                 ? auth::AuthMethod::kMd5
                 : auth::AuthMethod::kScramSha256;
  } else if (hba) {
    method = hba->match({.user = info_.user,
                         .database = info_.database,
                         .address = client_addr_,
                         .ssl = client_.isTls()});
  }
  bool ok = true;
  switch (method) {
    case auth::AuthMethod::kTrust:
      break;
    case auth::AuthMethod::kReject:
      co_await sendFatal("28000",
                         fmt::format("pool_hba.conf rejects connection for host \"{}\", user "
                                     "\"{}\", database \"{}\"{}",
                                     clientHost(), info_.user, info_.database,
                                     client_.isTls() ? ", SSL on" : ", no encryption"));
      co_return false;
    case auth::AuthMethod::kPassword:
    case auth::AuthMethod::kMd5:
    case auth::AuthMethod::kScramSha256:
      ok = co_await authPassword(method, entry);
      break;
  }
  if (!ok) co_return false;
  std::string out;
  protocol::buildAuthRequest(out, protocol::AuthCode::kOk);
  co_return !(co_await client_.writeAll(out));
}

net::Task<bool> ClientSession::authPassword(auth::AuthMethod method,
                                            const auth::PasswordEntry* entry) {
  using Kind = auth::PasswordEntry::Kind;
  const auto fail = [this]() -> net::Task<bool> {
    co_await sendFatal("28P01",
                       fmt::format("password authentication failed for user \"{}\"", info_.user));
    co_return false;
  };
  if (!entry) {
    // No secret known: run no exchange that could tell the client whether the user exists.
    log::logf(Level::kLog, logContext(), "user \"{}\" has no entry in pool_passwd", info_.user);
    co_return co_await fail();
  }
  // As PostgreSQL: an md5 rule with a SCRAM secret uses SCRAM.
  if (method == auth::AuthMethod::kScramSha256 ||
      (method == auth::AuthMethod::kMd5 && entry->kind == Kind::kScram)) {
    if (entry->kind == Kind::kMd5) co_return co_await fail();
    co_return co_await authScram(*entry);
  }
  pool::MessageReader reader(512);
  std::string out;
  std::string salt;
  if (method == auth::AuthMethod::kMd5) {
    salt = auth::randomBytes(4);
    protocol::buildAuthRequest(out, protocol::AuthCode::kMd5Password, salt);
  } else {
    protocol::buildAuthRequest(out, protocol::AuthCode::kCleartextPassword);
  }
  if (co_await client_.writeAll(out)) co_return false;
  auto [ec, frame] = co_await reader.next(client_, false, 10000);
  if (ec) co_return false;
  if (frame.type != fe::kPassword) {
    co_await sendFatal("08P01",
                       fmt::format("expected password response, got message type {}", frame.type));
    co_return false;
  }
  auto given = protocol::parsePasswordMessage(frame.body);
  if (!given) {
    co_await sendFatal("08P01", "invalid password packet");
    co_return false;
  }
  bool ok = false;
  if (method == auth::AuthMethod::kMd5) {
    const std::string hash = entry->kind == Kind::kPlain
                                 ? auth::md5PasswordHash(entry->secret, info_.user)
                                 : entry->secret;
    ok = *given == auth::md5Response(hash, salt);
  } else if (entry->kind == Kind::kPlain) {
    ok = *given == entry->secret;
  } else if (entry->kind == Kind::kMd5) {
    ok = auth::md5PasswordHash(*given, info_.user) == entry->secret;
  } else {
    auto v = auth::parseScramVerifier(entry->secret);
    ok = v && auth::formatScramVerifier(auth::makeScramVerifier(*given, v->iterations, v->salt)) ==
                  entry->secret;
    if (ok) creds_.password = auth::PasswordEntry{Kind::kPlain, std::string(*given)};
  }
  if (!ok) co_return co_await fail();
  co_return true;
}

net::Task<bool> ClientSession::authScram(const auth::PasswordEntry& entry) {
  using Kind = auth::PasswordEntry::Kind;
  std::optional<auth::ScramVerifier> verifier =
      entry.kind == Kind::kScram ? auth::parseScramVerifier(entry.secret)
                                 : std::optional(auth::makeScramVerifier(entry.secret));
  if (!verifier) {
    co_await sendFatal("28P01", "invalid SCRAM secret in pool_passwd");
    co_return false;
  }
  const std::string server_key = verifier->server_key;
  auth::ScramServer scram(std::move(*verifier));
  pool::MessageReader reader(512);
  std::string out;
  protocol::buildAuthRequest(out, protocol::AuthCode::kSasl, std::string("SCRAM-SHA-256\0\0", 15));
  if (co_await client_.writeAll(out)) co_return false;

  auto [ec, frame] = co_await reader.next(client_, false, 10000);
  if (ec) co_return false;
  auto init =
      frame.type == fe::kPassword ? protocol::parseSaslInitialResponse(frame.body) : std::nullopt;
  if (!init || init->mechanism != "SCRAM-SHA-256") {
    co_await sendFatal("08P01", "client selected an invalid SASL authentication mechanism");
    co_return false;
  }
  auto server_first = scram.handleClientFirst(init->data);
  if (!server_first) {
    co_await sendFatal("08P01", server_first.error().message);
    co_return false;
  }
  out.clear();
  protocol::buildAuthRequest(out, protocol::AuthCode::kSaslContinue, *server_first);
  if (co_await client_.writeAll(out)) co_return false;

  auto [ec2, frame2] = co_await reader.next(client_, false, 10000);
  if (ec2) co_return false;
  if (frame2.type != fe::kPassword) {
    co_await sendFatal("08P01", "expected SASL response");
    co_return false;
  }
  auto server_final = scram.handleClientFinal(frame2.body);
  if (!server_final) {
    co_await sendFatal("28P01",
                       fmt::format("password authentication failed for user \"{}\"", info_.user));
    co_return false;
  }
  out.clear();
  protocol::buildAuthRequest(out, protocol::AuthCode::kSaslFinal, *server_final);
  if (co_await client_.writeAll(out)) co_return false;
  if (entry.kind == Kind::kScram) {
    // Only a verifier is stored: remember the proven keys for SCRAM pass-through.
    creds_.scram_client_key = scram.clientKey();
    creds_.scram_server_key = server_key;
  }
  co_return true;
}

// ---- server attachment -----------------------------------------------------------------

net::Task<bool> ClientSession::attachServer() {
  lb_ = cfg_->load_balance_mode && cfg_->backends.size() > 1 && worker_.policy(cfg_) != nullptr;
  auto topo = shared_.cluster->topology();
  topo_version_ = topo->version;
  int node = -1;
  // With load balancing a session can start (and read) while no primary is known.
  if (lb_ && !topo->primaryNode()) node = chooseLbNode(*topo);
  if (node < 0) node = co_await primaryOrWait();
  if (aborted_) co_return false;
  if (node < 0) {
    co_await sendFatal("57P03", "no primary node is available",
                       "pgpilot waited for a primary node and found none");
    co_return false;
  }
  Backend* b = co_await backendFor(node);
  // A primary that refuses the connection has been reported to the failover controller
  // (backendFor): wait for it to be confirmed or replaced instead of failing the client,
  // bounded by failover_hold_timeout.
  const auto hold_until = pool::Clock::now() + shared_.primary_wait;
  while (!b && last_error_.connection_failed && !last_error_.from_server &&
         pool::Clock::now() < hold_until && !aborted_) {
    asio::steady_timer t(worker_.context());
    t.expires_after(std::chrono::milliseconds(100));
    co_await t.async_wait(net::kUseAwaitable);
    node = co_await primaryOrWait();
    if (node < 0) break;
    b = co_await backendFor(node);
  }
  if (aborted_) co_return false;
  if (!b) {
    std::string out;
    protocol::ErrorFields f = last_error_.fields;
    f.severity = "FATAL";
    protocol::buildError(out, f);
    worker_.errorClasses().count(f.code);
    co_await writeClient(out);
    co_return false;
  }
  active_ = b;
  server_ = b->conn.get();
  int32_t pid = worker_.registerSession(this);
  pid_ = pid;
  registered_ = true;
  key_ = worker_.randomKey();
  std::string out;
  for (const auto& [k, v] : server_->params()) protocol::buildParameterStatus(out, k, v);
  protocol::buildBackendKeyData(out, pid_, key_);
  protocol::buildReadyForQuery(out, server_->txStatus());
  tx_status_ = server_->txStatus();
  co_return !(co_await writeClient(out));
}

// ---- relaying --------------------------------------------------------------------------

net::Task<void> ClientSession::relay() {
  startPump();
  co_await clientPump();
  client_gone_ = true;
  if (pump_running_) {
    if (!client_scanner_.atBoundary()) {
      // The client vanished in the middle of a message whose first part is already at the
      // server: nothing we send can make that stream valid again. Close; never reuse.
      server_->stream().close();
    } else if (pending_ == 0 && !copy_in_) {
      server_->stream().cancel();  // wake the pump; the server owes us nothing
    } else {
      // The client left mid-query or mid-COPY: stop the server's work and drain what it
      // still sends, so the connection is clean before anybody reuses it.
      if (copy_in_) {
        std::string fail;
        protocol::Writer(fail).begin(fe::kCopyFail).cstring("client disconnected").finish();
        co_await server_->stream().writeAll(fail);
      } else {
        co_await pool::sendCancel(worker_.context().get_executor(), server_->host(),
                                  server_->port(), server_->backendPid(), server_->backendKey());
      }
      net::Deadline drain(worker_.context().get_executor(), std::chrono::seconds(10),
                          server_->stream());
      while (pump_running_) co_await server_done_.wait(std::chrono::seconds(1));
      co_return;
    }
  }
  while (pump_running_) co_await server_done_.wait(std::chrono::seconds(1));
}

net::Task<void> ClientSession::clientPump() {
  protocol::StreamScanner& scanner = client_scanner_;
  std::string buf;
  buf.resize(kReadChunk);
  size_t have = 0;
  for (;;) {
    if (have == buf.size()) buf.resize(buf.size() * 2);
    // client_idle_limit (pgpool): a client idle outside a transaction for too long is
    // disconnected; inside a transaction it is left alone, as in pgpool-II.
    std::optional<asio::steady_timer> idle_timer;
    bool idle_expired = false;
    if (cfg_->client_idle_limit.count() > 0 && pending_ == 0 && tx_status_ == 'I' &&
        scanner.atBoundary()) {
      idle_timer.emplace(worker_.context(), cfg_->client_idle_limit);
      idle_timer->async_wait([this, &idle_expired](std::error_code tec) {
        if (tec) return;
        idle_expired = true;
        client_.cancel();
      });
    }
    auto [ec, n] = co_await client_.readSome(asio::buffer(buf.data() + have, buf.size() - have));
    if (idle_timer) idle_timer->cancel();
    if (idle_expired) {
      co_await sendFatal("57P05", "terminating connection due to client_idle_limit",
                         fmt::format("the client was idle for more than {} s",
                                     cfg_->client_idle_limit.count() / 1000));
      co_return;
    }
    if (ec || server_finished_) co_return;
    // PAUSE (and a planned switchover): a new statement outside a transaction waits here.
    if (pending_ == 0 && tx_status_ == 'I' && scanner.atBoundary() && have == 0 &&
        shared_.hold_new_statements.load(std::memory_order_relaxed)) {
      if (!co_await holdWhilePaused(std::string_view(buf.data(), n))) co_return;
    }
    have += n;
    std::string_view data(buf.data(), have);
    size_t pos = 0;
    size_t fwd_start = 0;  // start of the bytes not yet forwarded
    bool terminate = false;
    bool invalid = false;
    if (pending_ == 0) busy_since_ = std::chrono::steady_clock::now();  // latency histogram
    // flush()'s fast path, not a coroutine: true if everything before `pos` went out now.
    auto sendNow = [&]() -> bool {
      if (pos <= fwd_start) return true;
      if (!server_) return false;
      asio::const_buffer b(data.data() + fwd_start, pos - fwd_start);
      std::error_code wec;
      const bool done = server_->stream().trySend(b, wec);
      fwd_start = pos - b.size();
      return done && !wec;
    };
    // Forwards the bytes before `pos` to the active server (before routing or answering).
    auto flush = [&]() -> net::Task<bool> {
      if (pos > fwd_start) {
        if (!server_) co_return false;
        if (co_await server_->stream().writeAll(data.substr(fwd_start, pos - fwd_start))) {
          co_return false;
        }
      }
      fwd_start = pos;
      co_return true;
    };
    while (pos < data.size()) {
      auto step = scanner.next(data.substr(pos));
      if (step.kind == protocol::ScanKind::kNeedMoreData) {
        // A Query larger than the buffer grows it by doubling as its bytes arrive (top of
        // the loop), never to the announced length upfront: a client could announce 1 GB.
        break;
      }
      if (step.kind == protocol::ScanKind::kInvalid) {
        invalid = true;
        break;
      }
      if (step.kind == protocol::ScanKind::kMessage) {  // a Query
        auto sql = protocol::parseQuery(step.body).value_or(std::string_view{});
        if (!copy_in_ && admin::recognize(sql) != admin::AdminCommand::kNone) {
          // Forward what came before, then answer in order once the server is idle.
          if (!co_await flush()) co_return;
          if (!co_await waitIdle()) co_return;
          if (!copy_in_) {
            co_await answerAdmin(sql);
            pos += step.size;
            fwd_start = pos;
            continue;
          }
          // The server went into copy-in meanwhile: it takes this Query as the error that
          // ends the copy (PostgreSQL's own answer), so it goes there like any message.
        }
        const bool check_due = active_lost_ || !server_ || routingCheckDue();
        const Fast fast = lb_ && !check_due && pending_ == 0 && !unsynced_ && !copy_in_
                              ? routeFast(sql)
                              : Fast::kNotDecided;
        if (fast == Fast::kAnswerBegin) {
          // Nothing is in flight (pending_ 0): the answer comes in order. Bytes before it
          // not yet forwarded (copy messages outside a copy, which the server ignores)
          // still go out first: nothing the client sent is dropped.
          if (pos > fwd_start) {
            if (!co_await flush()) co_return;
          }
          if (!co_await answerLocally("BEGIN", 'T')) co_return;
          pos += step.size;
          fwd_start = pos;
          continue;
        }
        if (fast == Fast::kForward) {
          // Routed without suspending: same node, nothing to flush first.
        } else if ((lb_ || check_due) && !copy_in_ && !unsynced_) {
          // (Inside an extended batch not yet synced, or a copy, the Query goes where the
          // batch or copy is: routing would put its own work in the middle of it.)
          if (!co_await flush() || !co_await waitIdle()) co_return;
          // In copy-in (entered while we waited) the server ends the copy with this Query:
          // no routing, it goes to the server that is waiting for copy data.
          Routed r = Routed::kForward;
          if (!copy_in_) r = co_await beforeStatement();
          if (r == Routed::kForward && lb_ && !copy_in_) r = co_await routeQuery(sql);
          if (r == Routed::kFailed || server_finished_ || (r == Routed::kForward && !server_)) {
            co_return;
          }
          if (r == Routed::kAnswered) {
            pos += step.size;
            fwd_start = pos;
            continue;
          }
        }
        if (!lb_) trackSessionState(sql);
        auto& counters = shared_.cluster->counters(server_->node(), worker_.index());
        counters.statements.fetch_add(1, std::memory_order_relaxed);
        counters.countStatement(sql);
        if (cfg_->log_statement) log::logf(Level::kLog, logContext(), "statement: {}", sql);
        if (begin_pipelined_) replies_.sent(fe::kQuery);  // the BEGIN that goes ahead of it
        // Not counted when the server will discard it (after a failed extended message, or
        // as the message that ends a copy-in with an error).
        if (replies_.sent(fe::kQuery)) ++pending_;
        stmt_error_ = false;
        copy_in_ = false;
        if (begin_pipelined_) {
          // The block's first statement: the client's BEGIN goes ahead of it in the same
          // write, as a Query of its own (the server pump drops its reply), so the block is
          // open on the server before the statement is even parsed, exactly as if the
          // client had sent both: one round trip instead of two.
          begin_pipelined_ = false;
          absorb_begin_ = true;
          std::string& out = scratch_;
          out.assign(data.substr(fwd_start, pos - fwd_start));
          protocol::Writer(out).begin(fe::kQuery).cstring(tx_log_.front()).finish();
          out.append(data.substr(pos, step.size));
          pos += step.size;
          fwd_start = pos;
          if (co_await server_->stream().writeAll(out)) co_return;
          continue;
        }
      } else if (step.kind == protocol::ScanKind::kHeader) {
        if (!fe::isFrontendMessageType(step.type)) {
          // As PostgreSQL does: FATAL once what came before is answered. Never forwarded,
          // so no server connection has to be given up for it (and with routing on, the
          // bytes before it may be ones pgpilot answers itself).
          if (!co_await flush() || !co_await waitIdle()) co_return;
          co_await sendFatal("08P01", fmt::format("invalid frontend message type {}",
                                                  static_cast<unsigned char>(step.type)));
          co_return;
        }
        const bool batch_start =
            !unsynced_ &&
            (step.type == fe::kParse || step.type == fe::kBind || step.type == fe::kDescribe ||
             step.type == fe::kExecute || step.type == fe::kClose || step.type == fe::kFlush);
        if ((batch_start || (step.type == fe::kFunctionCall && !unsynced_)) && !copy_in_ &&
            (lb_ || active_lost_ || !server_ || routingCheckDue())) {
          if (!co_await flush() || !co_await waitIdle()) co_return;
          // In copy-in (entered while we waited): this message ends the copy, at its server.
          Routed r = Routed::kForward;
          if (!copy_in_) r = co_await beforeStatement();
          if (r == Routed::kForward && lb_ && !copy_in_) {
            if (step.type == fe::kFunctionCall) {
              r = co_await routeFunctionCall();
            } else {
              r = co_await routeBatch(data.substr(pos));
            }
          }
          if (r != Routed::kForward || server_finished_ || !server_) co_return;
          stmt_error_ = false;
        }
        const bool owes_ready = replies_.sent(step.type);
        switch (step.type) {
          case fe::kSync:
            unsynced_ = false;
            if (owes_ready) ++pending_;
            break;
          case fe::kFunctionCall:
            if (owes_ready) ++pending_;
            break;
          case fe::kParse:
            shared_.cluster->counters(server_->node(), worker_.index())
                .statements.fetch_add(1, std::memory_order_relaxed);
            unsynced_ = true;
            break;
          case fe::kBind:
          case fe::kExecute:
          case fe::kDescribe:
          case fe::kClose:
          case fe::kFlush:
            unsynced_ = true;  // extended-protocol work the server may still be doing
            break;
          case fe::kCopyDone:
          case fe::kCopyFail:
            copy_in_ = false;
            break;
          case fe::kTerminate:
            terminate = true;
            break;
          default:
            break;
        }
        if (terminate) break;
      }
      pos += step.size;
    }
    if (!sendNow()) {
      if (!co_await flush()) co_return;
    }
    if (invalid) {
      co_await sendFatal("08P01", "invalid message length from client");
      co_return;
    }
    if (terminate) co_return;
    // Keep the unprocessed tail (a partial header or a partial Query) for the next read.
    if (pos < have) std::memmove(buf.data(), buf.data() + pos, have - pos);
    have -= pos;
  }
}

net::Task<ClientSession::PumpEnd> ClientSession::serverPump(pool::ServerConn& conn) {
  protocol::StreamScanner scanner(&serverWantsBody);
  std::string buf;
  buf.resize(kReadChunk);
  size_t have = 0;
  bool sent_fatal = false;
  // Bytes read during startup (or by a pump stopped earlier) that belong to the relay.
  if (!conn.pending().empty()) {
    const std::string p = std::move(conn.pending());
    conn.pending().clear();
    if (p.size() > buf.size()) buf.resize(p.size());
    std::memcpy(buf.data(), p.data(), p.size());
    have = p.size();
  }
  bool process_first = have > 0;
  for (;;) {
    // The client left while this pump was busy elsewhere (e.g. writing): the cancel() that
    // relay() issued could not reach a read that had not started yet, so check here.
    if (client_gone_ && pending_ == 0 && !copy_in_ && scanner.atBoundary() && have == 0) {
      co_return PumpEnd::kClean;
    }
    // Switching to another node: the server owes nothing; hand what was read to the next
    // reader of this connection.
    if (pump_stop_ && pending_ == 0 && !copy_in_ && scanner.atBoundary() && !process_first) {
      conn.pending().assign(buf.data(), have);
      co_return PumpEnd::kStopped;
    }
    std::error_code ec;
    if (!process_first) {
      if (have == buf.size()) buf.resize(buf.size() * 2);
      auto [rec, n] =
          co_await conn.stream().readSome(asio::buffer(buf.data() + have, buf.size() - have));
      ec = rec;
      have += n;
    }
    process_first = false;
    if (ec) {
      if (pump_stop_ && ec == asio::error::operation_aborted && scanner.atBoundary()) {
        conn.pending().assign(buf.data(), have);
        co_return PumpEnd::kStopped;
      }
      if (client_gone_ && pending_ == 0 && ec == asio::error::operation_aborted) {
        co_return scanner.atBoundary() ? PumpEnd::kClean : PumpEnd::kBroken;
      }
      if (!client_gone_ && !aborted_ && !sent_fatal && pending_ == 0 && !copy_in_ && !unsynced_ &&
          tx_status_ == 'I' && scanner.atBoundary()) {
        // Idle outside a transaction: the next statement reconnects, transparently.
        log::logf(Level::kLog, logContext(),
                  "server connection to node {} closed while idle ({}); the next statement "
                  "reconnects",
                  conn.node(), ec.message());
        co_return PumpEnd::kLostIdle;
      }
      if (!client_gone_ && !aborted_) {
        if (!sent_fatal) {
          log::logf(Level::kWarning, logContext(), "lost connection to node {}: {}", conn.node(),
                    ec.message());
          co_await sendFatal("08006", "server connection to the database node was lost",
                             "the server closed the connection or the network failed");
        }
        client_.close();
      }
      co_return PumpEnd::kBroken;
    }
    std::string_view data(buf.data(), have);
    size_t pos = 0;
    size_t fwd = 0;  // start of the bytes not yet written to the client
    int rfq = 0;
    int voided = 0;  // ReadyForQuery messages the server will not send after all
    // Forwards the bytes before the message at `pos` (which is then kept from the client).
    auto forwardBefore = [&]() -> net::Task<void> {
      if (!client_gone_) {
        if (co_await writeClient(data.substr(fwd, pos - fwd))) {
          client_gone_ = true;
          client_.close();
        }
      }
      fwd = pos;
    };
    while (pos < data.size()) {
      auto step = scanner.next(data.substr(pos));
      if (step.kind == protocol::ScanKind::kNeedMoreData) {
        if (step.length + 1 > buf.size()) buf.resize(step.length + 1);
        break;
      }
      if (step.kind == protocol::ScanKind::kInvalid) {
        log::logf(Level::kWarning, logContext(), "invalid message from node {}", conn.node());
        client_.close();
        co_return PumpEnd::kBroken;
      }
      if (step.kind == protocol::ScanKind::kMessage || step.kind == protocol::ScanKind::kHeader) {
        voided += replies_.received(step.type);
      }
      if (step.kind == protocol::ScanKind::kMessage) {
        switch (step.type) {
          case be::kReadyForQuery:
            if (absorb_begin_) {
              // The end of BEGIN's reply (routeFast, begin_pipelined_): the client had its
              // answer from pgpilot and owes no ReadyForQuery for it.
              absorb_begin_ = false;
              if (pos > fwd) co_await forwardBefore();
              fwd = pos + step.size;
              break;
            }
            tx_status_ = protocol::parseReadyForQuery(step.body).value_or('I');
            ++rfq;
            copy_in_ = false;
            break;
          case be::kCommandComplete:
            if (absorb_begin_) {  // BEGIN's
              if (pos > fwd) co_await forwardBefore();
              fwd = pos + step.size;
            }
            break;
          case be::kParameterStatus:
            if (auto p = protocol::parseParameterStatus(step.body)) {
              conn.params()[std::string(p->name)] = std::string(p->value);
            }
            break;
          case be::kErrorResponse:
            stmt_error_ = true;
            if (auto f = protocol::parseErrorFields(step.body)) {
              shared_.cluster->counters(conn.node(), worker_.index()).countError(f->severity);
              if (f->severity == "FATAL" || f->severity == "PANIC") {
                // Class 57: shutdown, pg_terminate_backend (not a reply to the client).
                if (pending_ == 0 && rfq == 0 && tx_status_ == 'I' && !copy_in_ && !unsynced_ &&
                    f->code.starts_with("57P")) {
                  // A server going away (shutdown, pg_terminate_backend) while the session
                  // is idle: keep it from the client; the next statement reconnects.
                  if (pos > fwd && !client_gone_ &&
                      co_await writeClient(data.substr(fwd, pos - fwd))) {
                    client_gone_ = true;
                    client_.close();
                  }
                  fwd = pos + step.size;
                  break;  // not forwarded: not counted
                }
                sent_fatal = true;
              }
              // Forwarded to the client (pgpilot_errors_total).
              if (!client_gone_) worker_.errorClasses().count(f->code);
            }
            break;
          case be::kCopyInResponse:
          case be::kCopyBothResponse:
            copy_in_ = true;
            server_idle_.notify();  // waitIdle: nothing is routed until the copy ends
            break;
          default:
            break;
        }
      }
      pos += step.size;
    }
    if (pos > fwd && !client_gone_) {
      std::string_view out = data.substr(fwd, pos - fwd);
      std::error_code wec;
      if (!tryWriteClient(out, wec)) wec = co_await writeClient(out);
      if (wec) {
        // The client is gone; keep draining the server until it is idle.
        client_gone_ = true;
        client_.close();
      }
    }
    if (rfq > 0 || voided > 0) {
      const bool was_busy = pending_ > 0;
      pending_ = std::max(0, pending_ - rfq - voided);
      conn.setTxStatus(tx_status_);
      if (pending_ == 0) {
        if (was_busy) worker_.latency().observe(std::chrono::steady_clock::now() - busy_since_);
        server_idle_.notify();
      }
    }
    // Idle: a tracker that lost the thread (a reply it does not model) starts afresh.
    if (!replies_.tracking() && pending_ == 0 && !unsynced_ && !copy_in_) {
      log::logf(Level::kDebug1, logContext(), "reply tracking was off since {} message '{}'",
                replies_.lostOnReply() ? "server" : "client",
                replies_.lostAt() ? std::string(1, replies_.lostAt()) : std::string("(overflow)"));
      replies_.reset();
    }
    if (pos < have) std::memmove(buf.data(), buf.data() + pos, have - pos);
    have -= pos;
    if (client_gone_ && pending_ == 0 && !copy_in_ && scanner.atBoundary() && have == 0) {
      co_return PumpEnd::kClean;
    }
  }
}

void ClientSession::finish() {
  for (auto& b : backends_) {
    bool clean = b->conn->pending().empty();
    if (b.get() == active_) {
      clean = !active_lost_ && server_finished_ && server_clean_ && pending_ == 0 && !copy_in_ &&
              !unsynced_;
      b->conn->setTxStatus(tx_status_);
    }
    worker_.pool().release(std::move(b->conn), b->key, clean);
  }
  backends_.clear();
  active_ = nullptr;
  server_ = nullptr;
  client_.close();
  if (cfg_->log_disconnections) {
    log::logf(Level::kLog, logContext(), "disconnection: user={} database={} host={}", info_.user,
              info_.database, clientHost());
  }
}

}  // namespace pgpilot::session

#include "protocol/messages.h"

namespace pgpilot::protocol {

namespace {

int16_t count16(size_t n) {
  return static_cast<int16_t>(n);
}
int32_t length32(size_t n) {
  return static_cast<int32_t>(n);
}

std::optional<StartupPacket> parseStartupParams(Reader& r, StartupPacket p) {
  // "A zero byte is required as a terminator after the last name/value pair."
  while (true) {
    const std::string_view name = r.cstring();
    if (r.failed()) return std::nullopt;
    if (name.empty()) break;
    const std::string_view value = r.cstring();
    if (r.failed()) return std::nullopt;
    p.params.emplace_back(std::string(name), std::string(value));
  }
  if (!r.atEnd()) return std::nullopt;
  return p;
}

void writeErrorField(Writer& w, char code, std::string_view value) {
  w.int8(static_cast<int8_t>(code)).cstring(value);
}

bool validSaslMechanismList(std::string_view data) {
  if (data.empty()) return true;
  return data.front() != '\0' && data.back() != '\0' &&
         data.find(std::string_view("\0\0", 2)) == std::string_view::npos;
}

}  // namespace

// ---- startup phase -------------------------------------------------------------------

std::string_view StartupPacket::param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return {};
}

std::optional<StartupPacket> parseStartupPacket(std::string_view body) {
  Reader r(body);
  StartupPacket p;
  p.code = r.int32();
  if (r.failed()) return std::nullopt;
  switch (p.code) {
    case kSslRequestCode:
    case kGssEncRequestCode:
      if (!r.atEnd()) return std::nullopt;
      p.kind = p.code == kSslRequestCode ? StartupPacket::Kind::kSslRequest
                                         : StartupPacket::Kind::kGssEncRequest;
      return p;
    case kCancelRequestCode:
      p.kind = StartupPacket::Kind::kCancelRequest;
      p.cancel_pid = r.int32();
      p.cancel_key = r.int32();
      if (!r.consumedAll()) return std::nullopt;
      return p;
    default:
      break;
  }
  if ((p.code >> 16) != 3) {
    p.kind = StartupPacket::Kind::kUnsupported;
    return p;
  }
  p.kind = StartupPacket::Kind::kStartup;
  return parseStartupParams(r, std::move(p));
}

void buildStartupMessage(std::string& out,
                         const std::vector<std::pair<std::string, std::string>>& params) {
  Writer w(out);
  w.begin(0).int32(kProtocolV3);
  for (const auto& [k, v] : params) w.cstring(k).cstring(v);
  w.int8(0);
  w.finish();
}

void buildCancelRequest(std::string& out, int32_t pid, int32_t key) {
  Writer w(out);
  w.begin(0).int32(kCancelRequestCode).int32(pid).int32(key);
  w.finish();
}

void buildSslRequest(std::string& out) {
  Writer w(out);
  w.begin(0).int32(kSslRequestCode);
  w.finish();
}

void buildGssEncRequest(std::string& out) {
  Writer w(out);
  w.begin(0).int32(kGssEncRequestCode);
  w.finish();
}

// ---- errors and notices ----------------------------------------------------------------

std::optional<ErrorFields> parseErrorFields(std::string_view body) {
  Reader r(body);
  ErrorFields e;
  bool have_v = false;
  while (true) {
    const char code = static_cast<char>(r.int8());
    if (r.failed()) return std::nullopt;
    if (code == '\0') break;
    const std::string_view value = r.cstring();
    if (r.failed()) return std::nullopt;
    switch (code) {
      case 'S':
        if (!have_v) e.severity = value;
        break;
      case 'V':
        e.severity = value;
        have_v = true;
        break;
      case 'C':
        e.code = value;
        break;
      case 'M':
        e.message = value;
        break;
      case 'D':
        e.detail = value;
        break;
      case 'H':
        e.hint = value;
        break;
      default:
        e.other.emplace_back(code, std::string(value));
        break;
    }
  }
  if (!r.atEnd()) return std::nullopt;
  return e;
}

void buildError(std::string& out, const ErrorFields& e, char type) {
  Writer w(out);
  w.begin(type);
  writeErrorField(w, 'S', e.severity);
  writeErrorField(w, 'V', e.severity);
  writeErrorField(w, 'C', e.code);
  writeErrorField(w, 'M', e.message);
  if (!e.detail.empty()) writeErrorField(w, 'D', e.detail);
  if (!e.hint.empty()) writeErrorField(w, 'H', e.hint);
  for (const auto& [code, value] : e.other) writeErrorField(w, code, value);
  w.int8(0);
  w.finish();
}

void buildError(std::string& out, std::string_view severity, std::string_view sqlstate,
                std::string_view message, std::string_view detail) {
  Writer w(out);
  w.begin(be::kErrorResponse);
  writeErrorField(w, 'S', severity);
  writeErrorField(w, 'V', severity);
  writeErrorField(w, 'C', sqlstate);
  writeErrorField(w, 'M', message);
  if (!detail.empty()) writeErrorField(w, 'D', detail);
  w.int8(0);
  w.finish();
}

// ---- backend messages the proxy generates ---------------------------------------------

void buildAuthRequest(std::string& out, AuthCode code, std::string_view extra) {
  Writer w(out);
  w.begin(be::kAuthentication).int32(static_cast<int32_t>(code)).bytes(extra);
  if (code == AuthCode::kSasl) {
    // Each mechanism name is a C string and an empty name ends the list. Callers may pass
    // the names only or a list they already terminated; complete whatever is missing.
    if (extra.empty()) {
      w.int8(0);
    } else if (!extra.ends_with(std::string_view("\0\0", 2))) {
      if (!extra.ends_with('\0')) w.int8(0);
      w.int8(0);
    }
  }
  w.finish();
}

void buildParameterStatus(std::string& out, std::string_view name, std::string_view value) {
  Writer w(out);
  w.begin(be::kParameterStatus).cstring(name).cstring(value);
  w.finish();
}

void buildBackendKeyData(std::string& out, int32_t pid, int32_t key) {
  Writer w(out);
  w.begin(be::kBackendKeyData).int32(pid).int32(key);
  w.finish();
}

void buildReadyForQuery(std::string& out, char tx_status) {
  Writer w(out);
  w.begin(be::kReadyForQuery).int8(static_cast<int8_t>(tx_status));
  w.finish();
}

void buildCommandComplete(std::string& out, std::string_view tag) {
  Writer w(out);
  w.begin(be::kCommandComplete).cstring(tag);
  w.finish();
}

void buildEmptyQueryResponse(std::string& out) {
  Writer w(out);
  w.begin(be::kEmptyQueryResponse);
  w.finish();
}

void buildRowDescription(std::string& out, const std::vector<std::string>& columns) {
  constexpr int32_t kTextOid = 25;
  Writer w(out);
  w.begin(be::kRowDescription).int16(count16(columns.size()));
  for (const auto& name : columns) {
    w.cstring(name)
        .int32(0)  // table oid: not a table column
        .int16(0)  // attribute number
        .int32(kTextOid)
        .int16(-1)  // typlen: variable length
        .int32(-1)  // typmod
        .int16(0);  // text format
  }
  w.finish();
}

void buildDataRow(std::string& out, const std::vector<std::optional<std::string>>& values) {
  Writer w(out);
  w.begin(be::kDataRow).int16(count16(values.size()));
  for (const auto& v : values) {
    if (!v) {
      w.int32(-1);
    } else {
      w.int32(length32(v->size())).bytes(*v);
    }
  }
  w.finish();
}

// ---- frontend messages the proxy generates (towards servers) --------------------------

void buildQuery(std::string& out, std::string_view sql) {
  Writer w(out);
  w.begin(fe::kQuery).cstring(sql);
  w.finish();
}

void buildPasswordMessage(std::string& out, std::string_view password) {
  Writer w(out);
  w.begin(fe::kPassword).cstring(password);
  w.finish();
}

void buildSaslInitialResponse(std::string& out, std::string_view mechanism, std::string_view data) {
  Writer w(out);
  w.begin(fe::kPassword).cstring(mechanism).int32(length32(data.size())).bytes(data);
  w.finish();
}

void buildSaslResponse(std::string& out, std::string_view data) {
  Writer w(out);
  w.begin(fe::kPassword).bytes(data);
  w.finish();
}

void buildTerminate(std::string& out) {
  Writer w(out);
  w.begin(fe::kTerminate);
  w.finish();
}

void buildSync(std::string& out) {
  Writer w(out);
  w.begin(fe::kSync);
  w.finish();
}

// ---- small parsers -----------------------------------------------------------------

std::optional<AuthRequest> parseAuthRequest(std::string_view body) {
  Reader r(body);
  AuthRequest a;
  a.code = static_cast<AuthCode>(r.int32());
  if (r.failed()) return std::nullopt;
  const std::string_view rest = r.rest();
  switch (a.code) {
    case AuthCode::kOk:
    case AuthCode::kCleartextPassword:
      if (!rest.empty()) return std::nullopt;
      return a;
    case AuthCode::kMd5Password:
      if (rest.size() != 4) return std::nullopt;
      a.data = rest;
      return a;
    case AuthCode::kSasl:
      if (rest == std::string_view("\0", 1)) return a;  // no mechanisms at all
      if (rest.size() < 3 || rest.substr(rest.size() - 2) != std::string_view("\0\0", 2)) {
        return std::nullopt;
      }
      a.data = rest.substr(0, rest.size() - 2);
      if (!validSaslMechanismList(a.data)) return std::nullopt;
      return a;
    default:
      a.data = rest;
      return a;
  }
}

std::vector<std::string_view> splitSaslMechanisms(std::string_view data) {
  std::vector<std::string_view> names;
  while (!data.empty()) {
    const size_t end = data.find('\0');
    names.push_back(data.substr(0, end));
    if (end == std::string_view::npos) break;
    data.remove_prefix(end + 1);
  }
  return names;
}

std::optional<ParameterStatus> parseParameterStatus(std::string_view body) {
  Reader r(body);
  ParameterStatus p;
  p.name = r.cstring();
  p.value = r.cstring();
  if (!r.consumedAll()) return std::nullopt;
  return p;
}

std::optional<BackendKeyData> parseBackendKeyData(std::string_view body) {
  Reader r(body);
  BackendKeyData k;
  k.pid = r.int32();
  k.key = r.int32();
  if (!r.consumedAll()) return std::nullopt;
  return k;
}

std::optional<std::string_view> parseQuery(std::string_view body) {
  Reader r(body);
  const std::string_view sql = r.cstring();
  if (!r.consumedAll()) return std::nullopt;
  return sql;
}

std::optional<char> parseReadyForQuery(std::string_view body) {
  Reader r(body);
  const char status = static_cast<char>(r.int8());
  if (!r.consumedAll()) return std::nullopt;
  if (status != 'I' && status != 'T' && status != 'E') return std::nullopt;
  return status;
}

std::optional<std::string_view> parsePasswordMessage(std::string_view body) {
  Reader r(body);
  const std::string_view password = r.cstring();
  if (!r.consumedAll()) return std::nullopt;
  return password;
}

std::optional<SaslInitialResponse> parseSaslInitialResponse(std::string_view body) {
  Reader r(body);
  SaslInitialResponse s;
  s.mechanism = r.cstring();
  const int32_t len = r.int32();
  if (r.failed() || len < -1) return std::nullopt;
  if (len > 0) s.data = r.bytes(static_cast<size_t>(len));
  if (!r.consumedAll()) return std::nullopt;
  return s;
}

std::optional<std::string_view> parseSaslResponse(std::string_view body) {
  return body;
}

}  // namespace pgpilot::protocol

#include "protocol/extended.h"

namespace pgpilot::protocol {

namespace {

int16_t count16(size_t n) {
  return static_cast<int16_t>(n);
}

// Reads an Int16 count; a negative count is malformed. The count comes from the network,
// so nothing is reserved from it: the loops below stop at the first failed read.
bool readCount(Reader& r, int16_t& n) {
  n = r.int16();
  return !r.failed() && n >= 0;
}

bool readInt16List(Reader& r, std::vector<int16_t>& out) {
  int16_t n = 0;
  if (!readCount(r, n)) return false;
  for (int16_t i = 0; i < n && !r.failed(); ++i) out.push_back(r.int16());
  return !r.failed();
}

bool readOidList(Reader& r, std::vector<Oid>& out) {
  int16_t n = 0;
  if (!readCount(r, n)) return false;
  for (int16_t i = 0; i < n && !r.failed(); ++i) out.push_back(static_cast<Oid>(r.int32()));
  return !r.failed();
}

// Int32 length (-1 = NULL, other negatives are malformed) followed by that many bytes.
bool readValue(Reader& r, Value& v) {
  const int32_t len = r.int32();
  if (r.failed() || len < -1) return false;
  if (len == -1) {
    v.reset();
    return true;
  }
  v = r.bytes(static_cast<size_t>(len));
  return !r.failed();
}

bool readValueList(Reader& r, std::vector<Value>& out) {
  int16_t n = 0;
  if (!readCount(r, n)) return false;
  for (int16_t i = 0; i < n; ++i) {
    Value v;
    if (!readValue(r, v)) return false;
    out.push_back(v);
  }
  return true;
}

// Bind and FunctionCall: zero format codes (all text), one (applies to all) or one each.
bool formatsMatch(size_t formats, size_t values) {
  return formats <= 1 || formats == values;
}

void writeInt16List(Writer& w, const std::vector<int16_t>& v) {
  w.int16(count16(v.size()));
  for (const int16_t x : v) w.int16(x);
}

void writeOidList(Writer& w, const std::vector<Oid>& v) {
  w.int16(count16(v.size()));
  for (const Oid x : v) w.int32(static_cast<int32_t>(x));
}

void writeValue(Writer& w, const Value& v) {
  if (!v) {
    w.int32(-1);
  } else {
    w.int32(static_cast<int32_t>(v->size())).bytes(*v);
  }
}

void writeValueList(Writer& w, const std::vector<Value>& v) {
  w.int16(count16(v.size()));
  for (const Value& x : v) writeValue(w, x);
}

std::optional<Target> parseTarget(std::string_view body) {
  Reader r(body);
  Target t;
  const char kind = static_cast<char>(r.int8());
  t.name = r.cstring();
  if (!r.consumedAll()) return std::nullopt;
  if (kind != 'S' && kind != 'P') return std::nullopt;
  t.kind = static_cast<TargetKind>(kind);
  return t;
}

void buildTarget(std::string& out, char type, const Target& t) {
  Writer w(out);
  w.begin(type).int8(static_cast<int8_t>(t.kind)).cstring(t.name);
  w.finish();
}

std::optional<std::string_view> parseSingleCString(std::string_view body) {
  Reader r(body);
  const std::string_view s = r.cstring();
  if (!r.consumedAll()) return std::nullopt;
  return s;
}

void buildEmpty(std::string& out, char type) {
  Writer w(out);
  w.begin(type);
  w.finish();
}

}  // namespace

// ---- frontend ----------------------------------------------------------------------------

std::optional<ParseMessage> parseParse(std::string_view body) {
  Reader r(body);
  ParseMessage m;
  m.statement = r.cstring();
  m.query = r.cstring();
  if (r.failed() || !readOidList(r, m.param_types) || !r.atEnd()) return std::nullopt;
  return m;
}

void buildParse(std::string& out, const ParseMessage& m) {
  Writer w(out);
  w.begin(fe::kParse).cstring(m.statement).cstring(m.query);
  writeOidList(w, m.param_types);
  w.finish();
}

std::optional<BindMessage> parseBind(std::string_view body) {
  Reader r(body);
  BindMessage m;
  m.portal = r.cstring();
  m.statement = r.cstring();
  if (r.failed() || !readInt16List(r, m.param_formats) || !readValueList(r, m.params) ||
      !readInt16List(r, m.result_formats) || !r.atEnd()) {
    return std::nullopt;
  }
  if (!formatsMatch(m.param_formats.size(), m.params.size())) return std::nullopt;
  return m;
}

void buildBind(std::string& out, const BindMessage& m) {
  Writer w(out);
  w.begin(fe::kBind).cstring(m.portal).cstring(m.statement);
  writeInt16List(w, m.param_formats);
  writeValueList(w, m.params);
  writeInt16List(w, m.result_formats);
  w.finish();
}

std::optional<Target> parseDescribe(std::string_view body) {
  return parseTarget(body);
}
void buildDescribe(std::string& out, const Target& t) {
  buildTarget(out, fe::kDescribe, t);
}
std::optional<Target> parseClose(std::string_view body) {
  return parseTarget(body);
}
void buildClose(std::string& out, const Target& t) {
  buildTarget(out, fe::kClose, t);
}

std::optional<ExecuteMessage> parseExecute(std::string_view body) {
  Reader r(body);
  ExecuteMessage m;
  m.portal = r.cstring();
  m.max_rows = r.int32();
  if (!r.consumedAll()) return std::nullopt;
  return m;
}

void buildExecute(std::string& out, const ExecuteMessage& m) {
  Writer w(out);
  w.begin(fe::kExecute).cstring(m.portal).int32(m.max_rows);
  w.finish();
}

void buildFlush(std::string& out) {
  buildEmpty(out, fe::kFlush);
}

std::optional<std::string_view> parseCopyData(std::string_view body) {
  return body;
}

void buildCopyData(std::string& out, std::string_view data) {
  Writer w(out);
  w.begin(fe::kCopyData).bytes(data);
  w.finish();
}

void buildCopyDone(std::string& out) {
  buildEmpty(out, fe::kCopyDone);
}

std::optional<std::string_view> parseCopyFail(std::string_view body) {
  return parseSingleCString(body);
}

void buildCopyFail(std::string& out, std::string_view message) {
  Writer w(out);
  w.begin(fe::kCopyFail).cstring(message);
  w.finish();
}

std::optional<FunctionCallMessage> parseFunctionCall(std::string_view body) {
  Reader r(body);
  FunctionCallMessage m;
  m.function = static_cast<Oid>(r.int32());
  if (r.failed() || !readInt16List(r, m.arg_formats) || !readValueList(r, m.args)) {
    return std::nullopt;
  }
  m.result_format = r.int16();
  if (!r.consumedAll() || !formatsMatch(m.arg_formats.size(), m.args.size())) return std::nullopt;
  return m;
}

void buildFunctionCall(std::string& out, const FunctionCallMessage& m) {
  Writer w(out);
  w.begin(fe::kFunctionCall).int32(static_cast<int32_t>(m.function));
  writeInt16List(w, m.arg_formats);
  writeValueList(w, m.args);
  w.int16(m.result_format);
  w.finish();
}

// ---- backend -----------------------------------------------------------------------------

std::optional<RowDescription> parseRowDescription(std::string_view body) {
  Reader r(body);
  RowDescription m;
  int16_t n = 0;
  if (!readCount(r, n)) return std::nullopt;
  for (int16_t i = 0; i < n; ++i) {
    FieldDescription f;
    f.name = r.cstring();
    f.table_oid = static_cast<Oid>(r.int32());
    f.column = r.int16();
    f.type_oid = static_cast<Oid>(r.int32());
    f.type_size = r.int16();
    f.type_modifier = r.int32();
    f.format = r.int16();
    if (r.failed()) return std::nullopt;
    m.fields.push_back(f);
  }
  if (!r.consumedAll()) return std::nullopt;
  return m;
}

void buildRowDescriptionMessage(std::string& out, const RowDescription& m) {
  Writer w(out);
  w.begin(be::kRowDescription).int16(count16(m.fields.size()));
  for (const FieldDescription& f : m.fields) {
    w.cstring(f.name)
        .int32(static_cast<int32_t>(f.table_oid))
        .int16(f.column)
        .int32(static_cast<int32_t>(f.type_oid))
        .int16(f.type_size)
        .int32(f.type_modifier)
        .int16(f.format);
  }
  w.finish();
}

std::optional<DataRow> parseDataRow(std::string_view body) {
  Reader r(body);
  DataRow m;
  if (!readValueList(r, m.values) || !r.atEnd()) return std::nullopt;
  return m;
}

void buildDataRowMessage(std::string& out, const DataRow& m) {
  Writer w(out);
  w.begin(be::kDataRow);
  writeValueList(w, m.values);
  w.finish();
}

std::optional<std::string_view> parseCommandComplete(std::string_view body) {
  return parseSingleCString(body);
}

std::optional<ParameterDescription> parseParameterDescription(std::string_view body) {
  Reader r(body);
  ParameterDescription m;
  if (!readOidList(r, m.param_types) || !r.atEnd()) return std::nullopt;
  return m;
}

void buildParameterDescription(std::string& out, const ParameterDescription& m) {
  Writer w(out);
  w.begin(be::kParameterDescription);
  writeOidList(w, m.param_types);
  w.finish();
}

void buildNoData(std::string& out) {
  buildEmpty(out, be::kNoData);
}
void buildParseComplete(std::string& out) {
  buildEmpty(out, be::kParseComplete);
}
void buildBindComplete(std::string& out) {
  buildEmpty(out, be::kBindComplete);
}
void buildCloseComplete(std::string& out) {
  buildEmpty(out, be::kCloseComplete);
}
void buildPortalSuspended(std::string& out) {
  buildEmpty(out, be::kPortalSuspended);
}

std::optional<CopyResponse> parseCopyResponse(std::string_view body) {
  Reader r(body);
  CopyResponse m;
  m.format = r.int8();
  if (r.failed() || !readInt16List(r, m.column_formats) || !r.atEnd()) return std::nullopt;
  return m;
}

void buildCopyResponse(std::string& out, char type, const CopyResponse& m) {
  Writer w(out);
  w.begin(type).int8(m.format);
  writeInt16List(w, m.column_formats);
  w.finish();
}

std::optional<NotificationResponse> parseNotificationResponse(std::string_view body) {
  Reader r(body);
  NotificationResponse m;
  m.pid = r.int32();
  m.channel = r.cstring();
  m.payload = r.cstring();
  if (!r.consumedAll()) return std::nullopt;
  return m;
}

void buildNotificationResponse(std::string& out, const NotificationResponse& m) {
  Writer w(out);
  w.begin(be::kNotificationResponse).int32(m.pid).cstring(m.channel).cstring(m.payload);
  w.finish();
}

std::optional<NegotiateProtocolVersion> parseNegotiateProtocolVersion(std::string_view body) {
  Reader r(body);
  NegotiateProtocolVersion m;
  m.newest_minor = r.int32();
  const int32_t n = r.int32();
  if (r.failed() || n < 0) return std::nullopt;
  for (int32_t i = 0; i < n; ++i) {
    const std::string_view option = r.cstring();
    if (r.failed()) return std::nullopt;
    m.unrecognized_options.push_back(option);
  }
  if (!r.atEnd()) return std::nullopt;
  return m;
}

void buildNegotiateProtocolVersion(std::string& out, const NegotiateProtocolVersion& m) {
  Writer w(out);
  w.begin(be::kNegotiateProtocolVersion)
      .int32(m.newest_minor)
      .int32(static_cast<int32_t>(m.unrecognized_options.size()));
  for (const std::string_view option : m.unrecognized_options) w.cstring(option);
  w.finish();
}

std::optional<FunctionCallResponse> parseFunctionCallResponse(std::string_view body) {
  Reader r(body);
  FunctionCallResponse m;
  if (!readValue(r, m.result) || !r.atEnd()) return std::nullopt;
  return m;
}

void buildFunctionCallResponse(std::string& out, const FunctionCallResponse& m) {
  Writer w(out);
  w.begin(be::kFunctionCallResponse);
  writeValue(w, m.result);
  w.finish();
}

bool parseEmptyBody(std::string_view body) {
  return body.empty();
}

}  // namespace pgpilot::protocol

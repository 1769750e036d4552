#include "protocol/codec.h"

#include <cstring>

namespace pgpilot::protocol {

int32_t readInt32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<int32_t>((static_cast<uint32_t>(u[0]) << 24) |
                              (static_cast<uint32_t>(u[1]) << 16) |
                              (static_cast<uint32_t>(u[2]) << 8) | static_cast<uint32_t>(u[3]));
}

int16_t readInt16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<int16_t>((static_cast<uint32_t>(u[0]) << 8) | static_cast<uint32_t>(u[1]));
}

DecodeResult decodeFrame(std::string_view data, uint32_t max_length) {
  DecodeResult r;
  if (data.size() < 5) return r;
  const int32_t len = readInt32(data.data() + 1);
  if (len < 4 || static_cast<uint32_t>(len) > max_length) {
    r.status = DecodeStatus::kInvalid;
    r.error = "invalid message length";
    return r;
  }
  const size_t total = 1 + static_cast<size_t>(len);
  if (data.size() < total) return r;
  r.status = DecodeStatus::kOk;
  r.frame.type = data[0];
  r.frame.body = data.substr(5, total - 5);
  r.frame.total_size = total;
  return r;
}

DecodeResult decodeStartupFrame(std::string_view data) {
  DecodeResult r;
  if (data.size() < 4) return r;
  const int32_t len = readInt32(data.data());
  // The shortest valid packet is a CancelRequest-sized SSLRequest: length + code = 8.
  if (len < 8 || static_cast<uint32_t>(len) > kMaxStartupLength) {
    r.status = DecodeStatus::kInvalid;
    r.error = "invalid length of startup packet";
    return r;
  }
  if (data.size() < static_cast<size_t>(len)) return r;
  r.status = DecodeStatus::kOk;
  r.frame.type = 0;
  r.frame.body = data.substr(4, static_cast<size_t>(len) - 4);
  r.frame.total_size = static_cast<size_t>(len);
  return r;
}

int8_t Reader::int8() {
  if (remaining() < 1) {
    failed_ = true;
    return 0;
  }
  return static_cast<int8_t>(data_[pos_++]);
}

int16_t Reader::int16() {
  if (remaining() < 2) {
    failed_ = true;
    pos_ = data_.size();
    return 0;
  }
  const int16_t v = readInt16(data_.data() + pos_);
  pos_ += 2;
  return v;
}

int32_t Reader::int32() {
  if (remaining() < 4) {
    failed_ = true;
    pos_ = data_.size();
    return 0;
  }
  const int32_t v = readInt32(data_.data() + pos_);
  pos_ += 4;
  return v;
}

std::string_view Reader::cstring() {
  const size_t end = data_.find('\0', pos_);
  if (end == std::string_view::npos) {
    failed_ = true;
    pos_ = data_.size();
    return {};
  }
  std::string_view s = data_.substr(pos_, end - pos_);
  pos_ = end + 1;
  return s;
}

std::string_view Reader::bytes(size_t n) {
  if (remaining() < n) {
    failed_ = true;
    pos_ = data_.size();
    return {};
  }
  std::string_view s = data_.substr(pos_, n);
  pos_ += n;
  return s;
}

std::string_view Reader::rest() {
  std::string_view s = data_.substr(pos_);
  pos_ = data_.size();
  return s;
}

Writer& Writer::begin(char type) {
  if (type != 0) out_.push_back(type);
  length_pos_ = out_.size();
  out_.append(4, '\0');
  return *this;
}

Writer& Writer::int8(int8_t v) {
  out_.push_back(static_cast<char>(v));
  return *this;
}

Writer& Writer::int16(int16_t v) {
  const auto u = static_cast<uint16_t>(v);
  out_.push_back(static_cast<char>(u >> 8));
  out_.push_back(static_cast<char>(u & 0xff));
  return *this;
}

Writer& Writer::int32(int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  const char b[4] = {static_cast<char>(u >> 24), static_cast<char>((u >> 16) & 0xff),
                     static_cast<char>((u >> 8) & 0xff), static_cast<char>(u & 0xff)};
  out_.append(b, 4);
  return *this;
}

Writer& Writer::cstring(std::string_view s) {
  out_.append(s);
  out_.push_back('\0');
  return *this;
}

Writer& Writer::bytes(std::string_view s) {
  out_.append(s);
  return *this;
}

void Writer::finish() {
  const auto len = static_cast<uint32_t>(out_.size() - length_pos_);
  out_[length_pos_] = static_cast<char>(len >> 24);
  out_[length_pos_ + 1] = static_cast<char>((len >> 16) & 0xff);
  out_[length_pos_ + 2] = static_cast<char>((len >> 8) & 0xff);
  out_[length_pos_ + 3] = static_cast<char>(len & 0xff);
}

}  // namespace pgpilot::protocol

#include "protocol/scanner.h"

#include <algorithm>

namespace pgpilot::protocol {

ScanStep StreamScanner::next(std::string_view data) {
  ScanStep step;
  if (remaining_ > 0) {
    if (data.empty()) return step;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
    remaining_ -= n;
    step.kind = ScanKind::kBodyPart;
    step.size = n;
    return step;
  }
  if (data.size() < 5) return step;
  const int32_t len = readInt32(data.data() + 1);
  if (len < 4 || static_cast<uint32_t>(len) > max_length_) {
    step.kind = ScanKind::kInvalid;
    return step;
  }
  step.type = data[0];
  step.length = static_cast<uint32_t>(len);
  if (want_body_(step.type)) {
    const size_t total = 1 + static_cast<size_t>(len);
    if (data.size() < total) return step;  // kNeedMoreData, type/length filled for sizing
    step.kind = ScanKind::kMessage;
    step.body = data.substr(5, total - 5);
    step.size = total;
    return step;
  }
  step.kind = ScanKind::kHeader;
  step.size = 5;
  remaining_ = static_cast<uint64_t>(len) - 4;
  return step;
}

}  // namespace pgpilot::protocol

#include "cluster/control.h"

namespace pgpilot::cluster {

std::string_view commandName(CommandKind k) {
  switch (k) {
    case CommandKind::kAttach:
      return "attach";
    case CommandKind::kDetach:
      return "detach";
    case CommandKind::kPromote:
      return "promote";
    case CommandKind::kSwitchover:
      return "switchover";
    case CommandKind::kReload:
      return "reload";
    case CommandKind::kPause:
      return "pause";
    case CommandKind::kResume:
      return "resume";
    case CommandKind::kShutdown:
      return "shutdown";
  }
  return "unknown";
}

}  // namespace pgpilot::cluster

// Admin statements answered by pgpilot itself (SHOW pool_nodes, SHOW pool_version ...).
//
// Purpose: recognise pgpool-compatible admin statements in a client's simple Query and
// build the complete answer (RowDescription, DataRows, CommandComplete — the caller adds
// ReadyForQuery). Pure with respect to I/O: takes a snapshot of the cluster, returns bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cluster/topology.h"

namespace pgpilot::admin {

enum class AdminCommand { kNone, kShowPoolNodes, kShowPoolVersion };

// Recognises an admin statement: case-insensitive, surrounding whitespace and one trailing
// semicolon allowed. Anything else is kNone and goes to a server.
AdminCommand recognize(std::string_view sql);

struct AdminContext {
  const cluster::Topology* topology = nullptr;
  cluster::ClusterState* state = nullptr;
  int session_node = -1;  // the node this session reads from (load_balance_node)
};

// Appends the answer for `cmd` to `out`.
void answer(AdminCommand cmd, const AdminContext& ctx, std::string& out);

inline constexpr std::string_view kVersion = "0.1.0";

}  // namespace pgpilot::admin

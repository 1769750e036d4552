// Collecting per-worker state for operators: client sessions, worker statistics and pool
// occupancy (SHOW pool_sessions / pool_processes / pool_pools, the HTTP API, metrics).
//
// Purpose: each worker owns its sessions and pool without locks, so these functions post a
// small job to every worker's io_context and gather the answers on the caller's executor.
// Bounded: a worker that does not answer within 5 s is left out. Never used on the query
// path.
// Thread-safety: call from a coroutine on any io_context (a worker's or the control
// thread's); the rows are plain values.
//
//   auto sessions = co_await session::collectSessionRows(shared);
#pragma once

#include <vector>

#include "admin/show.h"
#include "net/stream.h"
#include "session/shared.h"

namespace pgpilot::session {

// One row per registered client session (normal and admin port), by session id.
net::Task<std::vector<admin::SessionRow>> collectSessionRows(Shared& shared);
// Client sessions (not admin ones) that are running a statement or are inside a
// transaction: what a planned switchover waits for after holding new statements.
net::Task<int> countBusySessions(Shared& shared);
// One row per worker, by worker index.
net::Task<std::vector<admin::WorkerRow>> collectWorkerRows(Shared& shared);
// One row per (node, user, database) with open server connections: the process-wide count
// (PoolLimits) and the idle ones summed over the workers' pools.
net::Task<std::vector<admin::PoolRow>> collectPoolRows(Shared& shared);

}  // namespace pgpilot::session

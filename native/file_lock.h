// flock(2) for JS: Node has no binding for it, and the node-wide ledger (src/node-ledger) needs a lock
// the kernel drops when its holder dies. Only the non-blocking form is exposed, so no call can stall
// the event loop; JS retries with a short backoff.
#pragma once

#include <napi.h>

namespace vramguard {

// Adds tryLockFile(fd) -> boolean and unlockFile(fd) to exports.
void RegisterFileLock(Napi::Env env, Napi::Object exports);

}  // namespace vramguard

// The devices one reader reads, and one pass over them: shared by the sampler thread and the one-off
// readOnce(). Checks the requested devices against NVML's count once, then reads every device in order
// into a snapshot, timing each device and the whole pass.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "device_reader.h"
#include "nvml_loader.h"
#include "snapshot.h"

namespace vramguard {

// Why reading cannot start. The kind says which error it is, so JS maps kinds to its typed errors
// without knowing which NVML function failed.
enum class FailureKind : uint8_t {
  kUnavailable,  // NVML cannot be loaded, initialized, or cannot count its devices
  kBadDevice,    // a requested device index does not exist
};
const char* FailureKindName(FailureKind kind);  // "unavailable", "bad-device"

struct ReadFailure {
  FailureKind kind = FailureKind::kUnavailable;
  nvmlReturn_t code = NVML_SUCCESS;
  std::string function;  // the NVML function (or dlopen/dlsym) that failed: for the message, not for matching
  std::string reason;    // one line, with the figures
  static ReadFailure Unavailable(const NvmlAcquireResult& acquire);
};

class DevicePass {
 public:
  // requested: device indexes, empty for every device. False (with *failure set) when NVML cannot
  // count its devices or a requested index does not exist.
  bool Open(const NvmlFunctionTable& nvml, const SystemInfo& system, const std::vector<uint32_t>& requested,
            ReadFailure* failure);

  // One pass into snapshot, reusing its storage: wall clock once per pass, monotonic per device.
  void Read(Snapshot& snapshot);

  const std::vector<uint32_t>& devices() const { return devices_; }

 private:
  std::vector<uint32_t> devices_;
  std::vector<std::unique_ptr<DeviceReader>> readers_;
  uint64_t sequence_ = 0;
};

}  // namespace vramguard

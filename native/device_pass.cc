#include "device_pass.h"

namespace vramguard {

const char* FailureKindName(FailureKind kind) {
  switch (kind) {
    case FailureKind::kBadDevice:
      return "bad-device";
    case FailureKind::kUnavailable:
    default:
      return "unavailable";
  }
}

ReadFailure ReadFailure::Unavailable(const NvmlAcquireResult& acquire) {
  ReadFailure failure;
  failure.kind = FailureKind::kUnavailable;
  failure.code = acquire.code;
  failure.function = acquire.function;
  failure.reason = acquire.reason;
  return failure;
}

bool DevicePass::Open(const NvmlFunctionTable& nvml, const SystemInfo& system, const std::vector<uint32_t>& requested,
                      ReadFailure* failure) {
  if (!system.deviceCount.ok()) {
    failure->kind = FailureKind::kUnavailable;
    failure->code = system.deviceCount.status;
    failure->function = system.deviceCount.function;
    failure->reason = failure->function + " failed with " + NvmlReturnName(failure->code) + " (" +
                      std::to_string(failure->code) + ")";
    return false;
  }
  const uint32_t count = system.deviceCount.value;
  std::vector<uint32_t> devices = requested;
  if (devices.empty()) {
    for (uint32_t i = 0; i < count; ++i) devices.push_back(i);
  }
  for (uint32_t index : devices) {
    if (index >= count) {
      failure->kind = FailureKind::kBadDevice;
      failure->code = NVML_INVALID_ARGUMENT;
      failure->function = "nvmlDeviceGetHandleByIndex_v2";
      failure->reason = "device index " + std::to_string(index) + " does not exist (NVML reports " +
                        std::to_string(count) + " device" + (count == 1 ? "" : "s") + ")";
      return false;
    }
  }
  const DriverTraits traits = system.traits;  // driver version and exported symbols
  devices_ = std::move(devices);
  readers_.clear();
  for (uint32_t index : devices_) readers_.push_back(std::make_unique<DeviceReader>(nvml, index, traits));
  return true;
}

VG_PASS_CODE void DevicePass::Read(Snapshot& snapshot) {
  // Two clock reads per pass plus one per device: clocks are a visible share of a mock-speed pass.
  const uint64_t started = NowNanosMonotonic();
  snapshot.timestampMicros = NowMicrosRealtime();
  snapshot.devices.resize(readers_.size());
  uint64_t deviceStarted = started;
  for (size_t i = 0; i < readers_.size(); ++i) {
    readers_[i]->Read(snapshot.devices[i], snapshot.timestampMicros);
    const uint64_t deviceEnded = NowNanosMonotonic();
    snapshot.devices[i].readNanos = deviceEnded - deviceStarted;
    deviceStarted = deviceEnded;
  }
  snapshot.sequence = ++sequence_;
  snapshot.passNanos = deviceStarted - started;
}

}  // namespace vramguard

// MIG: the mode of one GPU and, while it is enabled, its MIG devices (one per compute instance), each
// read through its own MIG device handle: UUID, GPU and compute instance ids, memory and processes.
//
// Cost on GPUs without MIG: a GPU that answers NOT_SUPPORTED (or a driver without the symbol) is never
// asked again; a MIG-capable GPU with MIG disabled costs one nvmlDeviceGetMigMode per pass (the mode can
// change while the sampler runs). Enumeration happens only while the current mode is enabled.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "device_reader.h"

namespace vramguard {

class MigReader {
 public:
  MigReader(const NvmlFunctionTable& nvml, DriverTraits traits) : nvml_(nvml), traits_(traits) {}

  // Reads the parent's mode and instances into out.mig. False when a call found the GPU lost (out's lost
  // fields then say which call).
  bool Read(nvmlDevice_t parent, DeviceSample& out);

  // The GPU is new to the reader or back from lost: ask whether it can do MIG again, read the maximum anew.
  void Forget() {
    modeUnsupported_ = false;
    maxCount_ = 0;
  }

  // Every MIG reading absent with rc (the parent is lost or unreadable).
  static void Fail(nvmlReturn_t rc, const char* fn, MigSample& out);

 private:
  bool ReadInstance(nvmlDevice_t handle, uint32_t index, MigInstanceSample& out, DeviceSample& parent);
  bool ReadInstanceId(vg_fn_nvmlDeviceGetGpuInstanceId fn, const char* name, nvmlDevice_t handle,
                      Reading<uint32_t>& out, DeviceSample& parent);

  const NvmlFunctionTable& nvml_;
  const DriverTraits traits_;
  bool modeUnsupported_ = false;     // NOT_SUPPORTED once: not a MIG-capable GPU, never asked again
  nvmlReturn_t modeUnsupportedStatus_ = NVML_NOT_SUPPORTED;
  uint32_t maxCount_ = 0;            // nvmlDeviceGetMaxMigDeviceCount, read while enabled
  std::vector<std::unique_ptr<DeviceReader>> instanceReaders_;  // by MIG device index
  DeviceSample scratch_;             // an instance's memory and processes, before they are moved over
};

}  // namespace vramguard

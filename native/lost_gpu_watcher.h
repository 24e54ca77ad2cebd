// Reports a lost GPU as soon as the driver says so: a thread of its own waits on an NVML event set
// registered for critical XID errors on every sampled device, and calls back with the device's index
// (the sampler then reads at once instead of at its next tick). Where the driver lacks the event
// functions or the devices do not support the event, nothing starts and the sampler's passes alone find
// a lost GPU.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "nvml_loader.h"

namespace vramguard {

class LostGpuWatcher {
 public:
  using OnCriticalXid = std::function<void(uint32_t deviceIndex, unsigned long long xid)>;

  LostGpuWatcher() = default;
  LostGpuWatcher(const LostGpuWatcher&) = delete;
  LostGpuWatcher& operator=(const LostGpuWatcher&) = delete;
  ~LostGpuWatcher() { Stop(); }

  // Starts watching; false when events are not available here (then Stop is a no-op). The table must
  // stay valid until Stop returns. onXid runs on the watcher's thread and must not throw.
  bool Start(const NvmlFunctionTable& nvml, const std::vector<uint32_t>& devices, OnCriticalXid onXid);
  // Stops the thread (within one wait, 100 ms) and frees the event set.
  void Stop();
  bool running() const { return thread_.joinable(); }

 private:
  void Run();

  const NvmlFunctionTable* nvml_ = nullptr;
  nvmlEventSet_t set_ = nullptr;
  std::vector<std::pair<nvmlDevice_t, uint32_t>> handles_;  // registered handle -> device index
  OnCriticalXid onXid_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace vramguard

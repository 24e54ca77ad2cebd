#include "lost_gpu_watcher.h"

#include <pthread.h>

namespace vramguard {

namespace {
constexpr unsigned kWaitMillis = 100;  // how long Stop may wait for the thread
constexpr const char* kThreadName = "vramguard-xid";
}  // namespace

bool LostGpuWatcher::Start(const NvmlFunctionTable& nvml, const std::vector<uint32_t>& devices, OnCriticalXid onXid) {
  if (running()) return true;
  if (nvml.nvmlEventSetCreate == nullptr || nvml.nvmlDeviceRegisterEvents == nullptr ||
      nvml.nvmlEventSetWait_v2 == nullptr || nvml.nvmlEventSetFree == nullptr) {
    return false;
  }
  nvmlEventSet_t set = nullptr;
  if (nvml.nvmlEventSetCreate(&set) != NVML_SUCCESS || set == nullptr) return false;
  handles_.clear();
  for (uint32_t index : devices) {
    nvmlDevice_t handle = nullptr;
    if (nvml.nvmlDeviceGetHandleByIndex_v2(index, &handle) != NVML_SUCCESS) continue;
    unsigned long long supported = nvmlEventTypeXidCriticalError;
    if (nvml.nvmlDeviceGetSupportedEventTypes != nullptr &&
        nvml.nvmlDeviceGetSupportedEventTypes(handle, &supported) != NVML_SUCCESS) {
      continue;
    }
    if ((supported & nvmlEventTypeXidCriticalError) == 0) continue;
    if (nvml.nvmlDeviceRegisterEvents(handle, nvmlEventTypeXidCriticalError, set) == NVML_SUCCESS) {
      handles_.emplace_back(handle, index);
    }
  }
  if (handles_.empty()) {
    nvml.nvmlEventSetFree(set);
    return false;
  }
  nvml_ = &nvml;
  set_ = set;
  onXid_ = std::move(onXid);
  stop_.store(false, std::memory_order_release);
  try {
    thread_ = std::thread(&LostGpuWatcher::Run, this);
  } catch (...) {
    nvml.nvmlEventSetFree(set);
    set_ = nullptr;
    return false;
  }
  return true;
}

void LostGpuWatcher::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  thread_.join();
  nvml_->nvmlEventSetFree(set_);
  set_ = nullptr;
}

void LostGpuWatcher::Run() {
  pthread_setname_np(pthread_self(), kThreadName);
  try {
    while (!stop_.load(std::memory_order_acquire)) {
      nvmlEventData_t data{};
      const nvmlReturn_t rc = nvml_->nvmlEventSetWait_v2(set_, &data, kWaitMillis);
      if (rc == NVML_TIMEOUT) continue;
      if (rc != NVML_SUCCESS) {
        // A failing wait (the driver went away, or UNINITIALIZED after a shutdown elsewhere) must not
        // spin: back off one wait period; the sampler's own passes still find a lost GPU.
        struct timespec pause = {0, static_cast<long>(kWaitMillis) * 1000000L};
        nanosleep(&pause, nullptr);
        continue;
      }
      if ((data.eventType & nvmlEventTypeXidCriticalError) == 0) continue;
      for (const auto& entry : handles_) {
        if (entry.first == data.device) onXid_(entry.second, data.eventData);
      }
    }
  } catch (...) {
    // onXid_ must not throw; nothing else here can. Never let it take the process.
  }
}

}  // namespace vramguard

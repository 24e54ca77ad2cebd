#include "mig_reader.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

namespace vramguard {

namespace {
bool IsLost(nvmlReturn_t rc) { return rc == NVML_GPU_IS_LOST || rc == NVML_GPU_NOT_FOUND; }

// The parent is lost: the reading that found it says so.
bool MarkParentLost(nvmlReturn_t rc, const char* fn, DeviceSample& parent) {
  if (!IsLost(rc)) return false;
  parent.lost = true;
  parent.lostStatus.Fail(rc, fn);
  return true;
}
}  // namespace

const MigInstanceSample* FindMigInstance(const DeviceSample& device, const std::string& uuid) {
  if (!device.mig.instancesStatus.ok()) return nullptr;
  for (const MigInstanceSample& instance : device.mig.instances) {
    if (!instance.uuid.ok() || instance.uuid.value.size() != uuid.size()) continue;
    if (std::equal(uuid.begin(), uuid.end(), instance.uuid.value.begin(),
                   [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b)); })) {
      return &instance;
    }
  }
  return nullptr;
}

void MigReader::Fail(nvmlReturn_t rc, const char* fn, MigSample& out) {
  out.currentMode.Fail(rc, fn);
  out.pendingMode = 0;
  out.instancesStatus.Fail(rc, fn);
  out.instances.clear();
}

VG_PASS_CODE bool MigReader::Read(nvmlDevice_t parent, DeviceSample& out) {
  MigSample& mig = out.mig;
  constexpr const char* modeFn = "nvmlDeviceGetMigMode";
  if (nvml_.nvmlDeviceGetMigMode == nullptr) {
    Fail(NVML_FUNCTION_NOT_FOUND, modeFn, mig);
    return true;
  }
  if (modeUnsupported_) {
    Fail(modeUnsupportedStatus_, modeFn, mig);  // no call: asked once (out may be another pass's buffer)
    return true;
  }
  unsigned current = 0, pending = 0;
  const nvmlReturn_t rc = nvml_.nvmlDeviceGetMigMode(parent, &current, &pending);
  if (MarkParentLost(rc, modeFn, out)) return false;
  if (rc != NVML_SUCCESS) {
    // Not MIG-capable is a property of the board: asked once. Other failures are asked again next pass.
    if (rc == NVML_NOT_SUPPORTED || IsVersionProblem(rc)) {
      modeUnsupported_ = true;
      modeUnsupportedStatus_ = rc;
    }
    Fail(rc, modeFn, mig);
    return true;
  }
  mig.currentMode.Set(current, modeFn);
  mig.pendingMode = pending;
  if (current != NVML_DEVICE_MIG_ENABLE) {
    mig.instancesStatus.Set(0, modeFn);
    mig.instances.clear();
    maxCount_ = 0;  // read again once enabled
    return true;
  }
  if (nvml_.nvmlDeviceGetMaxMigDeviceCount == nullptr || nvml_.nvmlDeviceGetMigDeviceHandleByIndex == nullptr) {
    Fail(NVML_FUNCTION_NOT_FOUND, "nvmlDeviceGetMigDeviceHandleByIndex", mig);
    mig.currentMode.Set(current, modeFn);
    return true;
  }
  if (maxCount_ == 0) {
    unsigned count = 0;
    const nvmlReturn_t countRc = nvml_.nvmlDeviceGetMaxMigDeviceCount(parent, &count);
    if (MarkParentLost(countRc, "nvmlDeviceGetMaxMigDeviceCount", out)) return false;
    if (countRc != NVML_SUCCESS) {
      mig.instancesStatus.Fail(countRc, "nvmlDeviceGetMaxMigDeviceCount");
      mig.instances.clear();
      return true;
    }
    constexpr unsigned kMaxMigDevices = 64;  // A100/H100: 7; a larger answer is not trusted with buffers
    maxCount_ = std::min(count, kMaxMigDevices);
  }
  if (instanceReaders_.size() < maxCount_) instanceReaders_.resize(maxCount_);
  size_t used = 0;
  for (uint32_t i = 0; i < maxCount_; ++i) {
    constexpr const char* handleFn = "nvmlDeviceGetMigDeviceHandleByIndex";
    nvmlDevice_t handle = nullptr;
    const nvmlReturn_t handleRc = nvml_.nvmlDeviceGetMigDeviceHandleByIndex(parent, i, &handle);
    if (handleRc == NVML_NOT_FOUND) continue;  // no compute instance at this index: normal
    if (MarkParentLost(handleRc, handleFn, out)) return false;
    if (handleRc != NVML_SUCCESS) {
      mig.instancesStatus.Fail(handleRc, handleFn);
      mig.instances.clear();
      return true;
    }
    if (mig.instances.size() <= used) mig.instances.emplace_back();
    if (!ReadInstance(handle, i, mig.instances[used], out)) return false;
    ++used;
  }
  mig.instances.resize(used);
  mig.instancesStatus.Set(0, "nvmlDeviceGetMigDeviceHandleByIndex");
  return true;
}

bool MigReader::ReadInstanceId(vg_fn_nvmlDeviceGetGpuInstanceId fn, const char* name, nvmlDevice_t handle,
                               Reading<uint32_t>& out, DeviceSample& parent) {
  if (fn == nullptr) {
    out.Fail(NVML_FUNCTION_NOT_FOUND, name);
    return true;
  }
  unsigned id = 0;
  const nvmlReturn_t rc = fn(handle, &id);
  if (MarkParentLost(rc, name, parent)) return false;
  if (rc == NVML_SUCCESS) {
    out.Set(id, name);
  } else {
    out.Fail(rc, name);
  }
  return true;
}

bool MigReader::ReadInstance(nvmlDevice_t handle, uint32_t index, MigInstanceSample& out, DeviceSample& parent) {
  out.index = index;
  constexpr const char* uuidFn = "nvmlDeviceGetUUID";
  if (nvml_.nvmlDeviceGetUUID == nullptr) {
    out.uuid.Fail(NVML_FUNCTION_NOT_FOUND, uuidFn);
  } else {
    char buffer[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {0};
    const nvmlReturn_t rc = nvml_.nvmlDeviceGetUUID(handle, buffer, sizeof buffer);
    if (MarkParentLost(rc, uuidFn, parent)) return false;
    if (rc == NVML_SUCCESS) {
      buffer[sizeof buffer - 1] = '\0';
      // Handles can be reused for another instance: the string is compared, not assumed.
      if (!out.uuid.ok() || out.uuid.value != buffer) out.uuid.Set(buffer, uuidFn);
    } else {
      out.uuid.Fail(rc, uuidFn);
    }
  }
  if (!ReadInstanceId(nvml_.nvmlDeviceGetGpuInstanceId, "nvmlDeviceGetGpuInstanceId", handle, out.gpuInstanceId, parent) ||
      !ReadInstanceId(nvml_.nvmlDeviceGetComputeInstanceId, "nvmlDeviceGetComputeInstanceId", handle,
                      out.computeInstanceId, parent)) {
    return false;
  }
  std::unique_ptr<DeviceReader>& reader = instanceReaders_[index];
  if (!reader) reader = std::make_unique<DeviceReader>(nvml_, parent.index, traits_);
  scratch_.processes.swap(out.processes);  // reuse the instance's storage
  scratch_.lost = false;
  if (!reader->ReadMemoryAndProcesses(handle, scratch_)) {
    parent.lost = true;
    parent.lostStatus = scratch_.lostStatus;
    return false;
  }
  out.memoryInfoVersion = scratch_.memoryInfoVersion;
  out.memoryTotal = scratch_.memoryTotal;
  out.memoryUsed = scratch_.memoryUsed;
  out.memoryFree = scratch_.memoryFree;
  out.memoryReserved = scratch_.memoryReserved;
  out.processLayout = scratch_.processLayout;
  out.processListStatus = scratch_.processListStatus;
  out.processes.swap(scratch_.processes);
  return true;
}

}  // namespace vramguard

#include "device_reader.h"

#include "mig_reader.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace vramguard {

namespace {

constexpr uint32_t kNotInMig = 0xFFFFFFFFu;

template <typename Fn>
nvmlReturn_t ReadString(Fn fn, const char* name, nvmlDevice_t handle, unsigned size, Reading<std::string>& out) {
  if (fn == nullptr) {
    out.Fail(NVML_FUNCTION_NOT_FOUND, name);
    return NVML_FUNCTION_NOT_FOUND;
  }
  char buffer[128] = {0};
  const nvmlReturn_t rc = fn(handle, buffer, std::min<unsigned>(size, sizeof buffer));
  if (rc != NVML_SUCCESS) {
    out.Fail(rc, name);
    return rc;
  }
  buffer[sizeof buffer - 1] = '\0';
  out.Set(std::string(buffer), name);
  return rc;
}

}  // namespace

DeviceReader::DeviceReader(const NvmlFunctionTable& nvml, uint32_t index, DriverTraits traits)
    : nvml_(nvml), index_(index), traits_(std::move(traits)) {
  const size_t v3Stride = traits_.v3ProcessRecordsAre32Bytes ? sizeof(vgNvmlProcessInfo_535_t) : sizeof(nvmlProcessInfo_v2_t);
  const ProcessRecordLayout v3Layout =
      traits_.v3ProcessRecordsAre32Bytes ? ProcessRecordLayout::kV3Driver535 : ProcessRecordLayout::kV3;
  auto add = [](ProcessList& list, vg_fn_nvmlDeviceGetComputeRunningProcesses fn, const char* name, size_t stride,
                ProcessRecordLayout layout) {
    if (fn != nullptr) list.entryPoints.push_back({fn, name, stride, layout});
  };
#define VG_ADD_LIST(slot, typeBit, base)                                                                         \
  lists_[slot].type = typeBit;                                                                                   \
  add(lists_[slot], nvml_.base##_v3, #base "_v3", v3Stride, v3Layout);                                           \
  add(lists_[slot], nvml_.base##_v2, #base "_v2", sizeof(nvmlProcessInfo_v2_t), ProcessRecordLayout::kV2);       \
  add(lists_[slot], nvml_.base, #base, sizeof(nvmlProcessInfo_v1_t), ProcessRecordLayout::kV1);
  VG_ADD_LIST(0, kProcessCompute, nvmlDeviceGetComputeRunningProcesses)
  VG_ADD_LIST(1, kProcessGraphics, nvmlDeviceGetGraphicsRunningProcesses)
  VG_ADD_LIST(2, kProcessMps, nvmlDeviceGetMPSComputeRunningProcesses)
#undef VG_ADD_LIST
  recordBuffer_.resize(32 * sizeof(vgNvmlProcessInfo_535_t));
  utilizationBuffer_.resize(32);
}

DeviceReader::~DeviceReader() = default;

bool DeviceReader::ReadMemoryAndProcesses(nvmlDevice_t handle, DeviceSample& out) {
  handle_ = handle;
  lost_ = false;
  out.lost = false;
  out.processes.clear();
  return ReadMemory(out) && !lost_ && ReadProcesses(out) && !lost_;
}

bool DeviceReader::MarkLost(nvmlReturn_t rc, const char* function, DeviceSample& out) {
  lost_ = true;
  out.lost = true;
  out.lostStatus.Fail(rc, function);
  lostStatus_ = out.lostStatus;
  return true;
}

VG_PASS_CODE bool DeviceReader::AcquireHandle(DeviceSample& out) {
  if (handle_ != nullptr && !lost_) return true;
  // First use, or a lost device being probed: get the handle anew (a recovered GPU may have a new one).
  nvmlDevice_t handle = nullptr;
  constexpr const char* fn = "nvmlDeviceGetHandleByIndex_v2";
  const nvmlReturn_t rc = nvml_.nvmlDeviceGetHandleByIndex_v2(index_, &handle);
  if (rc != NVML_SUCCESS) {
    // Lost, or not ours to read (NO_PERMISSION in a restricted container): nothing can be read now. A
    // lost device whose probe fails otherwise stays lost, for the reason it was found lost.
    if (!MarkLostIf(rc, fn, out)) {
      if (lost_) {
        out.lost = true;
        out.lostStatus = lostStatus_;
      } else {
        FailAll(rc, fn, out);
      }
    }
    handle_ = nullptr;
    return false;
  }
  handle_ = handle;
  return true;
}

void DeviceReader::FailAll(nvmlReturn_t rc, const char* fn, DeviceSample& out) {
  out.memoryInfoVersion = 0;
  for (Reading<uint64_t>* r : {&out.memoryTotal, &out.memoryUsed, &out.memoryFree, &out.memoryReserved}) r->Fail(rc, fn);
  for (Reading<uint32_t>* r : {&out.gpuUtilPercent, &out.memoryUtilPercent, &out.temperatureCelsius,
                               &out.powerUsageMilliwatts, &out.powerLimitMilliwatts, &out.smClockMhz,
                               &out.memoryClockMhz}) {
    r->Fail(rc, fn);
  }
  for (Reading<int>* r : {&out.processListStatus, &out.graphicsListStatus, &out.mpsListStatus,
                          &out.processUtilizationStatus}) {
    r->Fail(rc, fn);
  }
  out.utilizationSamplesRejected = 0;
  out.processes.clear();
  out.processLayout = ProcessRecordLayout::kNone;
  MigReader::Fail(rc, fn, out.mig);
}

bool DeviceReader::ReadIdentity(DeviceSample& out) {
  ++identityVersion_;
  nvmlReturn_t rc =
      ReadString(nvml_.nvmlDeviceGetUUID, "nvmlDeviceGetUUID", handle_, NVML_DEVICE_UUID_V2_BUFFER_SIZE, identity_.uuid);
  if (MarkLostIf(rc, "nvmlDeviceGetUUID", out)) return false;
  rc = ReadString(nvml_.nvmlDeviceGetName, "nvmlDeviceGetName", handle_, NVML_DEVICE_NAME_V2_BUFFER_SIZE, identity_.name);
  if (MarkLostIf(rc, "nvmlDeviceGetName", out)) return false;
  if (nvml_.nvmlDeviceGetPciInfo_v3 == nullptr) {
    identity_.pciBusId.Fail(NVML_FUNCTION_NOT_FOUND, "nvmlDeviceGetPciInfo_v3");
    identity_.pciDeviceId.Fail(NVML_FUNCTION_NOT_FOUND, "nvmlDeviceGetPciInfo_v3");
    return true;
  }
  nvmlPciInfo_t pci;
  std::memset(&pci, 0, sizeof pci);
  rc = nvml_.nvmlDeviceGetPciInfo_v3(handle_, &pci);
  if (MarkLostIf(rc, "nvmlDeviceGetPciInfo_v3", out)) return false;
  if (rc == NVML_SUCCESS) {
    pci.busId[sizeof pci.busId - 1] = '\0';
    identity_.pciBusId.Set(pci.busId, "nvmlDeviceGetPciInfo_v3");
    identity_.pciDeviceId.Set(pci.pciDeviceId, "nvmlDeviceGetPciInfo_v3");
  } else {
    identity_.pciBusId.Fail(rc, "nvmlDeviceGetPciInfo_v3");
    identity_.pciDeviceId.Fail(rc, "nvmlDeviceGetPciInfo_v3");
  }
  return true;
}

VG_PASS_CODE bool DeviceReader::ReadMemory(DeviceSample& out) {
  nvmlReturn_t rc = NVML_FUNCTION_NOT_FOUND;
  nvmlReturn_t v2Status = NVML_FUNCTION_NOT_FOUND;
  if (memoryV2Usable_ && nvml_.nvmlDeviceGetMemoryInfo_v2 != nullptr) {
    nvmlMemory_v2_t memory;
    std::memset(&memory, 0, sizeof memory);
    memory.version = nvmlMemory_v2;
    rc = nvml_.nvmlDeviceGetMemoryInfo_v2(handle_, &memory);
    if (rc == NVML_SUCCESS) {
      constexpr const char* fn = "nvmlDeviceGetMemoryInfo_v2";
      out.memoryInfoVersion = 2;
      out.memoryTotal.Set(memory.total, fn);
      out.memoryUsed.Set(memory.used, fn);
      out.memoryFree.Set(memory.free, fn);
      out.memoryReserved.Set(memory.reserved, fn);
      return true;
    }
    if (MarkLostIf(rc, "nvmlDeviceGetMemoryInfo_v2", out)) return false;
    v2Status = rc;
    // Older drivers: the symbol exists but the struct version or the call is not supported. v1 it is,
    // for good on this device.
    if (IsVersionProblem(rc) || rc == NVML_NOT_SUPPORTED) memoryV2Usable_ = false;
  }
  nvmlMemory_t memory;
  std::memset(&memory, 0, sizeof memory);
  constexpr const char* fn = "nvmlDeviceGetMemoryInfo";
  rc = nvml_.nvmlDeviceGetMemoryInfo(handle_, &memory);
  if (MarkLostIf(rc, fn, out)) return false;
  // v1 cannot tell the reservation apart; the reason is why v2 was not used.
  out.memoryReserved.Fail(v2Status, "nvmlDeviceGetMemoryInfo_v2");
  if (rc != NVML_SUCCESS) {
    out.memoryInfoVersion = 0;
    out.memoryTotal.Fail(rc, fn);
    out.memoryUsed.Fail(rc, fn);
    out.memoryFree.Fail(rc, fn);
    return true;
  }
  out.memoryInfoVersion = 1;
  out.memoryTotal.Set(memory.total, fn);
  out.memoryUsed.Set(memory.used, fn);  // includes the driver's reservation on this version
  out.memoryFree.Set(memory.free, fn);
  return true;
}

VG_PASS_CODE void DeviceReader::ReadScalars(DeviceSample& out) {
  // Each reading is independent: one that fails leaves the others. Lost stops the device.
#define VG_READ_U32(reading, fnMember, ...)                                \
  if (!lost_) {                                                            \
    if (nvml_.fnMember == nullptr) {                                       \
      out.reading.Fail(NVML_FUNCTION_NOT_FOUND, #fnMember);                \
    } else {                                                               \
      unsigned value = 0;                                                  \
      const nvmlReturn_t rc = nvml_.fnMember(handle_, __VA_ARGS__);        \
      if (!MarkLostIf(rc, #fnMember, out)) {                               \
        if (rc == NVML_SUCCESS) {                                          \
          out.reading.Set(value, #fnMember);                               \
        } else {                                                           \
          out.reading.Fail(rc, #fnMember);                                 \
        }                                                                  \
      }                                                                    \
    }                                                                      \
  }
  VG_READ_U32(temperatureCelsius, nvmlDeviceGetTemperature, NVML_TEMPERATURE_GPU, &value)
  VG_READ_U32(powerUsageMilliwatts, nvmlDeviceGetPowerUsage, &value)
  VG_READ_U32(powerLimitMilliwatts, nvmlDeviceGetEnforcedPowerLimit, &value)
  VG_READ_U32(smClockMhz, nvmlDeviceGetClockInfo, NVML_CLOCK_SM, &value)
  VG_READ_U32(memoryClockMhz, nvmlDeviceGetClockInfo, NVML_CLOCK_MEM, &value)
#undef VG_READ_U32
  if (lost_) return;
  constexpr const char* fn = "nvmlDeviceGetUtilizationRates";
  if (nvml_.nvmlDeviceGetUtilizationRates == nullptr) {
    out.gpuUtilPercent.Fail(NVML_FUNCTION_NOT_FOUND, fn);
    out.memoryUtilPercent.Fail(NVML_FUNCTION_NOT_FOUND, fn);
    return;
  }
  nvmlUtilization_t utilization{0, 0};
  const nvmlReturn_t rc = nvml_.nvmlDeviceGetUtilizationRates(handle_, &utilization);
  if (MarkLostIf(rc, fn, out)) return;
  if (rc == NVML_SUCCESS) {
    out.gpuUtilPercent.Set(utilization.gpu, fn);
    out.memoryUtilPercent.Set(utilization.memory, fn);
  } else {
    out.gpuUtilPercent.Fail(rc, fn);
    out.memoryUtilPercent.Fail(rc, fn);
  }
}

VG_PASS_CODE void DeviceReader::MergeProcess(uint8_t type, uint32_t pid, unsigned long long used, uint32_t gpuInstance,
                                uint32_t computeInstance, DeviceSample& out) {
  std::vector<ProcessSample>& processes = out.processes;
  std::vector<ProcessSample>::iterator it;
  if (processes.empty() || processes.back().pid < pid) {
    // Lists come sorted by pid more often than not: appending is the common case.
    processes.emplace_back();
    it = processes.end() - 1;
    it->pid = pid;
  } else {
    it = std::lower_bound(processes.begin(), processes.end(), pid,
                          [](const ProcessSample& p, uint32_t value) { return p.pid < value; });
    if (it->pid != pid) {
      ProcessSample sample;
      sample.pid = pid;
      it = processes.insert(it, sample);
    }
  }
  it->types |= type;
  if (used != NVML_VALUE_NOT_AVAILABLE) {
    // The same process in two lists reports the same allocation: take the larger, never the sum.
    it->usedBytes = it->usedKnown ? std::max<uint64_t>(it->usedBytes, used) : used;
    it->usedKnown = true;
  }
  if (gpuInstance != kNotInMig) it->gpuInstanceId = gpuInstance;
  if (computeInstance != kNotInMig) it->computeInstanceId = computeInstance;
}

VG_PASS_CODE bool DeviceReader::ReadDetailList(ProcessList& list, unsigned mode, DeviceSample& out, nvmlReturn_t& status, bool& lost) {
  constexpr const char* fn = "nvmlDeviceGetRunningProcessDetailList";
  nvmlProcessDetailList_v1_t request;
  nvmlReturn_t rc = NVML_INSUFFICIENT_SIZE;
  if (detailBuffer_.empty()) detailBuffer_.resize(32);
  for (int attempt = 0; attempt < 5 && rc == NVML_INSUFFICIENT_SIZE; ++attempt) {
    std::memset(&request, 0, sizeof request);
    request.version = nvmlProcessDetailList_v1;
    request.mode = mode;
    request.numProcArrayEntries = static_cast<unsigned>(detailBuffer_.size());
    request.procArray = detailBuffer_.data();
    rc = nvml_.nvmlDeviceGetRunningProcessDetailList(handle_, &request);
    // The list can grow between calls: make room to spare and ask again.
    if (rc == NVML_INSUFFICIENT_SIZE) detailBuffer_.resize(GrownCapacity(detailBuffer_.size(), request.numProcArrayEntries));
  }
  if (IsVersionProblem(rc)) {
    detailListUsable_ = false;  // fall back to the *RunningProcesses chains for good
    return false;
  }
  status = rc;
  if (MarkLostIf(rc, fn, out)) {
    lost = true;
    return true;
  }
  if (rc != NVML_SUCCESS) return true;
  if (list.type == kProcessCompute) out.processLayout = ProcessRecordLayout::kDetailList;
  const unsigned count = std::min<unsigned>(request.numProcArrayEntries, static_cast<unsigned>(detailBuffer_.size()));
  for (unsigned i = 0; i < count; ++i) {
    const nvmlProcessDetail_v1_t& d = detailBuffer_[i];
    MergeProcess(list.type, d.pid, d.usedGpuMemory, d.gpuInstanceId, d.computeInstanceId, out);
  }
  return true;
}

VG_PASS_CODE bool DeviceReader::ReadProcessList(ProcessList& list, DeviceSample& out, nvmlReturn_t& status,
                                   const char*& function) {
  if (detailListUsable_ && nvml_.nvmlDeviceGetRunningProcessDetailList != nullptr) {
    const unsigned mode = list.type == kProcessCompute    ? NVML_PROCESS_MODE_COMPUTE
                          : list.type == kProcessGraphics ? NVML_PROCESS_MODE_GRAPHICS
                                                          : NVML_PROCESS_MODE_MPS;
    bool lost = false;
    function = "nvmlDeviceGetRunningProcessDetailList";
    if (ReadDetailList(list, mode, out, status, lost)) return !lost;
  }
  status = NVML_FUNCTION_NOT_FOUND;
  function = "nvmlDeviceGetComputeRunningProcesses";
  while (list.current < list.entryPoints.size()) {
    const ProcessListEntryPoint& entry = list.entryPoints[list.current];
    function = entry.name;
    unsigned count = static_cast<unsigned>(recordBuffer_.size() / entry.stride);
    nvmlReturn_t rc = entry.function(handle_, &count, recordBuffer_.data());
    // The process list can grow between the two calls: retry a few times with room to spare.
    for (int attempt = 0; rc == NVML_INSUFFICIENT_SIZE && attempt < 4; ++attempt) {
      const size_t entries = recordBuffer_.size() / sizeof(vgNvmlProcessInfo_535_t);
      recordBuffer_.resize(GrownCapacity(entries, count) * sizeof(vgNvmlProcessInfo_535_t));
      count = static_cast<unsigned>(recordBuffer_.size() / entry.stride);
      rc = entry.function(handle_, &count, recordBuffer_.data());
    }
    if (IsVersionProblem(rc)) {
      ++list.current;  // this driver lacks that version: use the next older entry point from now on
      continue;
    }
    status = rc;
    if (MarkLostIf(rc, entry.name, out)) return false;
    if (rc != NVML_SUCCESS) return true;
    if (list.type == kProcessCompute) out.processLayout = entry.layout;
    for (unsigned i = 0; i < count; ++i) {
      const unsigned char* record = recordBuffer_.data() + static_cast<size_t>(i) * entry.stride;
      uint32_t pid = 0;
      unsigned long long used = 0;
      std::memcpy(&pid, record + offsetof(nvmlProcessInfo_v2_t, pid), sizeof pid);
      std::memcpy(&used, record + offsetof(nvmlProcessInfo_v2_t, usedGpuMemory), sizeof used);
      uint32_t gpuInstance = kNotInMig, computeInstance = kNotInMig;
      if (entry.stride >= sizeof(nvmlProcessInfo_v2_t)) {
        std::memcpy(&gpuInstance, record + offsetof(nvmlProcessInfo_v2_t, gpuInstanceId), sizeof gpuInstance);
        std::memcpy(&computeInstance, record + offsetof(nvmlProcessInfo_v2_t, computeInstanceId),
                    sizeof computeInstance);
      }
      MergeProcess(list.type, pid, used, gpuInstance, computeInstance, out);
    }
    return true;
  }
  return true;
}

VG_PASS_CODE bool DeviceReader::ReadProcesses(DeviceSample& out) {
  out.processes.clear();
  out.processLayout = ProcessRecordLayout::kNone;
  for (int slot = 0; slot < 3; ++slot) {
    nvmlReturn_t status = NVML_SUCCESS;
    const char* function = "";
    if (!ReadProcessList(lists_[slot], out, status, function)) return false;
    Reading<int>& listStatus = slot == 0 ? out.processListStatus : slot == 1 ? out.graphicsListStatus : out.mpsListStatus;
    if (status == NVML_SUCCESS) {
      listStatus.Set(0, function);
    } else {
      listStatus.Fail(status, function);
    }
  }
  return true;
}

VG_PASS_CODE void DeviceReader::Read(DeviceSample& out, uint64_t nowMicros) {
  out.index = index_;
  out.sampledAtMicros = nowMicros;
  out.lost = false;
  out.lostStatus = Reading<int>();
  out.processes.clear();
  const bool wasLost = lost_;
  if (AcquireHandle(out)) {
    lost_ = false;
    if (ReadMemory(out)) {
      // A device read for the first time, or back from lost, has its identity read (anew).
      if (!identityRead_ || wasLost) {
        identityRead_ = ReadIdentity(out);
        if (mig_) mig_->Forget();  // a GPU back from lost (perhaps reset) may have changed its MIG set-up
      }
      if (!lost_) ReadScalars(out);
      if (!lost_ && ReadProcesses(out)) ReadProcessUtilization(out, nowMicros);
      if (!lost_) {
        if (!mig_) mig_ = std::make_unique<MigReader>(nvml_, traits_);
        if (!mig_->Read(handle_, out)) MarkLostIf(out.lostStatus.status, out.lostStatus.function, out);
      }
    }
  }
  // Everything but identity is unknown while lost; the reason is the call that found it.
  if (lost_) FailAll(out.lostStatus.status, out.lostStatus.function, out);
  // Lost before its identity could be read: the identity readings say so, not "not supported".
  if (lost_ && !identityRead_ && identity_.uuid.status != out.lostStatus.status) {
    ++identityVersion_;
    for (Reading<std::string>* r : {&identity_.uuid, &identity_.name, &identity_.pciBusId}) {
      r->Fail(out.lostStatus.status, out.lostStatus.function);
    }
    identity_.pciDeviceId.Fail(out.lostStatus.status, out.lostStatus.function);
  }
  if (out.identityVersion != identityVersion_) {
    out.identity = identity_;
    out.identityVersion = identityVersion_;
  }
}

}  // namespace vramguard

// Plain data the sampler publishes: one reading of every device. No NVML calls, no JS here.
//
// Every reading carries the NVML return it came with: a field whose status is not NVML_SUCCESS is
// absent (null in JavaScript) and the status plus the function say why.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nvml_api.h"

namespace vramguard {

template <typename T>
struct Reading {
  T value{};
  nvmlReturn_t status = NVML_NOT_SUPPORTED;
  const char* function = "";  // NVML function that produced (or failed to produce) the value

  bool ok() const { return status == NVML_SUCCESS; }
  void Set(T v, const char* fn) {
    value = v;
    status = NVML_SUCCESS;
    function = fn;
  }
  void Fail(nvmlReturn_t code, const char* fn) {
    value = T{};
    status = code;
    function = fn;
  }
};

enum ProcessType : uint8_t {
  kProcessCompute = 1,
  kProcessGraphics = 2,
  kProcessMps = 4,
};

struct ProcessSample {
  uint32_t pid = 0;
  uint8_t types = 0;           // ProcessType bits: a pid can be in several lists
  bool usedKnown = false;      // false when NVML reported NVML_VALUE_NOT_AVAILABLE
  uint64_t usedBytes = 0;
  uint32_t gpuInstanceId = 0xFFFFFFFFu;      // 0xFFFFFFFF: not in MIG mode / not reported (v1)
  uint32_t computeInstanceId = 0xFFFFFFFFu;
  bool utilizationKnown = false;             // process utilization readable for this device
  uint32_t smUtilPercent = 0;
  uint32_t memUtilPercent = 0;
  uint32_t encUtilPercent = 0;
  uint32_t decUtilPercent = 0;
};

// Which record layout the process lists were read with (the driver-era traps live here).
enum class ProcessRecordLayout : uint8_t {
  kNone = 0,       // no process list function worked
  kV1 = 1,         // 16-byte records, entry point without suffix
  kV2 = 2,         // 24-byte records from _v2
  kV3 = 3,         // 24-byte records from _v3
  kV3Driver535 = 4, // 32-byte records from _v3 on drivers 535.43-535.86
  kDetailList = 5   // nvmlDeviceGetRunningProcessDetailList (535.104.05 on): versioned, 32-byte records
};

struct DeviceIdentity {
  Reading<std::string> uuid;
  Reading<std::string> name;
  Reading<std::string> pciBusId;
  Reading<uint32_t> pciDeviceId;
};

// One MIG device (a compute instance) of a MIG-enabled GPU, read through its MIG device handle.
struct MigInstanceSample {
  uint32_t index = 0;                 // its index under the parent (nvmlDeviceGetMigDeviceHandleByIndex)
  Reading<std::string> uuid;          // "MIG-..." (drivers 470 on; "MIG-GPU-.../gi/ci" on 450)
  Reading<uint32_t> gpuInstanceId;
  Reading<uint32_t> computeInstanceId;
  uint8_t memoryInfoVersion = 0;      // as DeviceSample's
  Reading<uint64_t> memoryTotal;
  Reading<uint64_t> memoryUsed;
  Reading<uint64_t> memoryFree;
  Reading<uint64_t> memoryReserved;
  ProcessRecordLayout processLayout = ProcessRecordLayout::kNone;
  Reading<int> processListStatus;     // the compute list
  std::vector<ProcessSample> processes;  // sorted by pid
};

struct MigSample {
  Reading<uint32_t> currentMode;      // NVML_DEVICE_MIG_ENABLE / _DISABLE; failed: why the mode is unknown
  uint32_t pendingMode = 0;           // meaningful when currentMode is
  Reading<int> instancesStatus;       // SUCCESS: instances is the list (empty while MIG is disabled)
  std::vector<MigInstanceSample> instances;
};

// Laid out for the pass that writes it: what every pass writes comes first and together (fewer cache
// lines per device), the identity strings, copied only when they change, last.
struct DeviceSample {
  uint32_t index = 0;
  uint32_t identityVersion = 0;       // which identity read `identity` holds (copied only when it changes)
  bool lost = false;                  // a call returned GPU_IS_LOST (or the handle could not be had)
  uint8_t memoryInfoVersion = 0;      // 2: nvmlDeviceGetMemoryInfo_v2 (reserved apart), 1: v1 (used includes reserved)
  ProcessRecordLayout processLayout = ProcessRecordLayout::kNone;
  Reading<int> lostStatus;            // the call that found it lost
  uint64_t sampledAtMicros = 0;  // wall clock (epoch) of the pass that read this device
  uint64_t readNanos = 0;        // how long reading it took

  Reading<uint64_t> memoryTotal;
  Reading<uint64_t> memoryUsed;
  Reading<uint64_t> memoryFree;
  Reading<uint64_t> memoryReserved;

  Reading<uint32_t> gpuUtilPercent;
  Reading<uint32_t> memoryUtilPercent;
  Reading<uint32_t> temperatureCelsius;
  Reading<uint32_t> powerUsageMilliwatts;
  Reading<uint32_t> powerLimitMilliwatts;
  Reading<uint32_t> smClockMhz;
  Reading<uint32_t> memoryClockMhz;

  Reading<int> processListStatus;         // status of the compute list (the one that matters for VRAM)
  Reading<int> graphicsListStatus;
  Reading<int> mpsListStatus;
  Reading<int> processUtilizationStatus;  // SUCCESS or NOT_FOUND (no new samples) are both fine
  // Utilization samples the driver returned but the reader refused (pid in none of this pass's lists,
  // a value above 100%, a timestamp not newer than the last accepted one or in the future): this pass,
  // and since the reader started.
  uint32_t utilizationSamplesRejected = 0;
  uint64_t utilizationSamplesRejectedTotal = 0;
  std::vector<ProcessSample> processes;   // sorted by pid
  MigSample mig;

  DeviceIdentity identity;
};

// The MIG device of device with uuid (compared case-insensitively, as NVML's are hex), or nullptr.
const MigInstanceSample* FindMigInstance(const DeviceSample& device, const std::string& uuid);

struct Snapshot {
  uint64_t sequence = 0;          // 0: nothing published yet
  uint64_t timestampMicros = 0;   // wall clock at the start of the pass
  uint64_t passNanos = 0;         // duration of the whole pass
  std::vector<DeviceSample> devices;
};

}  // namespace vramguard

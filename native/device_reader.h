// Reads devices through the loader's function table into plain snapshot structs.
//
// All the NVML driver-era knowledge lives here: memory _v2 with its version word falling back to v1,
// process lists _v3 -> _v2 -> v1 with the right record stride (including the 32-byte _v3 records of
// drivers 535.43-535.86), growing buffers on INSUFFICIENT_SIZE, merging the compute, graphics and MPS
// lists by pid, and per-device lastSeen bookkeeping for process utilization. What the driver itself is
// (versions, and the record layout its version and symbols imply) is read once: system_info.h.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "nvml_loader.h"
#include "snapshot.h"
#include "system_info.h"

namespace vramguard {

// Calls that say the GPU is gone (fallen off the bus, or reset away).
inline bool IsLostCode(nvmlReturn_t rc) { return rc == NVML_GPU_IS_LOST || rc == NVML_GPU_NOT_FOUND; }

// Entry points that say "not this version" rather than "not on this device".
inline bool IsVersionProblem(nvmlReturn_t rc) {
  return rc == NVML_FUNCTION_NOT_FOUND || rc == NVML_ARGUMENT_VERSION_MISMATCH;
}

// Room for `needed` entries after an INSUFFICIENT_SIZE answer: some to spare (the list can grow between
// calls), never growing on a count that already fits (an answer without a larger count), and capped.
inline size_t GrownCapacity(size_t current, size_t needed) {
  constexpr size_t kMaxEntries = 16384;
  if (needed <= current) return current;
  const size_t grown = (needed + 8) * 2;
  return grown < kMaxEntries ? grown : kMaxEntries;
}

// Marks the code every sampling pass runs: the compiler keeps it together (.text.hot), so that a pass,
// which starts cold after each interval's sleep, touches fewer code pages and cache lines.
#if defined(__GNUC__)
#define VG_PASS_CODE __attribute__((hot))
#else
#define VG_PASS_CODE
#endif

// The pass's clocks, read straight from clock_gettime (a vDSO call, as a C program makes it): through
// std::chrono they cost two more calls, into code pages the rest of the pass does not touch.
inline uint64_t NowMicrosRealtime() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000u + static_cast<uint64_t>(now.tv_nsec) / 1000u;
}
inline uint64_t NowNanosMonotonic() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000u + static_cast<uint64_t>(now.tv_nsec);
}

class MigReader;

class DeviceReader {
 public:
  DeviceReader(const NvmlFunctionTable& nvml, uint32_t index, DriverTraits traits);
  ~DeviceReader();

  // Reads the device into out (reusing out's storage). Never throws; failures land in the readings.
  // nowMicros: wall clock of the pass (one clock read per pass, not per device).
  void Read(DeviceSample& out, uint64_t nowMicros);

  uint32_t index() const { return index_; }

  // For one MIG device handle (mig_reader.cc): its memory and processes, read the way the parent's are
  // (memory v2 then v1, the process list chains and strides), into out. False when a call found the GPU
  // lost (out.lostStatus names it). A reader used this way keeps its own version fall-backs.
  bool ReadMemoryAndProcesses(nvmlDevice_t handle, DeviceSample& out);

 private:
  struct ProcessListEntryPoint {
    vg_fn_nvmlDeviceGetComputeRunningProcesses function;  // all list entry points share this signature
    const char* name;
    size_t stride;
    ProcessRecordLayout layout;
  };
  struct ProcessList {
    uint8_t type = 0;
    std::vector<ProcessListEntryPoint> entryPoints;  // newest first, only the symbols that exist
    size_t current = 0;                              // demoted on FUNCTION_NOT_FOUND / version mismatch
  };
  struct UtilizationEntry {
    uint32_t pid;
    uint32_t sm, mem, enc, dec;
    unsigned long long timeStamp;
    uint64_t receivedMicros;  // wall clock of the pass that accepted it (held this long, then idle)
  };

  bool AcquireHandle(DeviceSample& out);
  // Marks every reading absent with rc (device lost or unreadable).
  static void FailAll(nvmlReturn_t rc, const char* fn, DeviceSample& out);
  // Reads uuid, name and PCI identity once (and again after the device comes back). False when lost.
  bool ReadIdentity(DeviceSample& out);
  bool ReadMemory(DeviceSample& out);
  void ReadScalars(DeviceSample& out);
  bool ReadProcesses(DeviceSample& out);
  bool ReadProcessList(ProcessList& list, DeviceSample& out, nvmlReturn_t& status, const char*& function);
  // nvmlDeviceGetRunningProcessDetailList for one list; false when it is not usable on this driver.
  bool ReadDetailList(ProcessList& list, unsigned mode, DeviceSample& out, nvmlReturn_t& status, bool& lost);
  void MergeProcess(uint8_t type, uint32_t pid, unsigned long long used, uint32_t gpuInstance,
                    uint32_t computeInstance, DeviceSample& out);
  bool ReadProcessUtilization(DeviceSample& out, uint64_t nowMicros);
  // Fetches the samples newer than lastSeen into samples_ (newest entry point first). Returns the status.
  nvmlReturn_t FetchUtilizationSamples(const char*& function);
  // Keeps the valid samples of samples_, counting the rest; returns how many were refused.
  uint32_t AcceptUtilizationSamples(const DeviceSample& out, uint64_t nowMicros);
  // Marks the device lost when rc says so; returns true when it did. The check is inline: it follows
  // every call of a pass, and nearly always answers no.
  bool MarkLostIf(nvmlReturn_t rc, const char* function, DeviceSample& out) {
    return IsLostCode(rc) && MarkLost(rc, function, out);
  }
  bool MarkLost(nvmlReturn_t rc, const char* function, DeviceSample& out);  // returns true

  // What every pass reads or writes comes first, so that a pass touches few of the object's cache lines;
  // what a pass does not touch (the traits' evidence, the identity strings) comes last.
  const NvmlFunctionTable& nvml_;
  nvmlDevice_t handle_ = nullptr;
  const uint32_t index_;
  bool lost_ = false;
  bool identityRead_ = false;
  bool memoryV2Usable_ = true;
  bool detailListUsable_ = true;       // demoted on a version problem
  bool utilizationInfoUsable_ = true;  // likewise
  uint32_t identityVersion_ = 0;  // bumped on each identity read: samples copy the strings only then
  unsigned long long lastSeenTimestamp_ = 0;
  uint64_t rejectedTotal_ = 0;
  std::vector<nvmlProcessDetail_v1_t> detailBuffer_;
  std::vector<nvmlProcessUtilizationInfo_v1_t> utilizationInfoBuffer_;
  std::vector<UtilizationEntry> samples_;  // this pass's answer, before validation
  std::vector<UtilizationEntry> lastUtilization_;  // sorted by pid
  std::unique_ptr<MigReader> mig_;  // the MIG mode and, while enabled, the MIG devices
  ProcessList lists_[3];
  std::vector<unsigned char> recordBuffer_;
  std::vector<nvmlProcessUtilizationSample_t> utilizationBuffer_;
  const DriverTraits traits_;
  Reading<int> lostStatus_;  // the call that found the device lost (kept while it stays lost)
  DeviceIdentity identity_;
};

}  // namespace vramguard

// The driver-level facts read once at start (ReadSystemInfo), and what they say about its ABI.
#pragma once

#include <cstdint>
#include <string>

#include "nvml_loader.h"
#include "snapshot.h"

namespace vramguard {

// What the driver's version and exported symbols tell us about its ABI.
struct DriverTraits {
  bool v3ProcessRecordsAre32Bytes = false;  // drivers 535.43 to 535.86
  std::string evidence;                     // what decided it, one line (system info shows it)

  // Drivers 535.43-535.86 wrote 32-byte records from the _v3 lists. They are the drivers that export
  // nvmlDeviceGetConfComputeMemSizeInfo and not nvmlDeviceGetRunningProcessDetailList; the symbols can
  // rule 32 bytes out for certain, the version string says which release it is. Both are used: the
  // symbols overrule a version they contradict, and decide alone when the version is unreadable.
  static DriverTraits Decide(const std::string& driverVersion, const NvmlFunctionTable& nvml);
  static DriverTraits FromVersion(const std::string& driverVersion);  // version alone (no symbols known)
};

struct SystemInfo {
  Reading<std::string> driverVersion;
  Reading<std::string> nvmlVersion;
  Reading<int> cudaDriverVersion;  // e.g. 12040 for CUDA 12.4
  Reading<uint32_t> deviceCount;
  DriverTraits traits;             // decided from driverVersion and the exported symbols
};

SystemInfo ReadSystemInfo(const NvmlFunctionTable& nvml);

}  // namespace vramguard

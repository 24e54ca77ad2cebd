// What the driver is, read once at start: its version, NVML's, CUDA's (with the v1 fall-back), the
// device count, and the ABI facts that follow from the version and the exported symbols (DriverTraits).
#include "system_info.h"

#include <cstdio>

namespace vramguard {

SystemInfo ReadSystemInfo(const NvmlFunctionTable& nvml) {
  SystemInfo info;
  char buffer[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = {0};
  nvmlReturn_t rc = nvml.nvmlSystemGetDriverVersion(buffer, sizeof buffer);
  if (rc == NVML_SUCCESS) {
    buffer[sizeof buffer - 1] = '\0';
    info.driverVersion.Set(buffer, "nvmlSystemGetDriverVersion");
  } else {
    info.driverVersion.Fail(rc, "nvmlSystemGetDriverVersion");
  }
  if (nvml.nvmlSystemGetNVMLVersion != nullptr) {
    char nvmlBuffer[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE] = {0};
    rc = nvml.nvmlSystemGetNVMLVersion(nvmlBuffer, sizeof nvmlBuffer);
    if (rc == NVML_SUCCESS) {
      nvmlBuffer[sizeof nvmlBuffer - 1] = '\0';
      info.nvmlVersion.Set(nvmlBuffer, "nvmlSystemGetNVMLVersion");
    } else {
      info.nvmlVersion.Fail(rc, "nvmlSystemGetNVMLVersion");
    }
  } else {
    info.nvmlVersion.Fail(NVML_FUNCTION_NOT_FOUND, "nvmlSystemGetNVMLVersion");
  }
  int cuda = 0;
  rc = NVML_FUNCTION_NOT_FOUND;
  const char* cudaFunction = "nvmlSystemGetCudaDriverVersion_v2";
  if (nvml.nvmlSystemGetCudaDriverVersion_v2 != nullptr) rc = nvml.nvmlSystemGetCudaDriverVersion_v2(&cuda);
  // _v2 asks libcuda and fails (LIBRARY_NOT_FOUND) where none is mounted, e.g. a container with
  // NVIDIA_DRIVER_CAPABILITIES=utility; the v1 call answers from the driver. Any failure falls back.
  if (rc != NVML_SUCCESS && nvml.nvmlSystemGetCudaDriverVersion != nullptr) {
    cudaFunction = "nvmlSystemGetCudaDriverVersion";
    rc = nvml.nvmlSystemGetCudaDriverVersion(&cuda);
  }
  if (rc == NVML_SUCCESS) {
    info.cudaDriverVersion.Set(cuda, cudaFunction);
  } else {
    info.cudaDriverVersion.Fail(rc, cudaFunction);
  }
  unsigned count = 0;
  rc = nvml.nvmlDeviceGetCount_v2(&count);
  if (rc == NVML_SUCCESS) {
    info.deviceCount.Set(count, "nvmlDeviceGetCount_v2");
  } else {
    info.deviceCount.Fail(rc, "nvmlDeviceGetCount_v2");
  }
  info.traits = DriverTraits::Decide(info.driverVersion.ok() ? info.driverVersion.value : std::string(), nvml);
  return info;
}

DriverTraits DriverTraits::Decide(const std::string& driverVersion, const NvmlFunctionTable& nvml) {
  DriverTraits traits;
  const bool hasV3 = nvml.nvmlDeviceGetComputeRunningProcesses_v3 != nullptr;
  const bool symbolsAllow32 = hasV3 && nvml.nvmlDeviceGetConfComputeMemSizeInfo != nullptr &&
                              nvml.nvmlDeviceGetRunningProcessDetailList == nullptr;
  unsigned major = 0, minor = 0;
  const bool versionRead = std::sscanf(driverVersion.c_str(), "%u.%u", &major, &minor) == 2;
  const bool versionSays32 = versionRead && major == 535 && minor >= 43 && minor <= 86;
  const std::string version = versionRead ? "driver version " + driverVersion : "an unreadable driver version";
  if (!hasV3) {
    traits.evidence = "exported symbols: no _v3 process lists";
  } else if (!versionRead) {
    traits.v3ProcessRecordsAre32Bytes = symbolsAllow32;
    traits.evidence = symbolsAllow32
                          ? "exported symbols (nvmlDeviceGetConfComputeMemSizeInfo without "
                            "nvmlDeviceGetRunningProcessDetailList: 535.43-535.86), driver version unreadable"
                          : "exported symbols (not the 535.43-535.86 set), driver version unreadable";
  } else if (versionSays32 && !symbolsAllow32) {
    traits.evidence = "exported symbols (not the 535.43-535.86 set), overruling " + version;
  } else {
    traits.v3ProcessRecordsAre32Bytes = versionSays32;
    traits.evidence = version + (symbolsAllow32 == versionSays32 ? " and exported symbols agree"
                                                                 : ", exported symbols allow either");
  }
  return traits;
}

DriverTraits DriverTraits::FromVersion(const std::string& driverVersion) {
  DriverTraits traits;
  unsigned major = 0, minor = 0;
  if (std::sscanf(driverVersion.c_str(), "%u.%u", &major, &minor) == 2) {
    traits.v3ProcessRecordsAre32Bytes = major == 535 && minor >= 43 && minor <= 86;
  }
  traits.evidence = "driver version " + driverVersion;
  return traits;
}

}  // namespace vramguard

// Entry points vramguard does not call but other NVML clients do (NVIDIA's Python binding, nvitop,
// gpustat, nvtop): identity and handle look-ups, the v1 spellings, the fields their main screens show,
// and the functions they require to exist. A field the scenario leaves unset answers NOT_SUPPORTED, as
// real NVML does for a feature the GPU lacks; functions for features the mock does not model at all
// (ECC counts, PCIe link state, temperature thresholds, field values) answer NOT_SUPPORTED likewise.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <strings.h>

#include "mock_state.h"

using namespace vgmock;

VG_MOCK_GROUP_ANCHOR(client)

namespace {

nvmlReturn_t notSupported(Fn fn, nvmlDevice_t device, const void *out) {
  return deviceCall(fn, device, [&](Session &, Device &) -> nvmlReturn_t {
    return out ? NVML_ERROR(NOT_SUPPORTED) : NVML_ERROR(INVALID_ARGUMENT);
  });
}

nvmlReturn_t copyInt(const std::optional<std::uint32_t> &value, int *out) {
  if (!out) return NVML_ERROR(INVALID_ARGUMENT);
  if (!value) return NVML_ERROR(NOT_SUPPORTED);
  *out = static_cast<int>(*value);
  return NVML_SUCCESS;
}

// A handle looked up by a key (uuid, bus id): NOT_FOUND when no device matches, GPU_IS_LOST when it is lost.
template <typename Match>
nvmlReturn_t handleBy(Fn fn, const char *key, nvmlDevice_t *device, Match match) {
  return systemCall(fn, [&](Session &s) -> nvmlReturn_t {
    if (!key || !device) return NVML_ERROR(INVALID_ARGUMENT);
    for (std::size_t i = 0; i < s.scenario.devices.size(); ++i) {
      const Device &d = s.scenario.devices[i];
      if (!match(d)) continue;
      if (d.lost) return NVML_ERROR(GPU_IS_LOST);
      *device = handleFor(i);
      return NVML_SUCCESS;
    }
    return NVML_ERROR(NOT_FOUND);
  });
}

nvmlReturn_t handleByPciBusId(Fn fn, const char *pciBusId, nvmlDevice_t *device) {
  unsigned domain = 0, bus = 0, slot = 0, function = 0;
  const bool parsed = pciBusId && parsePciBusId(pciBusId, &domain, &bus, &slot, &function);
  return handleBy(fn, parsed || !pciBusId ? pciBusId : "", device, [&](const Device &d) {
    unsigned dDomain = 0, dBus = 0, dSlot = 0, dFunction = 0;
    return parsed && d.pciBusId && parsePciBusId(*d.pciBusId, &dDomain, &dBus, &dSlot, &dFunction) &&
           dDomain == domain && dBus == bus && dSlot == slot;
  });
}

// What the process with pid runs, as the kernel reports it (the first word of its command line).
bool processNameFromProc(unsigned int pid, std::string *name) {
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%u/cmdline", pid);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[256] = {0};
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  *name = buf;  // up to the first NUL: argv[0]
  return !name->empty();
}

}  // namespace

// ---- The v1 spellings older clients call ---------------------------------------------------------------

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount) {
  return systemCall(Fn::nvmlDeviceGetCount, [&](Session &s) -> nvmlReturn_t {
    if (!deviceCount) return NVML_ERROR(INVALID_ARGUMENT);
    *deviceCount = static_cast<unsigned int>(s.scenario.devices.size());
    return NVML_SUCCESS;
  });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) {
  return systemCall(Fn::nvmlDeviceGetHandleByIndex, [&](Session &s) -> nvmlReturn_t {
    if (index >= s.scenario.devices.size() || !device) return NVML_ERROR(INVALID_ARGUMENT);
    const Device &d = s.scenario.devices[index];
    if (d.lost && d.handleLost) return NVML_ERROR(GPU_IS_LOST);
    *device = handleFor(index);
    return NVML_SUCCESS;
  });
}

// ---- Handles and identity ------------------------------------------------------------------------------

// A GPU's uuid, or (eras with MIG) a MIG device's, whose handle it then gives while its GPU is in MIG mode.
VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
  const nvmlReturn_t rc =
      handleBy(Fn::nvmlDeviceGetHandleByUUID, uuid, device, [&](const Device &d) { return d.uuid && *d.uuid == uuid; });
  if (rc != NVML_ERROR(NOT_FOUND) || eraTraits(buildEra()).number < 470000) return rc;
  Globals &g = globals();
  std::lock_guard<std::mutex> lock(g.mutex);
  Session *s = g.session.get();
  if (!s) return NVML_ERROR(UNINITIALIZED);
  for (std::size_t i = 0; i < s->scenario.devices.size(); ++i) {
    const Device &d = s->scenario.devices[i];
    for (std::size_t m = 0; m < d.migInstances.size(); ++m) {
      const MigInstance *instance = migInstanceAt(d, m);
      if (!instance || migUuid(i, *instance) != uuid) continue;
      if (d.lost) return NVML_ERROR(GPU_IS_LOST);
      *device = migHandleFor(i, m);
      return NVML_SUCCESS;
    }
  }
  return rc;
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId, nvmlDevice_t *device) {
  return handleByPciBusId(Fn::nvmlDeviceGetHandleByPciBusId_v2, pciBusId, device);
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char *pciBusId, nvmlDevice_t *device) {
  return handleByPciBusId(Fn::nvmlDeviceGetHandleByPciBusId, pciBusId, device);
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
  return deviceCall(Fn::nvmlDeviceGetIndex, device, [&](Session &s, Device &d) -> nvmlReturn_t {
    if (!index) return NVML_ERROR(INVALID_ARGUMENT);
    *index = static_cast<unsigned int>(&d - s.scenario.devices.data());
    return NVML_SUCCESS;
  });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minorNumber) {
  return deviceCall(Fn::nvmlDeviceGetMinorNumber, device, [&](Session &s, Device &d) -> nvmlReturn_t {
    if (!minorNumber) return NVML_ERROR(INVALID_ARGUMENT);
    *minorNumber = d.minorNumber ? *d.minorNumber : static_cast<unsigned int>(&d - s.scenario.devices.data());
    return NVML_SUCCESS;
  });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t device, char *serial, unsigned int length) {
  (void)length;
  return notSupported(Fn::nvmlDeviceGetSerial, device, serial);
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device, unsigned int *arch) {
  return deviceCall(Fn::nvmlDeviceGetArchitecture, device,
                    [&](Session &, Device &d) -> nvmlReturn_t { return copyNumber(d.architecture, arch); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor) {
  return deviceCall(Fn::nvmlDeviceGetCudaComputeCapability, device, [&](Session &, Device &d) -> nvmlReturn_t {
    if (!major || !minor) return NVML_ERROR(INVALID_ARGUMENT);
    if (!d.cudaComputeCapabilityMajor) return NVML_ERROR(NOT_SUPPORTED);
    *major = static_cast<int>(*d.cudaComputeCapabilityMajor);
    *minor = static_cast<int>(d.cudaComputeCapabilityMinor);
    return NVML_SUCCESS;
  });
}

// ---- Readings the clients' main screens show -----------------------------------------------------------

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t device, unsigned int *speed) {
  return deviceCall(Fn::nvmlDeviceGetFanSpeed, device,
                    [&](Session &, Device &d) -> nvmlReturn_t { return copyNumber(d.fanSpeedPercent, speed); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t device, int *pState) {
  return deviceCall(Fn::nvmlDeviceGetPerformanceState, device,
                    [&](Session &, Device &d) -> nvmlReturn_t { return copyInt(d.performanceState, pState); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetPowerState(nvmlDevice_t device, int *pState) {
  return deviceCall(Fn::nvmlDeviceGetPowerState, device,
                    [&](Session &, Device &d) -> nvmlReturn_t { return copyInt(d.performanceState, pState); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device, unsigned int *limit) {
  return deviceCall(Fn::nvmlDeviceGetPowerManagementLimit, device,
                    [&](Session &, Device &d) -> nvmlReturn_t { return copyNumber(d.powerLimitMilliwatts, limit); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetBAR1MemoryInfo(nvmlDevice_t device, nvmlBAR1Memory_t *bar1Memory) {
  return deviceCall(Fn::nvmlDeviceGetBAR1MemoryInfo, device, [&](Session &, Device &d) -> nvmlReturn_t {
    if (!bar1Memory) return NVML_ERROR(INVALID_ARGUMENT);
    if (!d.bar1Total) return NVML_ERROR(NOT_SUPPORTED);
    bar1Memory->bar1Total = *d.bar1Total;
    bar1Memory->bar1Used = d.bar1Used;
    bar1Memory->bar1Free = saturatingSub(*d.bar1Total, d.bar1Used);
    return NVML_SUCCESS;
  });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device, int *mode) {
  return deviceCall(Fn::nvmlDeviceGetComputeMode, device,
                    [&](Session &, Device &d) -> nvmlReturn_t { return copyInt(d.computeMode, mode); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, int *mode) {
  return deviceCall(Fn::nvmlDeviceGetPersistenceMode, device,
                    [&](Session &, Device &d) -> nvmlReturn_t { return copyInt(d.persistenceMode, mode); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetDisplayActive(nvmlDevice_t device, int *isActive) {
  return deviceCall(Fn::nvmlDeviceGetDisplayActive, device,
                    [&](Session &, Device &d) -> nvmlReturn_t { return copyInt(d.displayActive, isActive); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetDisplayMode(nvmlDevice_t device, int *display) {
  return deviceCall(Fn::nvmlDeviceGetDisplayMode, device,
                    [&](Session &, Device &d) -> nvmlReturn_t { return copyInt(d.displayMode, display); });
}

// Encoder and decoder utilization come with the driver's sampling period (microseconds).
#define VG_MOCK_CODEC_UTILIZATION(name, member)                                                              \
  VG_MOCK_EXPORT nvmlReturn_t name(nvmlDevice_t device, unsigned int *utilization, unsigned int *samplingPeriodUs) { \
    return deviceCall(Fn::name, device, [&](Session &, Device &d) -> nvmlReturn_t {                         \
      if (!samplingPeriodUs) return NVML_ERROR(INVALID_ARGUMENT);                                           \
      const nvmlReturn_t rc = copyNumber(d.member, utilization);                                             \
      if (rc == NVML_SUCCESS) *samplingPeriodUs = 167000;                                                    \
      return rc;                                                                                             \
    });                                                                                                      \
  }
VG_MOCK_CODEC_UTILIZATION(nvmlDeviceGetEncoderUtilization, encoderUtilPercent)
VG_MOCK_CODEC_UTILIZATION(nvmlDeviceGetDecoderUtilization, decoderUtilPercent)
#undef VG_MOCK_CODEC_UTILIZATION

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, int clockType, unsigned int *mhz) {
  return deviceCall(Fn::nvmlDeviceGetMaxClockInfo, device, [&](Session &, Device &d) -> nvmlReturn_t {
    if (!mhz) return NVML_ERROR(INVALID_ARGUMENT);
    switch (clockType) {
      case NVML_CLOCK_GRAPHICS: return copyNumber(d.maxGraphicsClockMhz, mhz);
      case NVML_CLOCK_SM: return copyNumber(d.maxSmClockMhz, mhz);
      case NVML_CLOCK_MEM: return copyNumber(d.maxMemoryClockMhz, mhz);
      case NVML_CLOCK_VIDEO: return copyNumber(d.maxVideoClockMhz, mhz);
      default: return NVML_ERROR(INVALID_ARGUMENT);
    }
  });
}

// ---- Present because clients require the symbol; the mock models none of it ---------------------------

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t device, int thresholdType, unsigned int *temp) {
  (void)thresholdType;
  return notSupported(Fn::nvmlDeviceGetTemperatureThreshold, device, temp);
}
VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t device, unsigned int *gen) {
  return notSupported(Fn::nvmlDeviceGetMaxPcieLinkGeneration, device, gen);
}
VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t device, unsigned int *width) {
  return notSupported(Fn::nvmlDeviceGetMaxPcieLinkWidth, device, width);
}
VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t device, unsigned int *gen) {
  return notSupported(Fn::nvmlDeviceGetCurrPcieLinkGeneration, device, gen);
}
VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t device, unsigned int *width) {
  return notSupported(Fn::nvmlDeviceGetCurrPcieLinkWidth, device, width);
}
VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t device, int counter, unsigned int *value) {
  (void)counter;
  return notSupported(Fn::nvmlDeviceGetPcieThroughput, device, value);
}
VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, int errorType, int counterType,
                                                        unsigned long long *eccCounts) {
  (void)errorType;
  (void)counterType;
  return notSupported(Fn::nvmlDeviceGetTotalEccErrors, device, eccCounts);
}
// Windows only (WDDM/TCC): NOT_SUPPORTED on Linux, as there.
VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetDriverModel(nvmlDevice_t device, int *current, int *pending) {
  (void)pending;
  return notSupported(Fn::nvmlDeviceGetDriverModel, device, current);
}

// Each requested field answers NOT_SUPPORTED in its own nvmlReturn; the call itself succeeds.
VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int valuesCount, nvmlFieldValue_t *values) {
  return deviceCall(Fn::nvmlDeviceGetFieldValues, device, [&](Session &, Device &) -> nvmlReturn_t {
    if (valuesCount < 0 || (valuesCount > 0 && !values)) return NVML_ERROR(INVALID_ARGUMENT);
    for (int i = 0; i < valuesCount; ++i) values[i].nvmlReturn = NVML_ERROR(NOT_SUPPORTED);
    return NVML_SUCCESS;
  });
}

// ---- Processes -----------------------------------------------------------------------------------------

// A scenario process's "name" when given; else the command of the live process with that pid.
VG_MOCK_EXPORT nvmlReturn_t nvmlSystemGetProcessName(unsigned int pid, char *name, unsigned int length) {
  return systemCall(Fn::nvmlSystemGetProcessName, [&](Session &s) -> nvmlReturn_t {
    if (!name || length == 0) return NVML_ERROR(INVALID_ARGUMENT);
    std::string text;
    for (const Device &d : s.scenario.devices) {
      for (const Process &p : d.processes) {
        if (p.pid == pid && p.name) text = *p.name;
      }
    }
    if (text.empty() && !processNameFromProc(pid, &text)) return NVML_ERROR(NOT_FOUND);
    std::snprintf(name, length, "%s", text.c_str());  // truncated to length, as NVML does
    return NVML_SUCCESS;
  });
}

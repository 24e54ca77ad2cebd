// A fake libnvidia-ml.so.1: NVML entry points answering from a scenario file (VRAMGUARD_MOCK_SCENARIO)
// that a timeline and a live control file can change while it runs. Format and behaviour:
// native/mock/SCENARIO.md.
//
// Layout: mock_state.* (session, error rules, ops, call wrappers), this file (init, shutdown, the
// entry points every driver era has), client_api.cc and entry_events.cc (what other NVML clients call),
// and one entry_*.inc per group of entry points that drivers added (or dropped) over time. The core is
// built once as a static archive; each driver era's library is era.cc compiled with VG_MOCK_BUILD_ERA,
// which includes only the groups that era's driver exports, linked with the core: a function a driver
// lacks is absent from dlsym, as it is on that driver.
//
// Every exported function takes one mutex, so any number of threads may call; no exception escapes.

#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "../nvml_api.h"
#include "mock_state.h"

// Every NVML function, declared from the header's lists with its exact parameter list: a definition
// that drifts from it is a compile error (C linkage allows no overloads). Declaring one that an era's
// library does not define exports nothing.
#define VG_MOCK_DECLARE(requirement, name, params, args) VG_MOCK_EXPORT nvmlReturn_t name params;
VG_NVML_FUNCTIONS(VG_MOCK_DECLARE)
VG_NVML_CLIENT_FUNCTIONS(VG_MOCK_DECLARE)
#undef VG_MOCK_DECLARE
VG_MOCK_EXPORT const char *nvmlErrorString(nvmlReturn_t result);

// Extension symbols (ours, not NVML's); vramguard's loader looks them up with dlsym when present.
VG_MOCK_EXPORT const char *vramguardMockInitError(void);
VG_MOCK_EXPORT const char *vramguardMockWarnings(void);
VG_MOCK_EXPORT const char *vramguardMockEra(void);
VG_MOCK_EXPORT int vramguardMockIsMock(void);

using namespace vgmock;

VG_MOCK_GROUP_ANCHOR(base)

// ---- Init and shutdown ---------------------------------------------------------------------------------

namespace {

// The init entry points (nvmlInit_v2, nvmlInit, nvmlInitWithFlags) share one reference count; fn names
// the one called, for error rules and statistics.
nvmlReturn_t initialize(Fn fn) {
  try {
    Globals &g = globals();
    std::lock_guard<std::mutex> lock(g.mutex);
    nvmlReturn_t injected;
    std::string rule;
    if (g.session) {  // nested: counts like real NVML, state stays as it is
      enterCall(g, *g.session, fn);
      if (takeInjectedError(g, *g.session, fn, -1, &injected, &rule)) {
        g.initError = std::string(fnName(fn)) + ": injected " + rule;
        return injected;
      }
      ++g.initCount;
      return NVML_SUCCESS;
    }

    const char *scenarioPath = std::getenv("VRAMGUARD_MOCK_SCENARIO");
    if (!scenarioPath || !*scenarioPath) {
      g.initError = "VRAMGUARD_MOCK_SCENARIO is not set: the mock NVML library needs the path of a scenario file";
      return NVML_ERROR(UNKNOWN);
    }
    std::unique_ptr<Session> session;
    try {
      Scenario scenario = loadScenario(scenarioPath);
      std::string control;
      const char *controlEnv = std::getenv("VRAMGUARD_MOCK_CONTROL");
      if (controlEnv && *controlEnv) {
        control = absolutePath(controlEnv);
      } else if (!scenario.controlFile.empty()) {
        control = scenario.controlFile;
      } else {
        control = scenario.path + ".control";
      }
      session.reset(new Session(std::move(scenario), std::move(control)));
    } catch (const std::exception &e) {
      g.initError = e.what();
      return NVML_ERROR(UNKNOWN);
    }

    // nvmlInit_v2 rules count across re-reads of the same file: take off what earlier inits used.
    for (auto it = session->rules.begin(); it != session->rules.end();) {
      const auto used = g.initRuleFirings.find(std::make_pair(session->scenario.path, it->scenarioIndex));
      if (isInitFunction(it->function) && it->remaining && used != g.initRuleFirings.end()) {
        if (*it->remaining <= used->second) {
          it = session->rules.erase(it);
          continue;
        }
        *it->remaining -= used->second;
      }
      ++it;
    }

    g.warnings.clear();
    enterCall(g, *session, fn);  // applies timeline entries at 0 ms and the control file so far
    if (takeInjectedError(g, *session, fn, -1, &injected, &rule)) {
      g.initError = std::string(fnName(fn)) + ": injected " + rule;
      return injected;
    }
    g.session = std::move(session);
    g.initCount = 1;
    g.initError.clear();
    return NVML_SUCCESS;
  } catch (...) {
    return NVML_ERROR(UNKNOWN);
  }
}

}  // namespace

VG_MOCK_EXPORT nvmlReturn_t nvmlInit_v2(void) { return initialize(Fn::nvmlInit_v2); }
VG_MOCK_EXPORT nvmlReturn_t nvmlInit(void) { return initialize(Fn::nvmlInit); }
// NVIDIA's Python binding starts here (nvmlInit() calls nvmlInitWithFlags(0)). The flags change nothing:
// NO_GPUS (1) and NO_ATTACH (2) only affect how a real driver attaches to GPUs.
VG_MOCK_EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
  (void)flags;
  return initialize(Fn::nvmlInitWithFlags);
}

VG_MOCK_EXPORT nvmlReturn_t nvmlShutdown(void) {
  try {
    Globals &g = globals();
    std::lock_guard<std::mutex> lock(g.mutex);
    if (!g.session) return NVML_ERROR(UNINITIALIZED);
    enterCall(g, *g.session, Fn::nvmlShutdown);
    nvmlReturn_t injected;
    if (takeInjectedError(g, *g.session, Fn::nvmlShutdown, -1, &injected)) return injected;
    if (--g.initCount == 0) g.session.reset();
    return NVML_SUCCESS;
  } catch (...) {
    return NVML_ERROR(UNKNOWN);
  }
}

VG_MOCK_EXPORT const char *nvmlErrorString(nvmlReturn_t result) {
  try {
    Globals &g = globals();
    std::lock_guard<std::mutex> lock(g.mutex);
    if (g.session) {
      enterCall(g, *g.session, Fn::nvmlErrorString);
      nvmlReturn_t injected;
      // An injected error cannot be returned as a code here: the string becomes NULL instead.
      if (takeInjectedError(g, *g.session, Fn::nvmlErrorString, -1, &injected)) return nullptr;
    }
  } catch (...) {
  }
  return returnCodeText(result);
}

// ---- System queries ------------------------------------------------------------------------------------

VG_MOCK_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
  return systemCall(Fn::nvmlSystemGetDriverVersion,
                    [&](Session &s) -> nvmlReturn_t { return copyText(s.scenario.driverVersion, version, length); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
  return systemCall(Fn::nvmlSystemGetNVMLVersion,
                    [&](Session &s) -> nvmlReturn_t { return copyText(s.scenario.nvmlVersion, version, length); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion) {
  return systemCall(Fn::nvmlSystemGetCudaDriverVersion,
                    [&](Session &s) -> nvmlReturn_t { return reportCudaDriverVersion(s, cudaDriverVersion); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount) {
  return systemCall(Fn::nvmlDeviceGetCount_v2, [&](Session &s) -> nvmlReturn_t {
    if (!deviceCount) return NVML_ERROR(INVALID_ARGUMENT);
    *deviceCount = static_cast<unsigned int>(s.scenario.devices.size());  // lost devices still count
    return NVML_SUCCESS;
  });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
  try {
    Globals &g = globals();
    std::lock_guard<std::mutex> lock(g.mutex);
    Session *s = g.session.get();
    if (!s) return NVML_ERROR(UNINITIALIZED);
    enterCall(g, *s, Fn::nvmlDeviceGetHandleByIndex_v2);
    const std::size_t count = s->scenario.devices.size();
    const int deviceIndex = index < count ? static_cast<int>(index) : -1;
    nvmlReturn_t injected;
    if (takeInjectedError(g, *s, Fn::nvmlDeviceGetHandleByIndex_v2, deviceIndex, &injected)) return injected;
    if (deviceIndex < 0 || !device) return NVML_ERROR(INVALID_ARGUMENT);
    const Device &d = s->scenario.devices[index];
    // NVML documents GPU_IS_LOST for this call; scenarios choose with "handleLost" (else the handle of
    // a lost device is still handed out and every call on it fails).
    if (d.lost && d.handleLost) return NVML_ERROR(GPU_IS_LOST);
    *device = handleFor(index);
    return NVML_SUCCESS;
  } catch (...) {
    return NVML_ERROR(UNKNOWN);
  }
}

// ---- Device queries ------------------------------------------------------------------------------------

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
  return deviceCall(Fn::nvmlDeviceGetUUID, device,
                    [&](Session &, Device &d) -> nvmlReturn_t { return copyText(d.uuid, uuid, length); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
  return deviceCall(Fn::nvmlDeviceGetName, device,
                    [&](Session &, Device &d) -> nvmlReturn_t { return copyText(d.name, name, length); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci) {
  return deviceCall(Fn::nvmlDeviceGetPciInfo_v3, device, [&](Session &, Device &d) -> nvmlReturn_t {
    if (!pci) return NVML_ERROR(INVALID_ARGUMENT);
    if (!d.pciBusId) return NVML_ERROR(NOT_SUPPORTED);
    unsigned domain = 0, bus = 0, slot = 0, function = 0;
    parsePciBusId(*d.pciBusId, &domain, &bus, &slot, &function);  // validated when loaded
    std::memset(pci, 0, sizeof *pci);
    std::snprintf(pci->busId, sizeof pci->busId, "%s", d.pciBusId->c_str());
    // NVIDIA's legacy form: a 4-digit domain and function 0, uppercase hex.
    std::snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.0", domain & 0xFFFFu, bus & 0xFFu,
                  slot & 0xFFu);
    pci->domain = domain;
    pci->bus = bus;
    pci->device = slot;
    pci->pciDeviceId = d.pciDeviceId;
    pci->pciSubSystemId = 0;
    return NVML_SUCCESS;
  });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
  return deviceCall(Fn::nvmlDeviceGetMemoryInfo, device, [&](Session &s, Device &d) -> nvmlReturn_t {
    if (!memory) return NVML_ERROR(INVALID_ARGUMENT);
    if (migParentRestricted(s, d)) return NVML_ERROR(NO_PERMISSION);
    // The v1 view counts the driver's reserved memory as used.
    const std::uint64_t used = saturatingAdd(d.memoryReserved, d.usedBytes());
    memory->total = d.memoryTotal;
    memory->used = used;
    memory->free = saturatingSub(d.memoryTotal, used);
    return NVML_SUCCESS;
  });
}


VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization) {
  return deviceCall(Fn::nvmlDeviceGetUtilizationRates, device, [&](Session &, Device &d) -> nvmlReturn_t {
    if (!utilization) return NVML_ERROR(INVALID_ARGUMENT);
    if (!d.gpuUtilPercent || !d.memoryUtilPercent) return NVML_ERROR(NOT_SUPPORTED);
    utilization->gpu = *d.gpuUtilPercent;
    utilization->memory = *d.memoryUtilPercent;
    return NVML_SUCCESS;
  });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensorType, unsigned int *temp) {
  return deviceCall(Fn::nvmlDeviceGetTemperature, device, [&](Session &, Device &d) -> nvmlReturn_t {
    if (!temp || sensorType != NVML_TEMPERATURE_GPU) return NVML_ERROR(INVALID_ARGUMENT);
    return copyNumber(d.temperatureCelsius, temp);
  });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *milliwatts) {
  return deviceCall(Fn::nvmlDeviceGetPowerUsage, device,
                    [&](Session &, Device &d) -> nvmlReturn_t { return copyNumber(d.powerUsageMilliwatts, milliwatts); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *milliwatts) {
  return deviceCall(Fn::nvmlDeviceGetEnforcedPowerLimit, device,
                    [&](Session &, Device &d) -> nvmlReturn_t { return copyNumber(d.powerLimitMilliwatts, milliwatts); });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, int clockType, unsigned int *mhz) {
  return deviceCall(Fn::nvmlDeviceGetClockInfo, device, [&](Session &, Device &d) -> nvmlReturn_t {
    if (!mhz) return NVML_ERROR(INVALID_ARGUMENT);
    switch (clockType) {
      case NVML_CLOCK_GRAPHICS: return copyNumber(d.graphicsClockMhz, mhz);
      case NVML_CLOCK_SM: return copyNumber(d.smClockMhz, mhz);
      case NVML_CLOCK_MEM: return copyNumber(d.memoryClockMhz, mhz);
      case NVML_CLOCK_VIDEO: return copyNumber(d.videoClockMhz, mhz);
      default: return NVML_ERROR(NOT_SUPPORTED);
    }
  });
}

// ---- Running processes ---------------------------------------------------------------------------------

VG_MOCK_PROCESS_LIST(nvmlDeviceGetComputeRunningProcesses, kTypeCompute, RecordLayout::V1)
VG_MOCK_PROCESS_LIST(nvmlDeviceGetGraphicsRunningProcesses, kTypeGraphics, RecordLayout::V1)
VG_MOCK_PROCESS_LIST(nvmlDeviceGetMPSComputeRunningProcesses, kTypeMps, RecordLayout::V1)

// Samples as the driver keeps them (see utilization_samples.cc): per-process timestamps, several per
// process when lastSeenTimeStamp is 0, and the junk entries a scenario asks for.
VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                                            nvmlProcessUtilizationSample_t *utilization,
                                                            unsigned int *processSamplesCount,
                                                            unsigned long long lastSeenTimeStamp) {
  return deviceCall(Fn::nvmlDeviceGetProcessUtilization, device, [&](Session &s, Device &d) -> nvmlReturn_t {
    if (!processSamplesCount) return NVML_ERROR(INVALID_ARGUMENT);
    const std::vector<UtilizationSample> samples = utilizationSamples(s, d, lastSeenTimeStamp);
    if (samples.empty()) return NVML_ERROR(NOT_FOUND);
    const unsigned int needed = static_cast<unsigned int>(samples.size());
    if (!utilization || *processSamplesCount < needed) {
      *processSamplesCount = needed;
      return NVML_ERROR(INSUFFICIENT_SIZE);
    }
    for (std::size_t i = 0; i < samples.size(); ++i) {
      nvmlProcessUtilizationSample_t out;
      std::memset(&out, 0, sizeof out);
      out.pid = samples[i].pid;
      out.timeStamp = samples[i].timeStamp;
      out.smUtil = samples[i].sm;
      out.memUtil = samples[i].mem;
      out.encUtil = samples[i].enc;
      out.decUtil = samples[i].dec;
      std::memcpy(&utilization[i], &out, sizeof out);
    }
    *processSamplesCount = needed;
    return NVML_SUCCESS;
  });
}

// ---- Extension symbols ---------------------------------------------------------------------------------
// The strings live in per-thread storage: valid until the same thread calls the same function again.

VG_MOCK_EXPORT const char *vramguardMockInitError(void) {
  static thread_local std::string text;
  try {
    Globals &g = globals();
    std::lock_guard<std::mutex> lock(g.mutex);
    text = g.initError;
    return text.c_str();
  } catch (...) {
    return "";
  }
}

VG_MOCK_EXPORT const char *vramguardMockWarnings(void) {
  static thread_local std::string text;
  try {
    Globals &g = globals();
    std::lock_guard<std::mutex> lock(g.mutex);
    text.clear();
    for (const std::string &warning : g.warnings) {
      if (!text.empty()) text += '\n';
      text += warning;
    }
    return text.c_str();
  } catch (...) {
    return "";
  }
}

VG_MOCK_EXPORT int vramguardMockIsMock(void) { return 1; }

VG_MOCK_EXPORT const char *vramguardMockEra(void) { return eraTraits(buildEra()).name; }

// ---- Signature checks ----------------------------------------------------------------------------------
// Each entry point must have exactly the type vramguard's loader casts its dlsym result to.

#define VG_MOCK_CHECK_SIGNATURE(requirement, name, params, args)                 \
  static_assert(std::is_same<decltype(&::name), vg_fn_##name>::value, #name " " \
                                                                      "must match vg_fn_" #name);
VG_NVML_FUNCTIONS(VG_MOCK_CHECK_SIGNATURE)
VG_NVML_CLIENT_FUNCTIONS(VG_MOCK_CHECK_SIGNATURE)
#undef VG_MOCK_CHECK_SIGNATURE
static_assert(std::is_same<decltype(&::nvmlErrorString), vg_fn_nvmlErrorString>::value,
              "nvmlErrorString must match vg_fn_nvmlErrorString");

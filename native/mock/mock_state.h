// The mock NVML library's shared state and call wrappers, used by every file that defines entry points.
// Internal to the mock (nothing here is exported): see mock_nvml.cc for the design.
#ifndef VRAMGUARD_MOCK_STATE_H
#define VRAMGUARD_MOCK_STATE_H

#include <time.h>

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../nvml_api.h"
#include "control_file.h"
#include "scenario.h"

// Every exported entry point is defined with this: C linkage, default visibility (the version script
// native/mock/exports.map then keeps nvml* and vramguardMock* only).
#define VG_MOCK_EXPORT extern "C" __attribute__((visibility("default")))

namespace vgmock {

const std::size_t kMaxWarnings = 20;
const std::uint64_t kPollIntervalNs = 1000000;  // look at the control file at most once per millisecond

inline std::uint64_t clockNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

inline std::uint64_t saturatingSub(std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; }

inline std::uint64_t saturatingAdd(std::uint64_t a, std::uint64_t b) {
  std::uint64_t sum;
  return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}

// ---- State ---------------------------------------------------------------------------------------------

using CallCounts = std::array<std::uint64_t, kFnCount>;

// What exists between the nvmlInit_v2 that loads the scenario and the nvmlShutdown that balances it.
struct Session {
  Session(Scenario loaded, std::string controlPath)
      : scenario(std::move(loaded)), control(std::move(controlPath)), startNs(clockNs(CLOCK_MONOTONIC)) {
    rules = scenario.errors;
    random.seed(scenario.errorSeed);
  }

  Scenario scenario;  // devices change as ops apply
  std::vector<ErrorRule> rules;
  ControlFile control;
  std::uint64_t startNs;
  std::size_t nextTimelineEntry = 0;
  bool polled = false;
  std::uint64_t lastPollNs = 0;
  CallCounts calls{};
  std::map<std::string, CallCounts> callsByThread;
  std::mt19937_64 random;  // draws for error rules with a probability
};

struct Globals {
  std::mutex mutex;  // guards everything below
  unsigned initCount = 0;
  std::unique_ptr<Session> session;
  std::string initError;
  std::deque<std::string> warnings;
  // Times each nvmlInit_v2 rule of a scenario ((file, index in "errors")) fired, over the whole process:
  // a rule with "count": 2 fails the first two nvmlInit_v2 calls even though each re-reads the file.
  std::map<std::pair<std::string, int>, std::uint64_t> initRuleFirings;
};

// Never destroyed: a thread still calling while the process exits must not find it gone.
Globals &globals();
void addWarning(Globals &g, std::string warning);

// Device handles point into a static array of kMaxDevices slots (valid for the life of the process).
nvmlDevice_t handleFor(std::size_t index);
// The device index of handle, or -1 when it is not a handle of one of the count current devices.
int indexOfHandle(nvmlDevice_t handle, std::size_t count);
// MIG device handles: a second static array, kMaxMigDevices slots per device.
nvmlDevice_t migHandleFor(std::size_t deviceIndex, std::size_t migIndex);
// The parent's index of a MIG device handle (its MIG index in *migIndex), or -1 when handle is none.
int parentOfMigHandle(nvmlDevice_t handle, std::size_t count, std::size_t *migIndex);
// The entry points that answer on a MIG device handle, for the instance (real NVML answers most others
// with NOT_SUPPORTED there): identity, memory, the process lists and the MIG queries.
bool servesMigHandles(Fn fn);
// The instance a MIG handle stands for now; nullptr once MIG is off or that compute instance is gone.
const MigInstance *migInstanceAt(const Device &parent, std::size_t migIndex);

// Consumes one firing of the first rule matching (fn, deviceIndex); returns whether one matched.
bool takeInjectedError(Globals &g, Session &s, Fn fn, int deviceIndex, nvmlReturn_t *code,
                       std::string *description = nullptr);
// Start of every call made while initialized: count it, then bring the state up to date.
void enterCall(Globals &g, Session &s, Fn fn);
// Applies timeline entries now due and, at most once per millisecond, the control file and followed pids.
void refreshState(Globals &g, Session &s);

// ---- Call wrappers -------------------------------------------------------------------------------------
// Checks, in order: initialized, then error injection, then (device calls) a valid handle and a device
// that is not lost; then the body runs. A function the era's driver lacks is not in the library at all.

template <typename Body>
nvmlReturn_t systemCall(Fn fn, Body &&body) {
  try {
    Globals &g = globals();
    std::lock_guard<std::mutex> lock(g.mutex);
    Session *s = g.session.get();
    if (!s) return NVML_ERROR(UNINITIALIZED);
    enterCall(g, *s, fn);
    nvmlReturn_t injected;
    if (takeInjectedError(g, *s, fn, -1, &injected)) return injected;
    return body(*s);
  } catch (...) {
    return NVML_ERROR(UNKNOWN);
  }
}

// A call on a GPU handle or a MIG device handle: body(session, parent, instance or nullptr). An error rule
// aimed at a device also hits its MIG handles; a MIG handle whose compute instance is gone is invalid.
template <typename Body>
nvmlReturn_t anyHandleCall(Fn fn, nvmlDevice_t handle, Body &&body) {
  try {
    Globals &g = globals();
    std::lock_guard<std::mutex> lock(g.mutex);
    Session *s = g.session.get();
    if (!s) return NVML_ERROR(UNINITIALIZED);
    enterCall(g, *s, fn);
    const std::size_t count = s->scenario.devices.size();
    std::size_t migIndex = 0;
    int index = indexOfHandle(handle, count);
    const bool isMig = index < 0 && (index = parentOfMigHandle(handle, count, &migIndex)) >= 0;
    nvmlReturn_t injected;
    if (takeInjectedError(g, *s, fn, index, &injected)) return injected;
    if (index < 0) return NVML_ERROR(INVALID_ARGUMENT);
    Device &device = s->scenario.devices[static_cast<std::size_t>(index)];
    if (device.lost) return NVML_ERROR(GPU_IS_LOST);
    const MigInstance *instance = isMig ? migInstanceAt(device, migIndex) : nullptr;
    if (isMig && !instance) return NVML_ERROR(INVALID_ARGUMENT);
    return body(*s, device, instance, static_cast<std::size_t>(index));
  } catch (...) {
    return NVML_ERROR(UNKNOWN);
  }
}

// A device call: on a MIG handle the instance is presented as a device of its own (its memory and
// processes) to the entry points that serve MIG handles; the others answer NOT_SUPPORTED there.
template <typename Body>
nvmlReturn_t deviceCall(Fn fn, nvmlDevice_t handle, Body &&body) {
  return anyHandleCall(fn, handle, [&](Session &s, Device &device, const MigInstance *instance, std::size_t index) -> nvmlReturn_t {
    if (!instance) return body(s, device);
    if (!servesMigHandles(fn)) return NVML_ERROR(NOT_SUPPORTED);
    Device view = migDeviceView(device, index, *instance);
    return body(s, view);
  });
}

// ---- Helpers for the bodies ----------------------------------------------------------------------------

nvmlReturn_t copyText(const std::optional<std::string> &text, char *out, unsigned int length);
nvmlReturn_t copyNumber(const std::optional<std::uint32_t> &value, unsigned int *out);

enum class RecordLayout { V1, V2, V535 };
// The running-process lists, with NVML's two-call protocol (see the .cc).
nvmlReturn_t listProcesses(const Device &device, unsigned typeMask, RecordLayout layout, unsigned int *infoCount,
                           void *infos);

// A process sample as the driver keeps it (both utilization entry points write these).
struct UtilizationSample {
  std::uint32_t pid;
  unsigned long long timeStamp;
  std::uint32_t sm, mem, enc, dec;
};
// The samples newer than lastSeen (see utilization_samples.cc). Empty: the answer is NOT_FOUND.
std::vector<UtilizationSample> utilizationSamples(const Session &s, const Device &d, unsigned long long lastSeen);

// A MIG-enabled parent GPU answers memory and process queries to privileged callers only; a scenario
// with "unprivileged": true is such a caller.
inline bool migParentRestricted(const Session &s, const Device &d) {
  return s.scenario.unprivileged && d.migMode && *d.migMode == 1;
}

inline nvmlReturn_t reportCudaDriverVersion(const Session &s, int *out) {
  if (!out) return NVML_ERROR(INVALID_ARGUMENT);
  *out = s.scenario.cudaDriverVersion;
  return NVML_SUCCESS;
}

}  // namespace vgmock

// The files of entry points every era has mark themselves with this anchor; era.cc references the
// anchors, which makes the linker take those files from the mock's static archive.
#define VG_MOCK_GROUP_ANCHOR(group) extern "C" __attribute__((visibility("hidden"))) const int vgmockGroup_##group = 1;

// One running-process list entry point (name, the process types it lists, the record layout it writes).
#define VG_MOCK_PROCESS_LIST(name, typeMask, layout)                                              \
  VG_MOCK_EXPORT nvmlReturn_t name(nvmlDevice_t device, unsigned int *infoCount, void *infos) {  \
    return deviceCall(Fn::name, device, [&](Session &s, Device &d) -> nvmlReturn_t {                              \
      if (migParentRestricted(s, d)) return NVML_ERROR(NO_PERMISSION);                           \
      return listProcesses(d, typeMask, layout, infoCount, infos);                                \
    });                                                                                           \
  }


#endif  // VRAMGUARD_MOCK_STATE_H

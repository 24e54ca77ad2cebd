// The mock's state: sessions, error rules, ops, the control file poll and call statistics.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "json.h"
#include "mock_state.h"

namespace vgmock {

namespace {
// ---- Processes the mock follows ------------------------------------------------------------------------

// Whether pid names a process that has not exited. A zombie has exited (the driver would have freed its
// memory) though it keeps its pid until reaped, so it counts as gone.
bool processAlive(std::uint32_t pid) {
  if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno != ENOENT;
  char buf[512];
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return true;
  buf[n] = '\0';
  const char *paren = std::strrchr(buf, ')');  // "pid (comm) S ...": comm may itself hold ')'
  if (!paren || paren[1] != ' ') return true;
  return paren[2] != 'Z' && paren[2] != 'X';
}

// Device handles point into this array: handle i is &gHandleSlots[i].
unsigned char gHandleSlots[kMaxDevices];
// MIG device handles: MIG index m of device i is &gMigHandleSlots[i * kMaxMigDevices + m].
unsigned char gMigHandleSlots[kMaxDevices * kMaxMigDevices];
}  // namespace

// Never destroyed: a thread still calling while the process exits must not find it gone.
Globals &globals() {
  static Globals *const instance = new Globals();
  return *instance;
}

void addWarning(Globals &g, std::string warning) {
  g.warnings.push_back(std::move(warning));
  while (g.warnings.size() > kMaxWarnings) g.warnings.pop_front();
}


nvmlDevice_t handleFor(std::size_t index) { return reinterpret_cast<nvmlDevice_t>(&gHandleSlots[index]); }

// The device index of handle, or -1 when it is not a handle of one of the count current devices.
int indexOfHandle(nvmlDevice_t handle, std::size_t count) {
  const std::uintptr_t p = reinterpret_cast<std::uintptr_t>(handle);
  const std::uintptr_t base = reinterpret_cast<std::uintptr_t>(&gHandleSlots[0]);
  if (p < base || p - base >= count) return -1;
  return static_cast<int>(p - base);
}

nvmlDevice_t migHandleFor(std::size_t deviceIndex, std::size_t migIndex) {
  return reinterpret_cast<nvmlDevice_t>(&gMigHandleSlots[deviceIndex * kMaxMigDevices + migIndex]);
}

int parentOfMigHandle(nvmlDevice_t handle, std::size_t count, std::size_t *migIndex) {
  const std::uintptr_t p = reinterpret_cast<std::uintptr_t>(handle);
  const std::uintptr_t base = reinterpret_cast<std::uintptr_t>(&gMigHandleSlots[0]);
  if (p < base || p - base >= count * kMaxMigDevices) return -1;
  *migIndex = (p - base) % kMaxMigDevices;
  return static_cast<int>((p - base) / kMaxMigDevices);
}

bool servesMigHandles(Fn fn) {
  switch (fn) {
    case Fn::nvmlDeviceGetUUID:
    case Fn::nvmlDeviceGetName:
    case Fn::nvmlDeviceGetMemoryInfo:
    case Fn::nvmlDeviceGetMemoryInfo_v2:
    case Fn::nvmlDeviceGetComputeRunningProcesses:
    case Fn::nvmlDeviceGetComputeRunningProcesses_v2:
    case Fn::nvmlDeviceGetComputeRunningProcesses_v3:
    case Fn::nvmlDeviceGetGraphicsRunningProcesses:
    case Fn::nvmlDeviceGetGraphicsRunningProcesses_v2:
    case Fn::nvmlDeviceGetGraphicsRunningProcesses_v3:
    case Fn::nvmlDeviceGetMPSComputeRunningProcesses:
    case Fn::nvmlDeviceGetMPSComputeRunningProcesses_v2:
    case Fn::nvmlDeviceGetMPSComputeRunningProcesses_v3:
    case Fn::nvmlDeviceGetRunningProcessDetailList:
      return true;
    default:
      return false;
  }
}

const MigInstance *migInstanceAt(const Device &parent, std::size_t migIndex) {
  if (!parent.migMode || *parent.migMode != NVML_DEVICE_MIG_ENABLE) return nullptr;
  if (migIndex >= parent.migInstances.size() || !parent.migInstances[migIndex]) return nullptr;
  return &*parent.migInstances[migIndex];
}

static std::string describeRule(const ErrorRule &rule) {
  const char *name = returnCodeName(rule.code);
  std::string code = name ? "NVML_ERROR_" + std::string(name) : std::to_string(rule.code);
  return code + (rule.scenarioIndex >= 0 ? " (scenario errors[" + std::to_string(rule.scenarioIndex) + "])"
                                         : " (injectError op)");
}

// Consumes one firing of the first rule matching (fn, deviceIndex); returns whether one matched.
bool takeInjectedError(Globals &g, Session &s, Fn fn, int deviceIndex, nvmlReturn_t *code,
                       std::string *description) {
  for (auto it = s.rules.begin(); it != s.rules.end(); ++it) {
    if (!it->matches(fn, deviceIndex)) continue;
    // A rule with a probability below 1 lets this call pass when its draw says so (the next rule may
    // still match). The draws come from the session's generator, seeded by the scenario's errorSeed.
    if (it->probability < 1.0 && std::uniform_real_distribution<double>(0.0, 1.0)(s.random) >= it->probability) continue;
    *code = it->code;
    if (description) *description = describeRule(*it);
    if (isInitFunction(fn) && it->scenarioIndex >= 0) {
      ++g.initRuleFirings[std::make_pair(s.scenario.path, it->scenarioIndex)];
    }
    if (it->remaining && --*it->remaining == 0) s.rules.erase(it);
    return true;
  }
  return false;
}

namespace {

// The calling thread's name, as pthread_getname_np reports it. Cached per thread (a syscall per NVML
// call would dominate the mock's cost) and re-read every 1024 calls in case the thread was renamed.
const std::string &threadName() {
  thread_local std::string cached;
  thread_local unsigned callsSinceRead = 0;
  if (cached.empty() || ++callsSinceRead >= 1024) {
    callsSinceRead = 0;
    char name[17] = {0};
    cached = prctl(PR_GET_NAME, reinterpret_cast<unsigned long>(name), 0, 0, 0) == 0 ? name : "?";
  }
  return cached;
}

std::string statsJson(const Session &s) {
  auto counts = [](const CallCounts &calls) {
    std::string out = "{";
    for (int i = 0; i < kFnCount; ++i) {
      if (calls[static_cast<std::size_t>(i)] == 0) continue;
      if (out.size() > 1) out += ",";
      out += json::quote(fnName(static_cast<Fn>(i))) + ":" + std::to_string(calls[static_cast<std::size_t>(i)]);
    }
    return out + "}";
  };
  std::string out = "{\"calls\":" + counts(s.calls) + ",\"callsByThread\":{";
  bool first = true;
  for (const auto &entry : s.callsByThread) {
    if (!first) out += ",";
    first = false;
    out += json::quote(entry.first) + ":" + counts(entry.second);
  }
  return out + "}}\n";
}

// Writes the call statistics to path (through a temporary file and rename, so readers never see half).
std::string writeStats(const Session &s, const std::string &path) {
  const std::string text = statsJson(s);
  const std::string temporary = path + ".tmp." + std::to_string(getpid());
  const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot write " + temporary + ": " + std::strerror(errno);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      close(fd);
      unlink(temporary.c_str());
      return "cannot write " + temporary + ": " + why;
    }
    done += static_cast<std::size_t>(n);
  }
  close(fd);
  if (rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    unlink(temporary.c_str());
    return "cannot rename " + temporary + " to " + path + ": " + why;
  }
  return "";
}

void applyOp(Globals &g, Session &s, const Op &op, const std::string &origin) {
  switch (op.kind) {
    case OpKind::InjectError:
      s.rules.push_back(op.rule);
      return;
    case OpKind::ClearErrors:
      for (auto it = s.rules.begin(); it != s.rules.end();) {
        const bool functionMatches = !op.function || it->function == *op.function;
        const bool deviceMatches = op.device < 0 || it->device == op.device;
        it = functionMatches && deviceMatches ? s.rules.erase(it) : it + 1;
      }
      return;
    case OpKind::WriteStats: {
      const std::string why = writeStats(s, op.path);
      if (!why.empty()) addWarning(g, origin + ": writeStats failed: " + why);
      return;
    }
    default: {
      const std::string why = applyDeviceOp(op, &s.scenario.devices);
      if (!why.empty()) addWarning(g, origin + ": op refused: " + why);
      return;
    }
  }
}

// replay: this is the session's first read, during the nvmlInit_v2 that started it. The file is a log
// applied on top of the scenario, so its earlier lines apply again, except writeStats: the stats file
// an earlier session wrote is left alone.
void pollControlFile(Globals &g, Session &s, bool replay) {
  std::vector<ControlFile::Line> lines;
  std::vector<std::string> warnings;
  s.control.readNewLines(&lines, &warnings);
  for (std::string &warning : warnings) addWarning(g, std::move(warning));
  OpContext context;
  context.deviceCount = s.scenario.devices.size();
  context.baseDirectory = s.scenario.directory;
  for (const ControlFile::Line &line : lines) {
    if (line.text.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines are fine
    const std::string origin = "control " + s.control.path() + ":" + std::to_string(line.number);
    json::Value value;
    json::ParseError syntax;
    if (!json::parse(line.text, &value, &syntax)) {
      addWarning(g, origin + ":" + std::to_string(syntax.column) + ": invalid JSON: " + syntax.message);
      continue;
    }
    try {
      const Op op = parseOp(value, "$", context);
      if (replay && op.kind == OpKind::WriteStats) continue;
      applyOp(g, s, op, origin);
    } catch (const InputError &e) {
      addWarning(g, origin + ": " + e.describe());
    }
  }
}

void dropExitedProcesses(Session &s) {
  for (Device &device : s.scenario.devices) {
    std::vector<Process> &list = device.processes;
    for (auto it = list.begin(); it != list.end();) {
      it = it->followPid && !processAlive(it->pid) ? list.erase(it) : it + 1;
    }
  }
}

}  // namespace

// Start of every call made while initialized: count it, then bring the state up to date (timeline
// entries now due; at most once per millisecond, the control file and followed pids).
void enterCall(Globals &g, Session &s, Fn fn) {
  const std::size_t fnIndex = static_cast<std::size_t>(fn);
  ++s.calls[fnIndex];
  const std::string &thread = threadName();
  auto counts = s.callsByThread.find(thread);
  if (counts == s.callsByThread.end()) counts = s.callsByThread.emplace(thread, CallCounts{}).first;
  ++counts->second[fnIndex];
  refreshState(g, s);
}

void refreshState(Globals &g, Session &s) {
  const std::uint64_t now = clockNs(CLOCK_MONOTONIC);
  const std::uint64_t elapsedMs = (now - s.startNs) / 1000000u;
  while (s.nextTimelineEntry < s.scenario.timeline.size() &&
         s.scenario.timeline[s.nextTimelineEntry].atMs <= elapsedMs) {
    const TimelineEntry &entry = s.scenario.timeline[s.nextTimelineEntry++];
    for (std::size_t i = 0; i < entry.ops.size(); ++i) {
      applyOp(g, s, entry.ops[i],
              "$.timeline[" + std::to_string(entry.index) + "].ops[" + std::to_string(i) + "]");
    }
  }
  if (!s.polled || now - s.lastPollNs >= kPollIntervalNs) {
    const bool replay = !s.polled;
    s.polled = true;
    s.lastPollNs = now;
    pollControlFile(g, s, replay);
    dropExitedProcesses(s);
  }
}


nvmlReturn_t copyText(const std::optional<std::string> &text, char *out, unsigned int length) {
  if (!out) return NVML_ERROR(INVALID_ARGUMENT);
  if (!text) return NVML_ERROR(NOT_SUPPORTED);
  if (static_cast<std::size_t>(length) < text->size() + 1) return NVML_ERROR(INSUFFICIENT_SIZE);
  std::memcpy(out, text->c_str(), text->size() + 1);
  return NVML_SUCCESS;
}

nvmlReturn_t copyNumber(const std::optional<std::uint32_t> &value, unsigned int *out) {
  if (!out) return NVML_ERROR(INVALID_ARGUMENT);
  if (!value) return NVML_ERROR(NOT_SUPPORTED);
  *out = *value;
  return NVML_SUCCESS;
}



static std::size_t recordSize(RecordLayout layout) {
  switch (layout) {
    case RecordLayout::V1: return sizeof(nvmlProcessInfo_v1_t);
    case RecordLayout::V2: return sizeof(nvmlProcessInfo_v2_t);
    case RecordLayout::V535: return sizeof(vgNvmlProcessInfo_535_t);
  }
  return 0;
}

// The running-process lists, with NVML's two-call protocol: too small a buffer (or none) gets the
// needed count and NVML_ERROR_INSUFFICIENT_SIZE; an empty list is NVML_SUCCESS with count 0.
nvmlReturn_t listProcesses(const Device &device, unsigned typeMask, RecordLayout layout, unsigned int *infoCount,
                           void *infos) {
  if (!infoCount) return NVML_ERROR(INVALID_ARGUMENT);
  std::vector<const Process *> matching;
  for (const Process &process : device.processes) {
    if (process.types & typeMask) matching.push_back(&process);
  }
  const unsigned int needed = static_cast<unsigned int>(matching.size());
  if (needed == 0) {
    *infoCount = 0;
    return NVML_SUCCESS;
  }
  if (!infos || *infoCount < needed) {
    *infoCount = needed;
    return NVML_ERROR(INSUFFICIENT_SIZE);
  }
  const std::size_t stride = recordSize(layout);
  for (std::size_t i = 0; i < matching.size(); ++i) {
    const Process &p = *matching[i];
    const unsigned long long used = p.usedBytes ? *p.usedBytes : NVML_VALUE_NOT_AVAILABLE;
    unsigned char *out = static_cast<unsigned char *>(infos) + i * stride;
    if (layout == RecordLayout::V1) {
      nvmlProcessInfo_v1_t record;
      std::memset(&record, 0, sizeof record);
      record.pid = p.pid;
      record.usedGpuMemory = used;
      std::memcpy(out, &record, sizeof record);
    } else if (layout == RecordLayout::V2) {
      nvmlProcessInfo_v2_t record;
      std::memset(&record, 0, sizeof record);
      record.pid = p.pid;
      record.usedGpuMemory = used;
      record.gpuInstanceId = p.gpuInstanceId;
      record.computeInstanceId = p.computeInstanceId;
      std::memcpy(out, &record, sizeof record);
    } else {
      vgNvmlProcessInfo_535_t record;
      std::memset(&record, 0, sizeof record);
      record.pid = p.pid;
      record.usedGpuMemory = used;
      record.gpuInstanceId = p.gpuInstanceId;
      record.computeInstanceId = p.computeInstanceId;
      record.usedGpuCcProtectedMemory = 0;
      std::memcpy(out, &record, sizeof record);
    }
  }
  *infoCount = needed;
  return NVML_SUCCESS;
}


}  // namespace vgmock

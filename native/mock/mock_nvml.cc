// A fake libnvidia-ml.so.1: the NVML entry points vramguard calls, answering from a scenario file
// (VRAMGUARD_MOCK_SCENARIO) that a timeline and a live control file can change while it runs.
// Format and behaviour: native/mock/SCENARIO.md.
//
// Build it with -fvisibility=hidden: only the NVML functions and the vramguardMock* extension symbols
// below are exported. With VG_MOCK_LEGACY_SYMBOLS=1 the versioned entry points (nvmlDeviceGetMemoryInfo_v2,
// the *RunningProcesses_v2/_v3, nvmlSystemGetCudaDriverVersion_v2) are left out altogether, like an old
// driver's library, so that dlsym finds nothing for them.
//
// Every exported function takes one mutex, so any number of threads may call; no exception escapes.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../nvml_api.h"
#include "json.h"
#include "scenario.h"

#ifndef VG_MOCK_LEGACY_SYMBOLS
#define VG_MOCK_LEGACY_SYMBOLS 0
#endif

#define VG_MOCK_EXPORT extern "C" __attribute__((visibility("default")))

// Every NVML function, declared from the header's list with its exact parameter list: a definition
// below that drifts from it is a compile error (C linkage allows no overloads). Declaring one that a
// legacy build does not define exports nothing.
#define VG_MOCK_DECLARE(requirement, name, params, args) VG_MOCK_EXPORT nvmlReturn_t name params;
VG_NVML_FUNCTIONS(VG_MOCK_DECLARE)
#undef VG_MOCK_DECLARE
VG_MOCK_EXPORT const char *nvmlErrorString(nvmlReturn_t result);

// Extension symbols (ours, not NVML's); vramguard's loader looks them up with dlsym when present.
VG_MOCK_EXPORT const char *vramguardMockInitError(void);
VG_MOCK_EXPORT const char *vramguardMockWarnings(void);
VG_MOCK_EXPORT int vramguardMockIsMock(void);

namespace vgmock {
namespace {

const std::size_t kMaxWarnings = 20;
const std::uint64_t kPollIntervalNs = 1000000;       // look at the control file at most once per millisecond
const std::size_t kMaxControlLineBytes = 1u << 20;  // longer control lines are skipped with a warning

std::uint64_t clockNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t saturatingSub(std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; }

std::uint64_t saturatingAdd(std::uint64_t a, std::uint64_t b) {
  std::uint64_t sum;
  return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}

// ---- Control file --------------------------------------------------------------------------------------

// Follows the control file: other processes append one JSON op per line (each line in one write call).
// Only complete lines (ending in '\n') are taken; a partial last line is read again once it is complete.
// The file may not exist yet. When it is found smaller than what was read, replaced by another file, or
// no longer has a line break where the last line read ended, it is read again from the start.
class ControlFile {
 public:
  struct Line {
    std::uint64_t number;  // 1-based, counted from the start of the file
    std::string text;
  };

  explicit ControlFile(std::string path) : path_(std::move(path)) {}

  const std::string &path() const { return path_; }

  void readNewLines(std::vector<Line> *lines, std::vector<std::string> *warnings) {
    struct stat st;
    if (stat(path_.c_str(), &st) != 0) {
      known_ = false;  // absent (perhaps not created yet): start from the beginning once it appears
      return;
    }
    if (!S_ISREG(st.st_mode)) return;
    if (!known_ || st.st_dev != device_ || st.st_ino != inode_) {
      restart();
      known_ = true;
      device_ = st.st_dev;
      inode_ = st.st_ino;
    } else if (static_cast<std::uint64_t>(st.st_size) < offset_) {
      restart();  // truncated
    }
    const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    if (size == offset_) return;
    // Only a partial line is left past offset_: read again once the file changes.
    if (size == scannedSize_ && st.st_mtim.tv_sec == scannedMtime_.tv_sec &&
        st.st_mtim.tv_nsec == scannedMtime_.tv_nsec) {
      return;
    }
    scannedSize_ = size;
    scannedMtime_ = st.st_mtim;

    const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    if (offset_ > 0) {
      char previous = 0;
      if (pread(fd, &previous, 1, static_cast<off_t>(offset_ - 1)) != 1 || previous != '\n') restart();  // rewritten
    }
    std::string pending;  // bytes from offset_ on that do not yet end in '\n'
    std::uint64_t readAt = offset_;
    char buf[65536];
    for (;;) {
      const ssize_t n = pread(fd, buf, sizeof buf, static_cast<off_t>(readAt));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      readAt += static_cast<std::uint64_t>(n);
      pending.append(buf, static_cast<std::size_t>(n));
      std::size_t start = 0;
      for (std::size_t newline; (newline = pending.find('\n', start)) != std::string::npos; start = newline + 1) {
        ++lineNumber_;
        if (skippingLongLine_) {
          skippingLongLine_ = false;  // the end of a line already reported as too long
        } else {
          lines->push_back(Line{lineNumber_, pending.substr(start, newline - start)});
        }
        offset_ += newline + 1 - start;
      }
      pending.erase(0, start);
      if (pending.size() > kMaxControlLineBytes) {
        if (!skippingLongLine_) {
          warnings->push_back("control " + path_ + ":" + std::to_string(lineNumber_ + 1) + ": line longer than " +
                              std::to_string(kMaxControlLineBytes) + " bytes skipped");
        }
        skippingLongLine_ = true;
        offset_ += pending.size();
        pending.clear();
      }
    }
    close(fd);
  }

 private:
  void restart() {
    offset_ = 0;
    lineNumber_ = 0;
    skippingLongLine_ = false;
    scannedSize_ = UINT64_MAX;
  }

  std::string path_;
  bool known_ = false;
  dev_t device_ = 0;
  ino_t inode_ = 0;
  std::uint64_t offset_ = 0;  // everything before it has been taken (it follows a '\n')
  std::uint64_t lineNumber_ = 0;
  bool skippingLongLine_ = false;
  std::uint64_t scannedSize_ = UINT64_MAX;  // size and mtime when last read (to skip re-reading a partial line)
  timespec scannedMtime_ = {0, 0};
};

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

// ---- State ---------------------------------------------------------------------------------------------

using CallCounts = std::array<std::uint64_t, kFnCount>;

// What exists between the nvmlInit_v2 that loads the scenario and the nvmlShutdown that balances it.
struct Session {
  Session(Scenario loaded, std::string controlPath)
      : scenario(std::move(loaded)), control(std::move(controlPath)), startNs(clockNs(CLOCK_MONOTONIC)) {
    rules = scenario.errors;
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
Globals &globals() {
  static Globals *const instance = new Globals();
  return *instance;
}

void addWarning(Globals &g, std::string warning) {
  g.warnings.push_back(std::move(warning));
  while (g.warnings.size() > kMaxWarnings) g.warnings.pop_front();
}

// Device handles point into this array: handle i is &gHandleSlots[i], valid for the life of the process.
unsigned char gHandleSlots[kMaxDevices];

nvmlDevice_t handleFor(std::size_t index) { return reinterpret_cast<nvmlDevice_t>(&gHandleSlots[index]); }

// The device index of handle, or -1 when it is not a handle of one of the count current devices.
int indexOfHandle(nvmlDevice_t handle, std::size_t count) {
  const std::uintptr_t p = reinterpret_cast<std::uintptr_t>(handle);
  const std::uintptr_t base = reinterpret_cast<std::uintptr_t>(&gHandleSlots[0]);
  if (p < base || p - base >= count) return -1;
  return static_cast<int>(p - base);
}

std::string describeRule(const ErrorRule &rule) {
  const char *name = returnCodeName(rule.code);
  std::string code = name ? "NVML_ERROR_" + std::string(name) : std::to_string(rule.code);
  return code + (rule.scenarioIndex >= 0 ? " (scenario errors[" + std::to_string(rule.scenarioIndex) + "])"
                                         : " (injectError op)");
}

// Consumes one firing of the first rule matching (fn, deviceIndex); returns whether one matched.
bool takeInjectedError(Globals &g, Session &s, Fn fn, int deviceIndex, nvmlReturn_t *code,
                       std::string *description = nullptr) {
  for (auto it = s.rules.begin(); it != s.rules.end(); ++it) {
    if (!it->matches(fn, deviceIndex)) continue;
    *code = it->code;
    if (description) *description = describeRule(*it);
    if (fn == Fn::nvmlInit_v2 && it->scenarioIndex >= 0) {
      ++g.initRuleFirings[std::make_pair(s.scenario.path, it->scenarioIndex)];
    }
    if (it->remaining && --*it->remaining == 0) s.rules.erase(it);
    return true;
  }
  return false;
}

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

// Start of every call made while initialized: count it, then bring the state up to date (timeline
// entries now due; at most once per millisecond, the control file and followed pids).
void enterCall(Globals &g, Session &s, Fn fn) {
  const std::size_t fnIndex = static_cast<std::size_t>(fn);
  ++s.calls[fnIndex];
  const std::string &thread = threadName();
  auto counts = s.callsByThread.find(thread);
  if (counts == s.callsByThread.end()) counts = s.callsByThread.emplace(thread, CallCounts{}).first;
  ++counts->second[fnIndex];

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

// ---- Call wrappers -------------------------------------------------------------------------------------
// Checks, in order: initialized, then error injection, then whether the era's driver has the function,
// then (device calls) a valid handle and a device that is not lost; then the body runs.

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
    if (!fnExistsInEra(fn, s->scenario.era)) return NVML_ERROR(FUNCTION_NOT_FOUND);
    return body(*s);
  } catch (...) {
    return NVML_ERROR(UNKNOWN);
  }
}

template <typename Body>
nvmlReturn_t deviceCall(Fn fn, nvmlDevice_t handle, Body &&body) {
  try {
    Globals &g = globals();
    std::lock_guard<std::mutex> lock(g.mutex);
    Session *s = g.session.get();
    if (!s) return NVML_ERROR(UNINITIALIZED);
    enterCall(g, *s, fn);
    const int index = indexOfHandle(handle, s->scenario.devices.size());
    nvmlReturn_t injected;
    if (takeInjectedError(g, *s, fn, index, &injected)) return injected;
    if (!fnExistsInEra(fn, s->scenario.era)) return NVML_ERROR(FUNCTION_NOT_FOUND);
    if (index < 0) return NVML_ERROR(INVALID_ARGUMENT);
    Device &device = s->scenario.devices[static_cast<std::size_t>(index)];
    if (device.lost) return NVML_ERROR(GPU_IS_LOST);
    return body(*s, device);
  } catch (...) {
    return NVML_ERROR(UNKNOWN);
  }
}

// ---- Helpers for the bodies ----------------------------------------------------------------------------

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

enum class RecordLayout { V1, V2, V535 };

std::size_t recordSize(RecordLayout layout) {
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

#if !VG_MOCK_LEGACY_SYMBOLS
// What the _v3 entry points write in this era.
RecordLayout v3Layout(const Session &s) { return s.scenario.era == Era::V3_32 ? RecordLayout::V535 : RecordLayout::V2; }
#endif

}  // namespace
}  // namespace vgmock

using namespace vgmock;

// ---- Init and shutdown ---------------------------------------------------------------------------------

VG_MOCK_EXPORT nvmlReturn_t nvmlInit_v2(void) {
  try {
    Globals &g = globals();
    std::lock_guard<std::mutex> lock(g.mutex);
    nvmlReturn_t injected;
    std::string rule;
    if (g.session) {  // nested: counts like real NVML, state stays as it is
      enterCall(g, *g.session, Fn::nvmlInit_v2);
      if (takeInjectedError(g, *g.session, Fn::nvmlInit_v2, -1, &injected, &rule)) {
        g.initError = "nvmlInit_v2: injected " + rule;
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
      if (it->function == Fn::nvmlInit_v2 && it->remaining && used != g.initRuleFirings.end()) {
        if (*it->remaining <= used->second) {
          it = session->rules.erase(it);
          continue;
        }
        *it->remaining -= used->second;
      }
      ++it;
    }

    g.warnings.clear();
    enterCall(g, *session, Fn::nvmlInit_v2);  // applies timeline entries at 0 ms and the control file so far
    if (takeInjectedError(g, *session, Fn::nvmlInit_v2, -1, &injected, &rule)) {
      g.initError = "nvmlInit_v2: injected " + rule;
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

namespace {
nvmlReturn_t reportCudaDriverVersion(const Session &s, int *out) {
  if (!out) return NVML_ERROR(INVALID_ARGUMENT);
  *out = s.scenario.cudaDriverVersion;
  return NVML_SUCCESS;
}
}  // namespace

#if !VG_MOCK_LEGACY_SYMBOLS
VG_MOCK_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion) {
  return systemCall(Fn::nvmlSystemGetCudaDriverVersion_v2,
                    [&](Session &s) -> nvmlReturn_t { return reportCudaDriverVersion(s, cudaDriverVersion); });
}
#endif

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
    *device = handleFor(index);  // even for a lost device
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
    if (d.pciBusId->size() < sizeof pci->busIdLegacy) {
      std::snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%s", d.pciBusId->c_str());
    } else {
      std::snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04x:%02x:%02x.%x", domain, bus, slot, function);
    }
    pci->domain = domain;
    pci->bus = bus;
    pci->device = slot;
    pci->pciDeviceId = d.pciDeviceId;
    pci->pciSubSystemId = 0;
    return NVML_SUCCESS;
  });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
  return deviceCall(Fn::nvmlDeviceGetMemoryInfo, device, [&](Session &, Device &d) -> nvmlReturn_t {
    if (!memory) return NVML_ERROR(INVALID_ARGUMENT);
    // The v1 view counts the driver's reserved memory as used.
    const std::uint64_t used = saturatingAdd(d.memoryReserved, d.usedBytes());
    memory->total = d.memoryTotal;
    memory->used = used;
    memory->free = saturatingSub(d.memoryTotal, used);
    return NVML_SUCCESS;
  });
}

#if !VG_MOCK_LEGACY_SYMBOLS
VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
  return deviceCall(Fn::nvmlDeviceGetMemoryInfo_v2, device, [&](Session &, Device &d) -> nvmlReturn_t {
    if (!memory) return NVML_ERROR(INVALID_ARGUMENT);
    if (memory->version != nvmlMemory_v2) return NVML_ERROR(ARGUMENT_VERSION_MISMATCH);
    const std::uint64_t used = d.usedBytes();
    memory->total = d.memoryTotal;
    memory->reserved = d.memoryReserved;
    memory->used = used;
    memory->free = saturatingSub(saturatingSub(d.memoryTotal, d.memoryReserved), used);
    return NVML_SUCCESS;
  });
}
#endif

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
      case NVML_CLOCK_GRAPHICS:
      case NVML_CLOCK_SM: return copyNumber(d.smClockMhz, mhz);
      case NVML_CLOCK_MEM: return copyNumber(d.memoryClockMhz, mhz);
      default: return NVML_ERROR(NOT_SUPPORTED);
    }
  });
}

// ---- Running processes ---------------------------------------------------------------------------------

#define VG_MOCK_PROCESS_LIST(name, typeMask, layout)                                              \
  VG_MOCK_EXPORT nvmlReturn_t name(nvmlDevice_t device, unsigned int *infoCount, void *infos) {  \
    return deviceCall(Fn::name, device, [&](Session &s, Device &d) -> nvmlReturn_t {                              \
      (void)s;                                                                                    \
      return listProcesses(d, typeMask, layout, infoCount, infos);                                \
    });                                                                                           \
  }

VG_MOCK_PROCESS_LIST(nvmlDeviceGetComputeRunningProcesses, kTypeCompute, RecordLayout::V1)
VG_MOCK_PROCESS_LIST(nvmlDeviceGetGraphicsRunningProcesses, kTypeGraphics, RecordLayout::V1)
VG_MOCK_PROCESS_LIST(nvmlDeviceGetMPSComputeRunningProcesses, kTypeMps, RecordLayout::V1)
#if !VG_MOCK_LEGACY_SYMBOLS
VG_MOCK_PROCESS_LIST(nvmlDeviceGetComputeRunningProcesses_v2, kTypeCompute, RecordLayout::V2)
VG_MOCK_PROCESS_LIST(nvmlDeviceGetGraphicsRunningProcesses_v2, kTypeGraphics, RecordLayout::V2)
VG_MOCK_PROCESS_LIST(nvmlDeviceGetMPSComputeRunningProcesses_v2, kTypeMps, RecordLayout::V2)
VG_MOCK_PROCESS_LIST(nvmlDeviceGetComputeRunningProcesses_v3, kTypeCompute, v3Layout(s))
VG_MOCK_PROCESS_LIST(nvmlDeviceGetGraphicsRunningProcesses_v3, kTypeGraphics, v3Layout(s))
VG_MOCK_PROCESS_LIST(nvmlDeviceGetMPSComputeRunningProcesses_v3, kTypeMps, v3Layout(s))
#endif
#undef VG_MOCK_PROCESS_LIST

// The driver takes one utilization sample per processUtilizationPeriodMs, stamped with the start of its
// period (CLOCK_REALTIME microseconds); processes with all-zero utilization have no samples.
VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                                            nvmlProcessUtilizationSample_t *utilization,
                                                            unsigned int *processSamplesCount,
                                                            unsigned long long lastSeenTimeStamp) {
  return deviceCall(Fn::nvmlDeviceGetProcessUtilization, device, [&](Session &s, Device &d) -> nvmlReturn_t {
    if (!processSamplesCount) return NVML_ERROR(INVALID_ARGUMENT);
    const std::uint64_t periodUs = std::uint64_t{s.scenario.processUtilizationPeriodMs} * 1000u;
    const std::uint64_t sampleUs = clockNs(CLOCK_REALTIME) / 1000u / periodUs * periodUs;
    std::vector<const Process *> sampled;
    for (const Process &process : d.processes) {
      if (process.hasUtilization()) sampled.push_back(&process);
    }
    if (sampled.empty() || sampleUs <= lastSeenTimeStamp) return NVML_ERROR(NOT_FOUND);
    const unsigned int needed = static_cast<unsigned int>(sampled.size());
    if (!utilization || *processSamplesCount < needed) {
      *processSamplesCount = needed;
      return NVML_ERROR(INSUFFICIENT_SIZE);
    }
    for (std::size_t i = 0; i < sampled.size(); ++i) {
      nvmlProcessUtilizationSample_t sample;
      std::memset(&sample, 0, sizeof sample);
      sample.pid = sampled[i]->pid;
      sample.timeStamp = sampleUs;
      sample.smUtil = sampled[i]->smUtilPercent;
      sample.memUtil = sampled[i]->memUtilPercent;
      sample.encUtil = sampled[i]->encUtilPercent;
      sample.decUtil = sampled[i]->decUtilPercent;
      std::memcpy(&utilization[i], &sample, sizeof sample);
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

// ---- Signature checks ----------------------------------------------------------------------------------
// Each entry point must have exactly the type vramguard's loader casts its dlsym result to.

#define VG_MOCK_CHECK_SIGNATURE(requirement, name, params, args)                 \
  static_assert(std::is_same<decltype(&::name), vg_fn_##name>::value, #name " " \
                                                                      "must match vg_fn_" #name);
VG_NVML_FUNCTIONS(VG_MOCK_CHECK_SIGNATURE)
#undef VG_MOCK_CHECK_SIGNATURE
static_assert(std::is_same<decltype(&::nvmlErrorString), vg_fn_nvmlErrorString>::value,
              "nvmlErrorString must match vg_fn_nvmlErrorString");

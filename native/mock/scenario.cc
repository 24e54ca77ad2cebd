#include "scenario.h"

#include "scenario_fields.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <initializer_list>
#include <utility>

namespace vgmock {

// ---- Model ---------------------------------------------------------------------------------------------

Device Device::withDefaults(std::size_t index) {
  Device device;
  char buf[64];
  device.name = "Mock GPU " + std::to_string(index);
  std::snprintf(buf, sizeof buf, "GPU-00000000-0000-0000-0000-%012zx", index);
  device.uuid = std::string(buf);
  std::snprintf(buf, sizeof buf, "00000000:%02zX:00.0", (index + 1) & 0xFF);
  device.pciBusId = std::string(buf);
  return device;
}

std::uint64_t Device::usedBytes() const {
  std::uint64_t used = memoryOtherUsed;
  // A MIG-enabled GPU's own handle reports the aggregate (NVML's reference for nvmlDeviceGetMemoryInfo_v2),
  // so the memory its MIG devices use that no process accounts for is in it too.
  if (migMode == 1u) {
    for (const std::optional<MigInstance> &instance : migInstances) {
      if (instance && __builtin_add_overflow(used, instance->memoryOtherUsed, &used)) return UINT64_MAX;
    }
  }
  for (const Process &process : processes) {
    if (process.usedBytes && __builtin_add_overflow(used, *process.usedBytes, &used)) return UINT64_MAX;
  }
  return used;
}

Process *Device::findProcess(std::uint32_t pid) {
  for (Process &process : processes) {
    if (process.pid == pid) return &process;
  }
  return nullptr;
}

std::string migUuid(std::size_t deviceIndex, const MigInstance &instance) {
  if (instance.uuid) return *instance.uuid;
  char buf[64];
  std::snprintf(buf, sizeof buf, "MIG-00000000-0000-%04zx-%04x-%012x", deviceIndex & 0xFFFF,
                instance.gpuInstanceId & 0xFFFF, instance.computeInstanceId);
  return buf;
}

Device migDeviceView(const Device &parent, std::size_t deviceIndex, const MigInstance &instance) {
  Device view = parent;
  view.uuid = migUuid(deviceIndex, instance);
  view.name = instance.name ? *instance.name
                            : (parent.name ? *parent.name : std::string("Mock GPU")) + " MIG " +
                                  std::to_string(instance.gpuInstanceId) + "/" + std::to_string(instance.computeInstanceId);
  view.memoryTotal = instance.memoryTotal;
  view.memoryReserved = instance.memoryReserved;
  view.memoryOtherUsed = instance.memoryOtherUsed;
  view.migMode = std::nullopt;
  view.migInstances.clear();
  view.processes.clear();
  for (const Process &process : parent.processes) {
    if (runsIn(process, instance)) view.processes.push_back(process);
  }
  return view;
}

// ---- Paths ---------------------------------------------------------------------------------------------

std::string absolutePath(const std::string &path) {
  if (!path.empty() && path[0] == '/') return path;
  std::string cwd;
  std::vector<char> buf(4096);
  while (getcwd(buf.data(), buf.size()) == nullptr) {
    if (errno != ERANGE || buf.size() > (1u << 20)) return path;  // leave it relative: still usable
    buf.resize(buf.size() * 2);
  }
  cwd = buf.data();
  if (path.empty()) return cwd;
  return cwd == "/" ? "/" + path : cwd + "/" + path;
}

std::string directoryOf(const std::string &absolute) {
  const std::size_t slash = absolute.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return absolute.substr(0, slash);
}

std::string resolvePath(const std::string &base, const std::string &path) {
  if (!path.empty() && path[0] == '/') return path;
  return base == "/" ? "/" + path : base + "/" + path;
}

bool parsePciBusId(const std::string &text, unsigned *domain, unsigned *bus, unsigned *device, unsigned *function) {
  const std::size_t colon1 = text.find(':');
  if (colon1 < 4 || colon1 > 8 || text.size() != colon1 + 8) return false;
  if (text[colon1 + 3] != ':' || text[colon1 + 6] != '.') return false;
  auto hex = [&](std::size_t from, std::size_t count, unsigned *out) {
    unsigned value = 0;
    for (std::size_t i = from; i < from + count; ++i) {
      const int digit = json::hexDigit(text[i]);
      if (digit < 0) return false;
      value = value * 16 + static_cast<unsigned>(digit);
    }
    *out = value;
    return true;
  };
  return hex(0, colon1, domain) && hex(colon1 + 1, 2, bus) && hex(colon1 + 4, 2, device) &&
         hex(colon1 + 7, 1, function) && *function <= 7;
}

using namespace fields;  // the field readers (scenario_fields.h)


Op parseOp(const Value &value, const std::string &path, const OpContext &context) {
  requireObject(value, path);
  const Value *opName = value.find("op");
  if (!opName) throw InputError(path, "missing required key \"op\"");
  if (!opName->isString()) throw InputError(memberPath(path, "op"), "expected a string, got " + opName->describe());
  const std::string &name = opName->text;
  const std::string devicePath = memberPath(path, "device");
  const Value *device = value.find("device");
  Op op;
  auto requireDevice = [&]() {
    if (!device) throw InputError(path, "missing required key \"device\"");
    op.device = readDeviceIndex(*device, devicePath, context.deviceCount);
  };

  if (name == "setProcess") {
    op.kind = OpKind::SetProcess;
    requireDevice();
    const Value *pid = value.find("pid");
    if (!pid) throw InputError(path, "missing required key \"pid\"");
    op.patch = withoutKeys(value, {"op", "device"});
    Process scratch;  // type-checks every field now, so applying it later cannot fail on them
    applyProcessFields(op.patch, &scratch, path);
    op.pid = scratch.pid;
  } else if (name == "removeProcess") {
    op.kind = OpKind::RemoveProcess;
    static const char *const keys[] = {"op", "device", "pid", nullptr};
    checkKeys(value, path, keys);
    if (device) op.device = readDeviceIndex(*device, devicePath, context.deviceCount);
    const Value *pid = value.find("pid");
    if (!pid) throw InputError(path, "missing required key \"pid\"");
    op.pid = static_cast<std::uint32_t>(readUintInRange(*pid, memberPath(path, "pid"), 1, INT32_MAX));
  } else if (name == "setDevice") {
    op.kind = OpKind::SetDevice;
    requireDevice();
    op.patch = withoutKeys(value, {"op", "device"});
    Device scratch = Device::withDefaults(0);
    applyDeviceFields(op.patch, &scratch, path, false);
  } else if (name == "loseDevice" || name == "recoverDevice") {
    op.kind = name == "loseDevice" ? OpKind::LoseDevice : OpKind::RecoverDevice;
    static const char *const keys[] = {"op", "device", nullptr};
    checkKeys(value, path, keys);
    requireDevice();
  } else if (name == "injectError") {
    op.kind = OpKind::InjectError;
    op.rule = parseErrorRule(value, path, context.deviceCount, true);
  } else if (name == "clearErrors") {
    op.kind = OpKind::ClearErrors;
    static const char *const keys[] = {"op", "function", "device", nullptr};
    checkKeys(value, path, keys);
    if (const Value *function = value.find("function")) op.function = readFunction(*function, memberPath(path, "function"));
    if (device) op.device = readDeviceIndex(*device, devicePath, context.deviceCount);
  } else if (name == "writeStats") {
    op.kind = OpKind::WriteStats;
    static const char *const keys[] = {"op", "path", nullptr};
    checkKeys(value, path, keys);
    const Value *file = value.find("path");
    if (!file) throw InputError(path, "missing required key \"path\"");
    if (!file->isString() || file->text.empty() || file->text.find('\0') != std::string::npos) {
      throw InputError(memberPath(path, "path"), "expected a file path, got " + file->describe());
    }
    op.path = resolvePath(context.baseDirectory, file->text);
  } else {
    throw InputError(memberPath(path, "op"), "unknown op " + opName->describe() +
                                             " (expected setProcess, removeProcess, setDevice, loseDevice, "
                                             "recoverDevice, injectError, clearErrors or writeStats)");
  }
  return op;
}

std::string applyDeviceOp(const Op &op, std::vector<Device> *devices) {
  std::vector<Device> next = *devices;
  try {
    switch (op.kind) {
      case OpKind::SetProcess: {
        Device &device = next.at(static_cast<std::size_t>(op.device));
        if (Process *existing = device.findProcess(op.pid)) {
          applyProcessFields(op.patch, existing, "$");
        } else {
          Process process;
          applyProcessFields(op.patch, &process, "$");
          device.processes.push_back(process);
        }
        break;
      }
      case OpKind::RemoveProcess:
        for (std::size_t i = 0; i < next.size(); ++i) {
          if (op.device >= 0 && static_cast<std::size_t>(op.device) != i) continue;
          std::vector<Process> &list = next[i].processes;
          list.erase(std::remove_if(list.begin(), list.end(), [&](const Process &p) { return p.pid == op.pid; }),
                     list.end());
        }
        break;
      case OpKind::SetDevice:
        applyDeviceFields(op.patch, &next.at(static_cast<std::size_t>(op.device)), "$", false);
        break;
      case OpKind::LoseDevice:
      case OpKind::RecoverDevice:
        next.at(static_cast<std::size_t>(op.device)).lost = op.kind == OpKind::LoseDevice;
        break;
      default:
        return "not a device op";
    }
    checkDevices(next);
  } catch (const InputError &e) {
    return e.describe();
  } catch (const std::exception &e) {
    return e.what();
  }
  devices->swap(next);
  return "";
}

// ---- Scenario files ------------------------------------------------------------------------------------

namespace {

const char *const kScenarioKeys[] = {"driverVersion", "nvmlVersion",     "cudaDriverVersion", "era", "controlFile",
                                     "processUtilizationPeriodMs", "devices", "errors", "timeline", "libcudaPresent",
                                     "errorSeed", "unprivileged", nullptr};
const char *const kTimelineKeys[] = {"atMs", "ops", nullptr};
const std::size_t kMaxScenarioBytes = 64u << 20;

// Reads a whole regular file. Throws std::runtime_error with a short reason.
std::string readFile(const std::string &path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    throw std::runtime_error("not a regular file");
  }
  if (static_cast<std::uint64_t>(st.st_size) > kMaxScenarioBytes) {
    close(fd);
    throw std::runtime_error("larger than " + std::to_string(kMaxScenarioBytes >> 20) + " MiB");
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      close(fd);
      throw std::runtime_error(std::string("cannot read: ") + std::strerror(saved));
    }
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxScenarioBytes) {
      close(fd);
      throw std::runtime_error("larger than " + std::to_string(kMaxScenarioBytes >> 20) + " MiB");
    }
  }
  close(fd);
  return text;
}

// The scenario's era must be this library's: each era is its own library (its exports differ).
Era readEra(const Value &value, const std::string &path) {
  const EraTraits &own = eraTraits(buildEra());
  Era era;
  if (!value.isString() || !eraByName(value.text, &era)) {
    throw InputError(path, "expected a driver era (\"418\", \"470\", \"510\", \"535.54\", \"535.98\", \"535.104\", "
                           "\"550\" or \"580\"), got " + value.describe());
  }
  if (era != own.era) {
    throw InputError(path, "era " + value.describe() + " needs the mock library built for it (mock-eras/libnvidia-ml-" +
                               value.text + ".so.1); this library imitates era \"" + own.name + "\"");
  }
  return era;
}

Scenario parseScenario(const Value &root, const std::string &absolute) {
  Scenario scenario;
  scenario.path = absolute;
  scenario.directory = directoryOf(absolute);
  requireObject(root, "$");
  checkKeys(root, "$", kScenarioKeys);

  scenario.era = buildEra();
  if (const Value *v = root.find("era")) scenario.era = readEra(*v, "$.era");
  scenario.driverVersion = eraTraits(scenario.era).driverVersion;
  scenario.cudaDriverVersion = eraTraits(scenario.era).cudaDriverVersion;
  if (const Value *v = root.find("libcudaPresent")) scenario.libcudaPresent = readBool(*v, "$.libcudaPresent");
  if (const Value *v = root.find("errorSeed")) scenario.errorSeed = readUint64(*v, "$.errorSeed");
  if (const Value *v = root.find("unprivileged")) scenario.unprivileged = readBool(*v, "$.unprivileged");
  if (const Value *v = root.find("driverVersion")) {
    scenario.driverVersion = readText(*v, "$.driverVersion", NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE);
  }
  scenario.nvmlVersion = "12." + scenario.driverVersion;
  if (const Value *v = root.find("nvmlVersion")) {
    scenario.nvmlVersion = readText(*v, "$.nvmlVersion", NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE);
  } else if (scenario.nvmlVersion.size() >= NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE) {
    throw InputError("$.driverVersion", "is too long to derive nvmlVersion from; set nvmlVersion too");
  }
  if (const Value *v = root.find("cudaDriverVersion")) {
    scenario.cudaDriverVersion = static_cast<int>(readUintInRange(*v, "$.cudaDriverVersion", 0, INT32_MAX));
  }
  if (const Value *v = root.find("controlFile")) {
    if (!v->isString() || v->text.empty() || v->text.find('\0') != std::string::npos) {
      throw InputError("$.controlFile", "expected a file path, got " + v->describe());
    }
    scenario.controlFile = resolvePath(scenario.directory, v->text);
  }
  if (const Value *v = root.find("processUtilizationPeriodMs")) {
    scenario.processUtilizationPeriodMs =
        static_cast<std::uint32_t>(readUintInRange(*v, "$.processUtilizationPeriodMs", 1, 3600000));
  }

  const Value *devices = root.find("devices");
  if (!devices) throw InputError("$", "missing required key \"devices\" (an array; may be empty)");
  requireArray(*devices, "$.devices");
  if (devices->items.size() > kMaxDevices) {
    throw InputError("$.devices", "has " + std::to_string(devices->items.size()) + " devices; the mock supports at most " +
                                      std::to_string(kMaxDevices));
  }
  for (std::size_t i = 0; i < devices->items.size(); ++i) {
    const std::string path = indexPath("$.devices", i);
    const Value &item = requireObject(devices->items[i], path);
    const Value *memory = item.find("memory");
    if (!memory) throw InputError(path, "missing required key \"memory\" (with \"total\" in bytes)");
    if (memory->isObject() && !memory->find("total")) {
      throw InputError(path + ".memory", "missing required key \"total\" (bytes)");
    }
    Device device = Device::withDefaults(i);
    applyDeviceFields(item, &device, path, true);
    scenario.devices.push_back(std::move(device));
  }
  checkDevices(scenario.devices);

  if (const Value *errors = root.find("errors")) {
    requireArray(*errors, "$.errors");
    for (std::size_t i = 0; i < errors->items.size(); ++i) {
      ErrorRule rule = parseErrorRule(errors->items[i], indexPath("$.errors", i), scenario.devices.size(), false);
      rule.scenarioIndex = static_cast<int>(i);
      scenario.errors.push_back(rule);
    }
  }

  if (const Value *timeline = root.find("timeline")) {
    requireArray(*timeline, "$.timeline");
    OpContext context;
    context.deviceCount = scenario.devices.size();
    context.baseDirectory = scenario.directory;
    for (std::size_t i = 0; i < timeline->items.size(); ++i) {
      const std::string path = indexPath("$.timeline", i);
      const Value &item = requireObject(timeline->items[i], path);
      checkKeys(item, path, kTimelineKeys);
      TimelineEntry entry;
      entry.index = i;
      const Value *atMs = item.find("atMs");
      if (!atMs) throw InputError(path, "missing required key \"atMs\"");
      entry.atMs = readUint64(*atMs, path + ".atMs");
      const Value *ops = item.find("ops");
      if (!ops) throw InputError(path, "missing required key \"ops\"");
      requireArray(*ops, path + ".ops");
      for (std::size_t j = 0; j < ops->items.size(); ++j) {
        entry.ops.push_back(parseOp(ops->items[j], indexPath(path + ".ops", j), context));
      }
      scenario.timeline.push_back(std::move(entry));
    }
    std::stable_sort(scenario.timeline.begin(), scenario.timeline.end(),
                     [](const TimelineEntry &a, const TimelineEntry &b) { return a.atMs < b.atMs; });
  }
  return scenario;
}

}  // namespace

Scenario loadScenario(const std::string &path) {
  const std::string absolute = absolutePath(path);
  std::string text;
  try {
    text = readFile(absolute);
  } catch (const std::exception &e) {
    throw std::runtime_error("scenario " + absolute + ": " + e.what());
  }
  return parseScenarioText(text, absolute);
}

Scenario parseScenarioText(const std::string &text, const std::string &absolute) {
  const std::string prefix = "scenario " + absolute;
  Value root;
  json::ParseError syntax;
  if (!json::parse(text, &root, &syntax)) {
    throw std::runtime_error(prefix + ":" + std::to_string(syntax.line) + ":" + std::to_string(syntax.column) +
                             ": invalid JSON: " + syntax.message);
  }
  try {
    return parseScenario(root, absolute);
  } catch (const InputError &e) {
    throw std::runtime_error(prefix + ": " + e.describe());
  }
}

}  // namespace vgmock

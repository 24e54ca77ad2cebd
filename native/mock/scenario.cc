#include "scenario.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <utility>

namespace vgmock {

// ---- Functions -----------------------------------------------------------------------------------------

namespace {

const char *const kFnNames[kFnCount] = {
#define VG_MOCK_FN_NAME(requirement, name, params, args) #name,
    VG_NVML_FUNCTIONS(VG_MOCK_FN_NAME)
#undef VG_MOCK_FN_NAME
    "nvmlErrorString",
};

}  // namespace

const char *fnName(Fn fn) {
  const int index = static_cast<int>(fn);
  return index >= 0 && index < kFnCount ? kFnNames[index] : "?";
}

bool fnByName(const std::string &name, Fn *out) {
  for (int i = 0; i < kFnCount; ++i) {
    if (name == kFnNames[i]) {
      *out = static_cast<Fn>(i);
      return true;
    }
  }
  return false;
}

bool fnTakesDevice(Fn fn) {
  return std::strncmp(fnName(fn), "nvmlDevice", 10) == 0 && fn != Fn::nvmlDeviceGetCount_v2;
}

const char *eraName(Era era) {
  switch (era) {
    case Era::Current: return "current";
    case Era::V3_32: return "v3-32";
    case Era::NoMemoryV2: return "no-memory-v2";
    case Era::V1Only: return "v1-only";
  }
  return "?";
}

bool fnExistsInEra(Fn fn, Era era) {
  if (era == Era::Current || era == Era::V3_32) return true;
  if (fn == Fn::nvmlDeviceGetMemoryInfo_v2) return false;
  if (era == Era::NoMemoryV2) return true;
  switch (fn) {  // Era::V1Only
    case Fn::nvmlSystemGetCudaDriverVersion_v2:
    case Fn::nvmlDeviceGetComputeRunningProcesses_v2:
    case Fn::nvmlDeviceGetComputeRunningProcesses_v3:
    case Fn::nvmlDeviceGetGraphicsRunningProcesses_v2:
    case Fn::nvmlDeviceGetGraphicsRunningProcesses_v3:
    case Fn::nvmlDeviceGetMPSComputeRunningProcesses_v2:
    case Fn::nvmlDeviceGetMPSComputeRunningProcesses_v3:
      return false;
    default:
      return true;
  }
}

// ---- Return codes --------------------------------------------------------------------------------------

const char *returnCodeName(nvmlReturn_t code) {
  switch (code) {
#define VG_MOCK_CODE_NAME(name, value) \
  case value: return #name;
    VG_NVML_RETURN_CODES(VG_MOCK_CODE_NAME)
#undef VG_MOCK_CODE_NAME
    default: return nullptr;
  }
}

const char *returnCodeText(nvmlReturn_t code) {
  switch (code) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR(UNINITIALIZED): return "Uninitialized";
    case NVML_ERROR(INVALID_ARGUMENT): return "Invalid Argument";
    case NVML_ERROR(NOT_SUPPORTED): return "Not Supported";
    case NVML_ERROR(NO_PERMISSION): return "Insufficient Permissions";
    case NVML_ERROR(ALREADY_INITIALIZED): return "Already Initialized";
    case NVML_ERROR(NOT_FOUND): return "Not Found";
    case NVML_ERROR(INSUFFICIENT_SIZE): return "Insufficient Size";
    case NVML_ERROR(INSUFFICIENT_POWER): return "Insufficient External Power";
    case NVML_ERROR(DRIVER_NOT_LOADED): return "Driver Not Loaded";
    case NVML_ERROR(TIMEOUT): return "Timeout";
    case NVML_ERROR(IRQ_ISSUE): return "Interrupt Request Issue";
    case NVML_ERROR(LIBRARY_NOT_FOUND): return "NVML Shared Library Not Found";
    case NVML_ERROR(FUNCTION_NOT_FOUND): return "Function Not Found";
    case NVML_ERROR(CORRUPTED_INFOROM): return "Corrupted infoROM";
    case NVML_ERROR(GPU_IS_LOST): return "GPU is lost";
    case NVML_ERROR(RESET_REQUIRED): return "GPU requires restart";
    case NVML_ERROR(OPERATING_SYSTEM): return "The operating system has blocked the request";
    case NVML_ERROR(LIB_RM_VERSION_MISMATCH): return "RM has detected an NVML/RM version mismatch";
    case NVML_ERROR(IN_USE): return "In use by another client";
    case NVML_ERROR(MEMORY): return "Insufficient Memory";
    case NVML_ERROR(NO_DATA): return "No data";
    case NVML_ERROR(VGPU_ECC_NOT_ENABLED): return "ECC is not enabled on the vGPU";
    case NVML_ERROR(INSUFFICIENT_RESOURCES): return "Insufficient resources";
    case NVML_ERROR(FREQ_NOT_SUPPORTED): return "Frequency not supported";
    case NVML_ERROR(ARGUMENT_VERSION_MISMATCH): return "Argument version mismatch";
    case NVML_ERROR(DEPRECATED): return "Deprecated";
    case NVML_ERROR(NOT_READY): return "Not ready";
    case NVML_ERROR(GPU_NOT_FOUND): return "GPU not found";
    case NVML_ERROR(INVALID_STATE): return "Invalid state";
    default: return "Unknown Error";
  }
}

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

// ---- Field readers -------------------------------------------------------------------------------------

namespace {

using json::Value;

std::string indexPath(const std::string &path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }
std::string memberPath(const std::string &path, const std::string &key) { return path + json::pathKey(key); }

const Value &requireObject(const Value &value, const std::string &path) {
  if (!value.isObject()) throw InputError(path, "expected an object, got " + value.describe());
  return value;
}

const Value &requireArray(const Value &value, const std::string &path) {
  if (!value.isArray()) throw InputError(path, "expected an array, got " + value.describe());
  return value;
}

// Every key of object must be in allowed (a nullptr-terminated list).
void checkKeys(const Value &object, const std::string &path, const char *const *allowed) {
  for (const json::Member &m : object.members) {
    bool known = false;
    for (const char *const *key = allowed; *key; ++key) known = known || m.key == *key;
    if (known) continue;
    std::string list;
    for (const char *const *key = allowed; *key; ++key) list += std::string(list.empty() ? "" : ", ") + *key;
    throw InputError(memberPath(path, m.key), "unknown key (expected one of: " + list + ")");
  }
}

std::uint64_t readUint64(const Value &value, const std::string &path) {
  std::uint64_t out;
  if (value.asUint64(&out)) return out;
  if (value.type == Value::Type::Number && value.text.find_first_of(".eE") == std::string::npos &&
      !value.negative) {
    throw InputError(path, "expected a non-negative integer of at most 18446744073709551615, got " + value.describe());
  }
  throw InputError(path, "expected a non-negative integer, got " + value.describe());
}

std::uint64_t readUintInRange(const Value &value, const std::string &path, std::uint64_t min, std::uint64_t max) {
  std::uint64_t out;
  if (!value.asUint64(&out) || out < min || out > max) {
    throw InputError(path, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                               ", got " + value.describe());
  }
  return out;
}

std::uint32_t readUint32(const Value &value, const std::string &path) {
  return static_cast<std::uint32_t>(readUintInRange(value, path, 0, UINT32_MAX));
}

std::uint32_t readPercent(const Value &value, const std::string &path) {
  return static_cast<std::uint32_t>(readUintInRange(value, path, 0, 100));
}

bool readBool(const Value &value, const std::string &path) {
  if (!value.isBool()) throw InputError(path, "expected true or false, got " + value.describe());
  return value.boolean;
}

// A non-empty string without NUL characters that fits NVML's buffer of bufferSize bytes (NUL included).
std::string readText(const Value &value, const std::string &path, std::size_t bufferSize) {
  if (!value.isString()) throw InputError(path, "expected a string, got " + value.describe());
  if (value.text.empty()) throw InputError(path, "must not be empty");
  if (value.text.find('\0') != std::string::npos) throw InputError(path, "must not contain NUL characters");
  if (value.text.size() >= bufferSize) {
    throw InputError(path, "is " + std::to_string(value.text.size()) + " bytes long; NVML's buffer holds at most " +
                               std::to_string(bufferSize - 1));
  }
  return value.text;
}

// Reads value with read() unless it is null, which yields nullopt.
template <typename T, typename Reader>
std::optional<T> readNullable(const Value &value, const std::string &path, Reader read) {
  if (value.isNull()) return std::nullopt;
  return read(value, path);
}

std::string readPciBusId(const Value &value, const std::string &path) {
  const std::string text = readText(value, path, NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE);
  unsigned domain, bus, device, function;
  if (!parsePciBusId(text, &domain, &bus, &device, &function)) {
    throw InputError(path, "expected a PCI bus id like \"00000000:18:00.0\" (domain:bus:device.function in hex), got " +
                               value.describe());
  }
  return text;
}

unsigned readProcessType(const Value &value, const std::string &path) {
  if (value.isString()) {
    if (value.text == "compute") return kTypeCompute;
    if (value.text == "graphics") return kTypeGraphics;
    if (value.text == "mps") return kTypeMps;
    if (value.text == "compute+graphics") return kTypeCompute | kTypeGraphics;
  }
  throw InputError(path, "expected \"compute\", \"graphics\", \"mps\" or \"compute+graphics\", got " + value.describe());
}

int readDeviceIndex(const Value &value, const std::string &path, std::size_t deviceCount) {
  std::uint64_t index;
  if (!value.asUint64(&index)) throw InputError(path, "expected a device index (an integer), got " + value.describe());
  if (index >= deviceCount) {
    throw InputError(path, "device index " + std::to_string(index) + " is out of range (the scenario has " +
                               std::to_string(deviceCount) + (deviceCount == 1 ? " device)" : " devices)"));
  }
  return static_cast<int>(index);
}

Fn readFunction(const Value &value, const std::string &path) {
  Fn fn;
  if (!value.isString()) throw InputError(path, "expected an NVML function name, got " + value.describe());
  if (!fnByName(value.text, &fn)) {
    throw InputError(path, "unknown function " + json::quote(value.text) +
                               " (expected one of the NVML functions vramguard calls, e.g. nvmlDeviceGetPowerUsage)");
  }
  return fn;
}

nvmlReturn_t readReturnCode(const Value &value, const std::string &path) {
  if (value.isString()) {
    std::string name = value.text;
    if (name == "SUCCESS" || name == "NVML_SUCCESS") throw InputError(path, "an injected error cannot be SUCCESS");
    if (name.compare(0, 11, "NVML_ERROR_") == 0) name = name.substr(11);
#define VG_MOCK_MATCH_CODE(codeName, codeValue) \
  if (name == #codeName && codeValue != 0) return codeValue;
    VG_NVML_RETURN_CODES(VG_MOCK_MATCH_CODE)
#undef VG_MOCK_MATCH_CODE
    throw InputError(path, "unknown NVML error " + value.describe() +
                               " (expected a name such as \"NOT_SUPPORTED\" or \"NVML_ERROR_GPU_IS_LOST\", or a number)");
  }
  std::int64_t number;
  if (value.asInt64(&number) && number != 0 && number >= INT32_MIN && number <= INT32_MAX) {
    return static_cast<nvmlReturn_t>(number);
  }
  throw InputError(path, "expected an NVML error name or a non-zero integer code, got " + value.describe());
}

// ---- Processes and devices -----------------------------------------------------------------------------

const char *const kProcessKeys[] = {"pid",           "usedBytes",      "type",           "gpuInstanceId",
                                    "computeInstanceId", "smUtilPercent", "memUtilPercent", "encUtilPercent",
                                    "decUtilPercent", "followPid",     nullptr};

// Sets the process fields present in object (pid included when present).
void applyProcessFields(const Value &object, Process *process, const std::string &path) {
  requireObject(object, path);
  checkKeys(object, path, kProcessKeys);
  for (const json::Member &m : object.members) {
    const std::string at = memberPath(path, m.key);
    const Value &v = m.value;
    if (m.key == "pid") {
      process->pid = static_cast<std::uint32_t>(readUintInRange(v, at, 1, INT32_MAX));
    } else if (m.key == "usedBytes") {
      process->usedBytes = readNullable<std::uint64_t>(v, at, readUint64);
    } else if (m.key == "type") {
      process->types = readProcessType(v, at);
    } else if (m.key == "gpuInstanceId") {
      process->gpuInstanceId = readUint32(v, at);
    } else if (m.key == "computeInstanceId") {
      process->computeInstanceId = readUint32(v, at);
    } else if (m.key == "smUtilPercent") {
      process->smUtilPercent = readPercent(v, at);
    } else if (m.key == "memUtilPercent") {
      process->memUtilPercent = readPercent(v, at);
    } else if (m.key == "encUtilPercent") {
      process->encUtilPercent = readPercent(v, at);
    } else if (m.key == "decUtilPercent") {
      process->decUtilPercent = readPercent(v, at);
    } else if (m.key == "followPid") {
      process->followPid = readBool(v, at);
    }
  }
}

const char *const kDeviceKeys[] = {"name",   "uuid",        "pciBusId",           "pciDeviceId", "memory",
                                   "utilization", "temperatureCelsius", "power", "clocks",      "lost",
                                   "processes", nullptr};
const char *const kMemoryKeys[] = {"total", "reserved", "otherUsed", nullptr};
const char *const kUtilizationKeys[] = {"gpuPercent", "memoryPercent", nullptr};
const char *const kPowerKeys[] = {"usageMilliwatts", "limitMilliwatts", nullptr};
const char *const kClockKeys[] = {"smMhz", "memoryMhz", nullptr};

// Sets the device fields present in object; nested objects merge, null groups clear all their leaves.
// "processes" is only accepted when processesAllowed (the scenario's device list, not setDevice).
void applyDeviceFields(const Value &object, Device *device, const std::string &path, bool processesAllowed) {
  requireObject(object, path);
  checkKeys(object, path, kDeviceKeys);
  for (const json::Member &m : object.members) {
    const std::string at = memberPath(path, m.key);
    const Value &v = m.value;
    if (m.key == "name") {
      device->name = readNullable<std::string>(
          v, at, [](const Value &x, const std::string &p) { return readText(x, p, NVML_DEVICE_NAME_V2_BUFFER_SIZE); });
    } else if (m.key == "uuid") {
      device->uuid = readNullable<std::string>(
          v, at, [](const Value &x, const std::string &p) { return readText(x, p, NVML_DEVICE_UUID_V2_BUFFER_SIZE); });
    } else if (m.key == "pciBusId") {
      device->pciBusId = readNullable<std::string>(v, at, readPciBusId);
    } else if (m.key == "pciDeviceId") {
      device->pciDeviceId = readUint32(v, at);
    } else if (m.key == "memory") {
      requireObject(v, at);
      checkKeys(v, at, kMemoryKeys);
      if (const Value *x = v.find("total")) device->memoryTotal = readUint64(*x, memberPath(at, "total"));
      if (const Value *x = v.find("reserved")) device->memoryReserved = readUint64(*x, memberPath(at, "reserved"));
      if (const Value *x = v.find("otherUsed")) device->memoryOtherUsed = readUint64(*x, memberPath(at, "otherUsed"));
    } else if (m.key == "utilization") {
      if (v.isNull()) {
        device->gpuUtilPercent = device->memoryUtilPercent = std::nullopt;
        continue;
      }
      requireObject(v, at);
      checkKeys(v, at, kUtilizationKeys);
      if (const Value *x = v.find("gpuPercent")) {
        device->gpuUtilPercent = readNullable<std::uint32_t>(*x, memberPath(at, "gpuPercent"), readPercent);
      }
      if (const Value *x = v.find("memoryPercent")) {
        device->memoryUtilPercent = readNullable<std::uint32_t>(*x, memberPath(at, "memoryPercent"), readPercent);
      }
    } else if (m.key == "temperatureCelsius") {
      device->temperatureCelsius = readNullable<std::uint32_t>(v, at, readUint32);
    } else if (m.key == "power") {
      if (v.isNull()) {
        device->powerUsageMilliwatts = device->powerLimitMilliwatts = std::nullopt;
        continue;
      }
      requireObject(v, at);
      checkKeys(v, at, kPowerKeys);
      if (const Value *x = v.find("usageMilliwatts")) {
        device->powerUsageMilliwatts = readNullable<std::uint32_t>(*x, memberPath(at, "usageMilliwatts"), readUint32);
      }
      if (const Value *x = v.find("limitMilliwatts")) {
        device->powerLimitMilliwatts = readNullable<std::uint32_t>(*x, memberPath(at, "limitMilliwatts"), readUint32);
      }
    } else if (m.key == "clocks") {
      if (v.isNull()) {
        device->smClockMhz = device->memoryClockMhz = std::nullopt;
        continue;
      }
      requireObject(v, at);
      checkKeys(v, at, kClockKeys);
      if (const Value *x = v.find("smMhz")) {
        device->smClockMhz = readNullable<std::uint32_t>(*x, memberPath(at, "smMhz"), readUint32);
      }
      if (const Value *x = v.find("memoryMhz")) {
        device->memoryClockMhz = readNullable<std::uint32_t>(*x, memberPath(at, "memoryMhz"), readUint32);
      }
    } else if (m.key == "lost") {
      device->lost = readBool(v, at);
    } else if (m.key == "processes") {
      if (!processesAllowed) {
        throw InputError(at, "setDevice cannot replace processes (use setProcess and removeProcess)");
      }
      requireArray(v, at);
      device->processes.clear();
      for (std::size_t i = 0; i < v.items.size(); ++i) {
        const std::string processPath = indexPath(at, i);
        requireObject(v.items[i], processPath);
        if (!v.items[i].find("pid")) throw InputError(processPath, "missing required key \"pid\"");
        Process process;
        applyProcessFields(v.items[i], &process, processPath);
        device->processes.push_back(process);  // duplicate pids are reported by checkDevices
      }
    }
  }
}

// ---- Error rules and ops -------------------------------------------------------------------------------

const char *const kErrorRuleKeys[] = {"function", "device", "return", "count", nullptr};
const char *const kInjectErrorKeys[] = {"op", "function", "device", "return", "count", nullptr};

ErrorRule parseErrorRule(const Value &object, const std::string &path, std::size_t deviceCount, bool isOp) {
  requireObject(object, path);
  checkKeys(object, path, isOp ? kInjectErrorKeys : kErrorRuleKeys);
  ErrorRule rule;
  const Value *function = object.find("function");
  if (!function) throw InputError(path, "missing required key \"function\"");
  rule.function = readFunction(*function, memberPath(path, "function"));
  const Value *code = object.find("return");
  if (!code) throw InputError(path, "missing required key \"return\"");
  rule.code = readReturnCode(*code, memberPath(path, "return"));
  if (const Value *device = object.find("device")) {
    if (!fnTakesDevice(rule.function)) {
      throw InputError(memberPath(path, "device"), std::string(fnName(rule.function)) + " does not act on a device");
    }
    rule.device = readDeviceIndex(*device, memberPath(path, "device"), deviceCount);
  }
  if (const Value *count = object.find("count")) {
    rule.remaining = readUintInRange(*count, memberPath(path, "count"), 1, UINT64_MAX);
  }
  return rule;
}

// object without the given keys (the op's own "op" and "device").
Value withoutKeys(const Value &object, std::initializer_list<const char *> keys) {
  Value out;
  out.type = Value::Type::Object;
  for (const json::Member &m : object.members) {
    bool drop = false;
    for (const char *key : keys) drop = drop || m.key == key;
    if (!drop) out.members.push_back(m);
  }
  return out;
}

}  // namespace

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

void checkDevices(const std::vector<Device> &devices) {
  for (std::size_t i = 0; i < devices.size(); ++i) {
    const Device &device = devices[i];
    const std::string devicePath = indexPath("$.devices", i);
    const std::string label = "device " + std::to_string(i) + (device.name ? " (" + json::quote(*device.name) + ")" : "");

    for (std::size_t a = 0; a < device.processes.size(); ++a) {
      for (std::size_t b = 0; b < a; ++b) {
        if (device.processes[a].pid == device.processes[b].pid) {
          throw InputError(indexPath(devicePath + ".processes", a) + ".pid",
                           "duplicate pid " + std::to_string(device.processes[a].pid) + " on " + label +
                               " (also at processes[" + std::to_string(b) + "])");
        }
      }
    }

    std::uint64_t processBytes = 0;
    bool overflow = false;
    for (const Process &process : device.processes) {
      if (process.usedBytes) overflow |= __builtin_add_overflow(processBytes, *process.usedBytes, &processBytes);
    }
    std::uint64_t committed = 0;
    overflow |= __builtin_add_overflow(device.memoryReserved, device.memoryOtherUsed, &committed);
    overflow |= __builtin_add_overflow(committed, processBytes, &committed);
    if (overflow || committed > device.memoryTotal) {
      throw InputError(devicePath + ".memory",
                       label + " is over-committed: reserved " + std::to_string(device.memoryReserved) +
                           " + otherUsed " + std::to_string(device.memoryOtherUsed) + " + process usedBytes " +
                           (overflow ? std::string("(overflows 64 bits)") : std::to_string(processBytes)) +
                           " exceeds total " + std::to_string(device.memoryTotal) + " bytes");
    }

    if (device.uuid) {
      for (std::size_t j = 0; j < i; ++j) {
        if (devices[j].uuid && *devices[j].uuid == *device.uuid) {
          throw InputError(devicePath + ".uuid", "duplicate uuid " + json::quote(*device.uuid) + " (device " +
                                                     std::to_string(j) + " has it too)");
        }
      }
    }
  }
}

// ---- Scenario files ------------------------------------------------------------------------------------

namespace {

const char *const kScenarioKeys[] = {"driverVersion", "nvmlVersion", "cudaDriverVersion", "era", "controlFile",
                                     "processUtilizationPeriodMs", "devices", "errors", "timeline", nullptr};
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

Era readEra(const Value &value, const std::string &path) {
  if (value.isString()) {
    for (Era era : {Era::Current, Era::V3_32, Era::NoMemoryV2, Era::V1Only}) {
      if (value.text == eraName(era)) return era;
    }
  }
  throw InputError(path, "expected \"current\", \"v3-32\", \"no-memory-v2\" or \"v1-only\", got " + value.describe());
}

const char *defaultDriverVersion(Era era) {
  switch (era) {
    case Era::Current: return "550.54.15";
    case Era::V3_32: return "535.54.03";
    case Era::NoMemoryV2: return "470.182.03";
    case Era::V1Only: return "418.226.00";
  }
  return "550.54.15";
}

Scenario parseScenario(const Value &root, const std::string &absolute) {
  Scenario scenario;
  scenario.path = absolute;
  scenario.directory = directoryOf(absolute);
  requireObject(root, "$");
  checkKeys(root, "$", kScenarioKeys);

  if (const Value *v = root.find("era")) scenario.era = readEra(*v, "$.era");
  scenario.driverVersion = defaultDriverVersion(scenario.era);
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
  const std::string prefix = "scenario " + absolute;
  std::string text;
  try {
    text = readFile(absolute);
  } catch (const std::exception &e) {
    throw std::runtime_error(prefix + ": " + e.what());
  }
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

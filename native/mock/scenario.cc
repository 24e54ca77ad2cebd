#include "scenario.h"

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

// ---- Functions -----------------------------------------------------------------------------------------

namespace {

const char *const kFnNames[kFnCount] = {
#define VG_MOCK_FN_NAME(requirement, name, params, args) #name,
    VG_NVML_FUNCTIONS(VG_MOCK_FN_NAME)
    VG_NVML_CLIENT_FUNCTIONS(VG_MOCK_FN_NAME)
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
  switch (fn) {
    case Fn::nvmlDeviceGetCount_v2:
    case Fn::nvmlDeviceGetCount:
    case Fn::nvmlDeviceGetHandleByUUID:
    case Fn::nvmlDeviceGetHandleByPciBusId_v2:
    case Fn::nvmlDeviceGetHandleByPciBusId:
      return false;
    default:
      return std::strncmp(fnName(fn), "nvmlDevice", 10) == 0;
  }
}

bool isInitFunction(Fn fn) { return fn == Fn::nvmlInit_v2 || fn == Fn::nvmlInit || fn == Fn::nvmlInitWithFlags; }

namespace {
// Default versions are releases of each branch; CUDA versions are what those drivers report.
const EraTraits kEras[] = {
    {Era::E418, "418", 418000, "418.226.00", 10010, false},
    {Era::E470, "470", 470000, "470.256.02", 11040, false},
    {Era::E510, "510", 510000, "510.108.03", 11060, false},
    {Era::E535_54, "535.54", 535054, "535.54.03", 12020, true},
    {Era::E535_98, "535.98", 535098, "535.98", 12020, false},
    {Era::E535_104, "535.104", 535104, "535.104.05", 12020, false},
    {Era::E550, "550", 550000, "550.54.15", 12040, false},
    {Era::E580, "580", 580000, "580.65.06", 13000, false},
};
}  // namespace

const EraTraits &eraTraits(Era era) {
  for (const EraTraits &traits : kEras) {
    if (traits.era == era) return traits;
  }
  return kEras[sizeof kEras / sizeof kEras[0] - 1];
}

Era eraByNumber(int number) {
  for (const EraTraits &traits : kEras) {
    if (traits.number == number) return traits.era;
  }
  return Era::E580;
}

bool eraByName(const std::string &name, Era *out) {
  for (const EraTraits &traits : kEras) {
    if (name == traits.name) {
      *out = traits.era;
      return true;
    }
  }
  return false;
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

// The texts NVIDIA's nvmlErrorString returns (as NVIDIA's own DCGM table has them, where it has them).
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
    case NVML_ERROR(RESET_REQUIRED): return "GPU requires reset";
    case NVML_ERROR(OPERATING_SYSTEM): return "GPU access blocked by the operating system";
    case NVML_ERROR(LIB_RM_VERSION_MISMATCH): return "Driver/library version mismatch";
    case NVML_ERROR(IN_USE): return "In use by another client";
    case NVML_ERROR(MEMORY): return "Insufficient Memory";
    case NVML_ERROR(NO_DATA): return "No data";
    case NVML_ERROR(VGPU_ECC_NOT_SUPPORTED): return "vGPU ECC Not Supported";
    case NVML_ERROR(INSUFFICIENT_RESOURCES): return "Insufficient Resources";
    case NVML_ERROR(FREQ_NOT_SUPPORTED): return "Frequency not supported";
    case NVML_ERROR(ARGUMENT_VERSION_MISMATCH): return "Argument version mismatch";
    case NVML_ERROR(DEPRECATED): return "Deprecated";
    case NVML_ERROR(NOT_READY): return "Not ready";
    case NVML_ERROR(GPU_NOT_FOUND): return "GPU not found";
    case NVML_ERROR(INVALID_STATE): return "Invalid state";
    case NVML_ERROR(RESET_TYPE_NOT_SUPPORTED): return "Reset type not supported";
    case NVML_ERROR(UNKNOWN): return "Unknown Error";
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
                               " (expected one of the NVML functions the mock serves, e.g. nvmlDeviceGetPowerUsage)");
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
                                    "decUtilPercent", "followPid",     "name",           nullptr};

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
    } else if (m.key == "name") {
      process->name = readNullable<std::string>(v, at, [](const Value &x, const std::string &p) { return readText(x, p, 256); });
    }
  }
}

const char *const kDeviceKeys[] = {"name",   "uuid",        "pciBusId",           "pciDeviceId", "memory",
                                   "utilization", "temperatureCelsius", "power", "clocks",      "lost",
                                   "processes", "maxClocks", "minorNumber", "fanSpeedPercent", "performanceState",
                                   "computeMode", "persistenceMode", "displayActive", "displayMode",
                                   "encoderUtilPercent", "decoderUtilPercent", "bar1Memory", "cudaComputeCapability",
                                   "architecture", "migMode", "handleLost", "processUtilizationJunk", "migInstances",
                                   nullptr};
const char *const kMigInstanceKeys[] = {"uuid", "name", "gpuInstanceId", "computeInstanceId", "memory", nullptr};
const char *const kMaxClockKeys[] = {"graphicsMhz", "smMhz", "memoryMhz", "videoMhz", nullptr};
const char *const kBar1Keys[] = {"total", "used", nullptr};
const char *const kCapabilityKeys[] = {"major", "minor", nullptr};

std::uint32_t readBoolAsUint(const Value &value, const std::string &path) { return readBool(value, path) ? 1u : 0u; }

// The nullable integer device fields that map one to one onto an entry point's answer.
struct ScalarField {
  const char *key;
  std::optional<std::uint32_t> Device::*member;
  std::uint32_t min, max;
  bool boolean;
};
const ScalarField kScalarFields[] = {
    {"minorNumber", &Device::minorNumber, 0, UINT32_MAX, false},
    {"fanSpeedPercent", &Device::fanSpeedPercent, 0, 100, false},
    {"performanceState", &Device::performanceState, 0, 15, false},
    {"computeMode", &Device::computeMode, 0, 3, false},
    {"persistenceMode", &Device::persistenceMode, 0, 1, true},
    {"displayActive", &Device::displayActive, 0, 1, true},
    {"displayMode", &Device::displayMode, 0, 1, true},
    {"encoderUtilPercent", &Device::encoderUtilPercent, 0, 100, false},
    {"decoderUtilPercent", &Device::decoderUtilPercent, 0, 100, false},
    {"architecture", &Device::architecture, 0, UINT32_MAX, false},
    {"migMode", &Device::migMode, 0, 1, true},
};

// Sets a group of nullable leaves from an object (or clears them all for null).
void readClockGroup(const Value &v, const std::string &at, const char *const *keys,
                    std::initializer_list<std::optional<std::uint32_t> *> leaves) {
  if (v.isNull()) {
    for (auto *leaf : leaves) *leaf = std::nullopt;
    return;
  }
  requireObject(v, at);
  checkKeys(v, at, keys);
  std::size_t i = 0;
  for (auto *leaf : leaves) {
    if (const Value *x = v.find(keys[i])) *leaf = readNullable<std::uint32_t>(*x, memberPath(at, keys[i]), readUint32);
    ++i;
  }
}
const char *const kMemoryKeys[] = {"total", "reserved", "otherUsed", nullptr};
const char *const kUtilizationKeys[] = {"gpuPercent", "memoryPercent", nullptr};
const char *const kPowerKeys[] = {"usageMilliwatts", "limitMilliwatts", nullptr};
const char *const kClockKeys[] = {"smMhz", "memoryMhz", "graphicsMhz", "videoMhz", nullptr};

const ScalarField *findScalarField(const std::string &key) {
  for (const ScalarField &field : kScalarFields) {
    if (key == field.key) return &field;
  }
  return nullptr;
}

// "migInstances": an array by MIG device index, null for an index without a compute instance.
std::vector<std::optional<MigInstance>> readMigInstances(const Value &v, const std::string &at) {
  requireArray(v, at);
  if (v.items.size() > kMaxMigDevices) {
    throw InputError(at, "at most " + std::to_string(kMaxMigDevices) + " MIG devices, got " + std::to_string(v.items.size()));
  }
  std::vector<std::optional<MigInstance>> list;
  for (std::size_t i = 0; i < v.items.size(); ++i) {
    const std::string path = indexPath(at, i);
    if (v.items[i].isNull()) {
      list.emplace_back();
      continue;
    }
    requireObject(v.items[i], path);
    checkKeys(v.items[i], path, kMigInstanceKeys);
    for (const char *key : {"gpuInstanceId", "memory"}) {
      if (!v.items[i].find(key)) throw InputError(path, std::string("missing required key \"") + key + "\"");
    }
    MigInstance instance;
    for (const json::Member &m : v.items[i].members) {
      const std::string mp = memberPath(path, m.key);
      if (m.key == "uuid") {
        instance.uuid = readText(m.value, mp, NVML_DEVICE_UUID_V2_BUFFER_SIZE);
        if (instance.uuid->rfind("MIG-", 0) != 0) throw InputError(mp, "a MIG device's uuid starts with \"MIG-\", got " + json::quote(*instance.uuid));
      } else if (m.key == "name") {
        instance.name = readText(m.value, mp, NVML_DEVICE_NAME_V2_BUFFER_SIZE);
      } else if (m.key == "gpuInstanceId") {
        instance.gpuInstanceId = static_cast<std::uint32_t>(readUintInRange(m.value, mp, 0, 0xFFFFFFFEu));
      } else if (m.key == "computeInstanceId") {
        instance.computeInstanceId = static_cast<std::uint32_t>(readUintInRange(m.value, mp, 0, 0xFFFFFFFEu));
      } else if (m.key == "memory") {
        requireObject(m.value, mp);
        checkKeys(m.value, mp, kMemoryKeys);
        if (!m.value.find("total")) throw InputError(mp, "missing required key \"total\"");
        instance.memoryTotal = readUint64(*m.value.find("total"), memberPath(mp, "total"));
        if (const Value *x = m.value.find("reserved")) instance.memoryReserved = readUint64(*x, memberPath(mp, "reserved"));
        if (const Value *x = m.value.find("otherUsed")) instance.memoryOtherUsed = readUint64(*x, memberPath(mp, "otherUsed"));
      }
    }
    list.push_back(instance);
  }
  return list;
}

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
      readClockGroup(v, at, kClockKeys,
                     {&device->smClockMhz, &device->memoryClockMhz, &device->graphicsClockMhz, &device->videoClockMhz});
    } else if (m.key == "maxClocks") {
      readClockGroup(v, at, kMaxClockKeys,
                     {&device->maxGraphicsClockMhz, &device->maxSmClockMhz, &device->maxMemoryClockMhz,
                      &device->maxVideoClockMhz});
    } else if (m.key == "bar1Memory") {
      if (v.isNull()) {
        device->bar1Total = std::nullopt;
        continue;
      }
      requireObject(v, at);
      checkKeys(v, at, kBar1Keys);
      if (const Value *x = v.find("total")) device->bar1Total = readUint64(*x, memberPath(at, "total"));
      if (const Value *x = v.find("used")) device->bar1Used = readUint64(*x, memberPath(at, "used"));
      if (device->bar1Total && device->bar1Used > *device->bar1Total) {
        throw InputError(at, "used " + std::to_string(device->bar1Used) + " exceeds total " +
                                 std::to_string(*device->bar1Total) + " bytes");
      }
    } else if (m.key == "cudaComputeCapability") {
      if (v.isNull()) {
        device->cudaComputeCapabilityMajor = std::nullopt;
        continue;
      }
      requireObject(v, at);
      checkKeys(v, at, kCapabilityKeys);
      if (const Value *x = v.find("major")) {
        device->cudaComputeCapabilityMajor = static_cast<std::uint32_t>(readUintInRange(*x, memberPath(at, "major"), 1, 99));
      }
      if (const Value *x = v.find("minor")) {
        device->cudaComputeCapabilityMinor = static_cast<std::uint32_t>(readUintInRange(*x, memberPath(at, "minor"), 0, 9));
      }
    } else if (m.key == "migInstances") {
      device->migInstances = readMigInstances(v, at);
    } else if (m.key == "handleLost") {
      device->handleLost = readBool(v, at);
    } else if (m.key == "processUtilizationJunk") {
      device->processUtilizationJunk = readBool(v, at);
    } else if (m.key == "lost") {
      device->lost = readBool(v, at);
    } else if (const ScalarField *field = findScalarField(m.key)) {
      if (v.isNull()) {
        device->*field->member = std::nullopt;
      } else if (field->boolean) {
        device->*field->member = readBoolAsUint(v, at);
      } else {
        device->*field->member = static_cast<std::uint32_t>(readUintInRange(v, at, field->min, field->max));
      }
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

const char *const kErrorRuleKeys[] = {"function", "device", "return", "count", "probability", nullptr};
const char *const kInjectErrorKeys[] = {"op", "function", "device", "return", "count", "probability", nullptr};

// A probability: a JSON number from 0 to 1 (fractions allowed here, unlike everywhere else).
double readProbability(const Value &value, const std::string &path) {
  if (value.type == Value::Type::Number) {
    char *end = nullptr;
    const double p = std::strtod(value.text.c_str(), &end);
    if (end && *end == '\0' && p >= 0.0 && p <= 1.0) return p;
  }
  throw InputError(path, "expected a probability from 0 to 1, got " + value.describe());
}

ErrorRule parseErrorRule(const Value &object, const std::string &path, std::size_t deviceCount, bool isOp) {
  requireObject(object, path);
  checkKeys(object, path, isOp ? kInjectErrorKeys : kErrorRuleKeys);
  ErrorRule rule;
  const Value *function = object.find("function");
  if (!function) throw InputError(path, "missing required key \"function\"");
  if (function->isString() && function->text == "*") {
    rule.anyFunction = true;  // every function (an injected error on nvmlErrorString makes it NULL)
  } else {
    rule.function = readFunction(*function, memberPath(path, "function"));
  }
  const Value *code = object.find("return");
  if (!code) throw InputError(path, "missing required key \"return\"");
  rule.code = readReturnCode(*code, memberPath(path, "return"));
  if (const Value *device = object.find("device")) {
    if (!rule.anyFunction && !fnTakesDevice(rule.function)) {
      throw InputError(memberPath(path, "device"), std::string(fnName(rule.function)) + " does not act on a device");
    }
    rule.device = readDeviceIndex(*device, memberPath(path, "device"), deviceCount);
  }
  if (const Value *count = object.find("count")) {
    rule.remaining = readUintInRange(*count, memberPath(path, "count"), 1, UINT64_MAX);
  }
  if (const Value *probability = object.find("probability")) {
    rule.probability = readProbability(*probability, memberPath(path, "probability"));
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

namespace {
// A device's MIG instances: ids unique, each instance's memory within its total, the totals within the
// board's, and (when instances are declared) every process with instance ids in one of them.
void checkMigInstances(const Device &device, const std::string &devicePath, const std::string &label) {
  const std::string at = devicePath + ".migInstances";
  std::uint64_t totals = 0;
  for (std::size_t a = 0; a < device.migInstances.size(); ++a) {
    if (!device.migInstances[a]) continue;
    const MigInstance &instance = *device.migInstances[a];
    const std::string path = indexPath(at, a);
    for (std::size_t b = 0; b < a; ++b) {
      const std::optional<MigInstance> &other = device.migInstances[b];
      if (other && other->gpuInstanceId == instance.gpuInstanceId && other->computeInstanceId == instance.computeInstanceId) {
        throw InputError(path, "duplicate MIG instance " + std::to_string(instance.gpuInstanceId) + "/" +
                                   std::to_string(instance.computeInstanceId) + " on " + label + " (also at migInstances[" +
                                   std::to_string(b) + "])");
      }
      if (other && instance.uuid && other->uuid && *other->uuid == *instance.uuid) {
        throw InputError(path + ".uuid", "duplicate uuid " + json::quote(*instance.uuid) + " (migInstances[" +
                                             std::to_string(b) + "] has it too)");
      }
    }
    std::uint64_t committed = 0;
    bool overflow = __builtin_add_overflow(instance.memoryReserved, instance.memoryOtherUsed, &committed);
    for (const Process &process : device.processes) {
      if (runsIn(process, instance) && process.usedBytes) {
        overflow |= __builtin_add_overflow(committed, *process.usedBytes, &committed);
      }
    }
    if (overflow || committed > instance.memoryTotal) {
      throw InputError(path + ".memory", "MIG instance " + std::to_string(instance.gpuInstanceId) + "/" +
                                             std::to_string(instance.computeInstanceId) + " on " + label +
                                             " is over-committed: reserved + otherUsed + its processes' usedBytes " +
                                             (overflow ? std::string("overflow 64 bits") : std::to_string(committed)) +
                                             " exceed its total " + std::to_string(instance.memoryTotal) + " bytes");
    }
    if (__builtin_add_overflow(totals, instance.memoryTotal, &totals) || totals > device.memoryTotal) {
      throw InputError(path + ".memory.total", "the MIG instances' totals exceed " + label + "'s total " +
                                                   std::to_string(device.memoryTotal) + " bytes");
    }
  }
  if (device.migInstances.empty()) return;
  for (std::size_t p = 0; p < device.processes.size(); ++p) {
    const Process &process = device.processes[p];
    if (process.gpuInstanceId == kNoInstance && process.computeInstanceId == kNoInstance) continue;
    bool found = false;
    for (const std::optional<MigInstance> &instance : device.migInstances) found = found || (instance && runsIn(process, *instance));
    if (!found) {
      throw InputError(indexPath(devicePath + ".processes", p), "pid " + std::to_string(process.pid) + " is in MIG instance " +
                                                                    std::to_string(process.gpuInstanceId) + "/" +
                                                                    std::to_string(process.computeInstanceId) + ", which " +
                                                                    label + " lacks");
    }
  }
}
}  // namespace

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

    checkMigInstances(device, devicePath, label);

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

// Reading scenario JSON into the mock's model: typed field readers that name the JSON path of a bad
// value (InputError), processes, devices (with their MIG devices), error rules and the op objects'
// pieces. Used by scenario.cc (scenario files, control-file ops).
#include "scenario_fields.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <utility>

namespace vgmock {
namespace fields {

// ---- Field readers -------------------------------------------------------------------------------------


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


}  // namespace fields
}  // namespace vgmock

// The mock NVML library's scenario model: what the fake driver reports, read from a JSON scenario file,
// and the ops that change it while it runs (timeline entries and control-file lines).
// The file format is documented in native/mock/SCENARIO.md; keep the two in step.
#ifndef VRAMGUARD_MOCK_SCENARIO_H
#define VRAMGUARD_MOCK_SCENARIO_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../nvml_api.h"
#include "json.h"

namespace vgmock {

// ---- Functions -----------------------------------------------------------------------------------------

// Every NVML entry point the mock serves (the header's two lists), plus nvmlErrorString. Error rules and call
// statistics name functions by these.
enum class Fn : int {
#define VG_MOCK_FN_ENUMERATOR(requirement, name, params, args) name,
  VG_NVML_FUNCTIONS(VG_MOCK_FN_ENUMERATOR)
  VG_NVML_CLIENT_FUNCTIONS(VG_MOCK_FN_ENUMERATOR)
#undef VG_MOCK_FN_ENUMERATOR
  nvmlErrorString,
};
constexpr int kFnCount = static_cast<int>(Fn::nvmlErrorString) + 1;

const char *fnName(Fn fn);
bool fnByName(const std::string &name, Fn *out);
// Whether calls of fn concern one device, so that an error rule's "device" can aim at them.
// nvmlDeviceGetHandleByIndex_v2 counts (its index is the device); nvmlDeviceGetCount_v2 does not.
bool fnTakesDevice(Fn fn);
// nvmlInit_v2, nvmlInit and nvmlInitWithFlags: the calls that can start a session.
bool isInitFunction(Fn fn);

// ---- Driver eras ---------------------------------------------------------------------------------------

// The driver generations the mock imitates. Each has its own library (era.cc), exporting what that
// driver's libnvidia-ml exports; a scenario's "era" must name the library's own era (or be left out).
enum class Era { E418, E470, E510, E535_54, E535_98, E535_104, E550, E580 };

struct EraTraits {
  Era era;
  const char *name;           // "418", "535.54", ... (scenario "era", library file names)
  int number;                 // major * 1000 + minor, as VG_MOCK_BUILD_ERA
  const char *driverVersion;  // default nvmlSystemGetDriverVersion
  int cudaDriverVersion;      // default nvmlSystemGetCudaDriverVersion[_v2]
  bool v3Records32Bytes;      // the _v3 process lists write 32-byte records (535.43 to 535.86)
};
const EraTraits &eraTraits(Era era);
Era eraByNumber(int number);  // the era with that number; E580 for unknown numbers
bool eraByName(const std::string &name, Era *out);
// The era this library imitates (defined by era.cc, compiled once per library).
Era buildEra();

// ---- Return codes --------------------------------------------------------------------------------------

// "NOT_SUPPORTED" for NVML_ERROR_NOT_SUPPORTED, "SUCCESS" for 0, nullptr for codes NVML does not define.
const char *returnCodeName(nvmlReturn_t code);
// NVML's nvmlErrorString text for code ("Unknown Error" for codes NVML does not define).
const char *returnCodeText(nvmlReturn_t code);

// ---- Model ---------------------------------------------------------------------------------------------

// The most devices a scenario may describe (handles are slots in a static array of this size).
constexpr std::size_t kMaxDevices = 64;
constexpr std::uint32_t kNoInstance = 0xFFFFFFFFu;  // gpuInstanceId / computeInstanceId outside MIG

enum ProcessTypeBits : unsigned { kTypeCompute = 1u, kTypeGraphics = 2u, kTypeMps = 4u };

struct Process {
  std::uint32_t pid = 0;
  std::optional<std::uint64_t> usedBytes = std::uint64_t{0};  // nullopt: NVML_VALUE_NOT_AVAILABLE
  unsigned types = kTypeCompute;                               // ProcessTypeBits
  std::uint32_t gpuInstanceId = kNoInstance;
  std::uint32_t computeInstanceId = kNoInstance;
  std::uint32_t smUtilPercent = 0;
  std::uint32_t memUtilPercent = 0;
  std::uint32_t encUtilPercent = 0;
  std::uint32_t decUtilPercent = 0;
  bool followPid = false;  // drop once no live process has this pid
  std::optional<std::string> name;  // nvmlSystemGetProcessName; nullopt: read from /proc

  bool hasUtilization() const { return smUtilPercent || memUtilPercent || encUtilPercent || decUtilPercent; }
};

// One MIG device (a compute instance) of a MIG-enabled GPU. Its processes are the parent's processes
// whose gpuInstanceId and computeInstanceId are this instance's.
constexpr std::size_t kMaxMigDevices = 7;  // nvmlDeviceGetMaxMigDeviceCount on A100/H100
struct MigInstance {
  std::optional<std::string> uuid;  // "MIG-..."; default derived from the device index and ids
  std::optional<std::string> name;  // default: the parent's name + " MIG <gi>/<ci>"
  std::uint32_t gpuInstanceId = 0;
  std::uint32_t computeInstanceId = 0;
  std::uint64_t memoryTotal = 0;
  std::uint64_t memoryReserved = 0;
  std::uint64_t memoryOtherUsed = 0;
};

// Optional leaves are nullopt when the scenario sets them (or their group) to null: the functions that
// report them then answer NVML_ERROR_NOT_SUPPORTED.
struct Device {
  std::optional<std::string> name;
  std::optional<std::string> uuid;
  std::optional<std::string> pciBusId;
  std::uint32_t pciDeviceId = 0x233010DEu;
  std::uint64_t memoryTotal = 0;
  std::uint64_t memoryReserved = 0;
  std::uint64_t memoryOtherUsed = 0;  // used memory no listed process accounts for
  std::optional<std::uint32_t> gpuUtilPercent = 0u;
  std::optional<std::uint32_t> memoryUtilPercent = 0u;
  std::optional<std::uint32_t> temperatureCelsius = 40u;
  std::optional<std::uint32_t> powerUsageMilliwatts = 75000u;
  std::optional<std::uint32_t> powerLimitMilliwatts = 300000u;
  std::optional<std::uint32_t> smClockMhz = 1410u;
  std::optional<std::uint32_t> memoryClockMhz = 1593u;
  std::optional<std::uint32_t> graphicsClockMhz = 1410u;
  std::optional<std::uint32_t> videoClockMhz = 1275u;
  std::optional<std::uint32_t> maxSmClockMhz;        // maxClocks: unset means NOT_SUPPORTED
  std::optional<std::uint32_t> maxMemoryClockMhz;
  std::optional<std::uint32_t> maxGraphicsClockMhz;
  std::optional<std::uint32_t> maxVideoClockMhz;
  std::optional<std::uint32_t> minorNumber;          // default: the device index
  std::optional<std::uint32_t> fanSpeedPercent;      // datacenter GPUs have no fan: NOT_SUPPORTED
  std::optional<std::uint32_t> performanceState = 0u;  // P0
  std::optional<std::uint32_t> computeMode = 0u;       // NVML_COMPUTEMODE_DEFAULT
  std::optional<std::uint32_t> persistenceMode = 1u;   // enabled
  std::optional<std::uint32_t> displayActive = 0u;
  std::optional<std::uint32_t> displayMode = 0u;
  std::optional<std::uint32_t> encoderUtilPercent = 0u;
  std::optional<std::uint32_t> decoderUtilPercent = 0u;
  std::optional<std::uint64_t> bar1Total = std::uint64_t{256} << 20;
  std::uint64_t bar1Used = std::uint64_t{2} << 20;
  std::optional<std::uint32_t> cudaComputeCapabilityMajor = 9u;
  std::uint32_t cudaComputeCapabilityMinor = 0;
  std::optional<std::uint32_t> architecture;         // nvmlDeviceArchitecture_t; unset: NOT_SUPPORTED
  std::optional<std::uint32_t> migMode;              // unset: not MIG-capable (NOT_SUPPORTED)
  bool lost = false;
  bool handleLost = false;  // while lost, nvmlDeviceGetHandleByIndex_v2 fails with GPU_IS_LOST too
  bool processUtilizationJunk = false;  // utilization answers carry the junk real drivers return
  std::vector<Process> processes;  // in the order NVML lists them
  // MIG devices by index (nvmlDeviceGetMigDeviceHandleByIndex); handed out while migMode is 1. An empty
  // slot (nullopt) answers NOT_FOUND, as an index without a compute instance does.
  std::vector<std::optional<MigInstance>> migInstances;

  // The defaults for the device at index (name "Mock GPU <index>", a uuid and bus id derived from index).
  static Device withDefaults(std::size_t index);
  // otherUsed plus every process's usedBytes (NOT_AVAILABLE counts as 0), plus, while MIG is enabled, its
  // MIG devices' otherUsed (the parent reports the aggregate). Saturates at 2^64-1.
  std::uint64_t usedBytes() const;
  Process *findProcess(std::uint32_t pid);
};

// Whether process runs in instance (its gpuInstanceId and computeInstanceId are the instance's).
inline bool runsIn(const Process &process, const MigInstance &instance) {
  return process.gpuInstanceId == instance.gpuInstanceId && process.computeInstanceId == instance.computeInstanceId;
}
// The instance's uuid: the scenario's, or one derived from the parent's index and the instance ids.
std::string migUuid(std::size_t deviceIndex, const MigInstance &instance);
// The instance as a device of its own: its memory, its processes, the parent's other fields.
Device migDeviceView(const Device &parent, std::size_t deviceIndex, const MigInstance &instance);

// One error-injection rule: calls of function (on device, or any device when device < 0) return code,
// count times (or always when remaining is nullopt).
struct ErrorRule {
  Fn function = Fn::nvmlInit_v2;
  int device = -1;
  nvmlReturn_t code = NVML_ERROR(UNKNOWN);
  std::optional<std::uint64_t> remaining;
  int scenarioIndex = -1;  // position in the scenario's "errors", -1 for rules added by injectError ops
  bool anyFunction = false;  // "function": "*"
  double probability = 1.0;  // each matching call fails with this probability (seeded: "errorSeed")

  bool matches(Fn fn, int deviceIndex) const {
    if (!anyFunction && function != fn) return false;
    if (device < 0) return true;
    return (anyFunction ? fnTakesDevice(fn) : true) && device == deviceIndex;
  }
};

enum class OpKind { SetProcess, RemoveProcess, SetDevice, LoseDevice, RecoverDevice, InjectError, ClearErrors, WriteStats };

struct Op {
  OpKind kind = OpKind::SetProcess;
  int device = -1;          // -1: absent (removeProcess: every device; clearErrors: any)
  std::uint32_t pid = 0;    // setProcess, removeProcess
  json::Value patch;        // setProcess / setDevice: the fields to set (validated), without "op" and "device"
  ErrorRule rule;           // injectError
  std::optional<Fn> function;  // clearErrors filter
  std::string path;         // writeStats: absolute output path
};

struct TimelineEntry {
  std::uint64_t atMs = 0;
  std::vector<Op> ops;
  std::size_t index = 0;  // position in the scenario's "timeline", for messages
};

struct Scenario {
  std::string path;       // absolute path of the scenario file
  std::string directory;  // its directory: relative paths in the scenario resolve against it
  Era era = Era::E580;     // always the library's own era (see buildEra)
  bool libcudaPresent = true;
  bool unprivileged = false;   // MIG-enabled parents refuse memory and process queries (NO_PERMISSION)
  std::uint64_t errorSeed = 1;  // seeds the draws of error rules with a probability  // false: nvmlSystemGetCudaDriverVersion_v2 fails with LIBRARY_NOT_FOUND
  std::string driverVersion;
  std::string nvmlVersion;
  int cudaDriverVersion = 13000;
  std::string controlFile;  // absolute; empty when the caller decides (see mock_nvml.cc)
  std::uint32_t processUtilizationPeriodMs = 100;
  std::vector<Device> devices;
  std::vector<ErrorRule> errors;
  std::vector<TimelineEntry> timeline;  // sorted by atMs (stable)
};

// ---- Errors --------------------------------------------------------------------------------------------

// A problem with input. path is a JSON path such as "$.devices[0].memory.total" (may be empty).
class InputError : public std::runtime_error {
 public:
  InputError(std::string path, const std::string &message) : std::runtime_error(message), path_(std::move(path)) {}
  const std::string &path() const { return path_; }
  // "path: message", or the message alone when there is no path.
  std::string describe() const { return path_.empty() ? std::string(what()) : path_ + ": " + what(); }

 private:
  std::string path_;
};

// ---- Loading and ops -----------------------------------------------------------------------------------

// Reads and validates a scenario file. Throws std::runtime_error whose what() is one line naming the
// file, the JSON path (or line:column for syntax errors) and the problem.
Scenario loadScenario(const std::string &path);
// The same, from the file's text (absolute: the path it came from, for messages and relative paths).
Scenario parseScenarioText(const std::string &text, const std::string &absolute);

struct OpContext {
  std::size_t deviceCount = 0;
  std::string baseDirectory;  // relative writeStats paths resolve against it
};

// Validates one op. path is the op's JSON path ("$" for a control-file line). Throws InputError.
Op parseOp(const json::Value &value, const std::string &path, const OpContext &context);

// Applies a device op (setProcess, removeProcess, setDevice, loseDevice, recoverDevice) all or nothing:
// returns "" when applied, else why it was refused (devices left unchanged).
std::string applyDeviceOp(const Op &op, std::vector<Device> *devices);

// Consistency across devices: memory not over-committed, unique uuids, unique pids per device.
// Throws InputError with a path into "$.devices".
void checkDevices(const std::vector<Device> &devices);

// Parses "DDDDDDDD:BB:DD.F" (domain: 4 to 8 hex digits; bus, device: 2; function: 0-7), NVML's bus id form.
bool parsePciBusId(const std::string &text, unsigned *domain, unsigned *bus, unsigned *device, unsigned *function);

// Path helpers: absolute (against the working directory), directory part, and resolution against a base.
std::string absolutePath(const std::string &path);
std::string directoryOf(const std::string &absolute);
std::string resolvePath(const std::string &base, const std::string &path);

}  // namespace vgmock

#endif  // VRAMGUARD_MOCK_SCENARIO_H

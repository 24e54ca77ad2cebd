// The mock's catalog: the NVML functions it serves (by name, and which take a device), the driver eras
// it imitates (what each reports), and NVML's return codes with their names and strings.
#include "scenario.h"

#include <cstring>

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

}  // namespace vgmock

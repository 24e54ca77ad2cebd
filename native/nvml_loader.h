// The one place vramguard reaches NVML: a function table filled by dlopen/dlsym at first use.
//
// Required symbols fail the load with a clear reason; optional ones are null and show up as capability
// flags. NVML initialization is shared by every user in the process and reference counted (Acquire /
// Release), so several samplers and worker threads never re-initialize NVML under each other.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "nvml_api.h"

namespace vramguard {

// One pointer per NVML function we call, generated from VG_NVML_FUNCTIONS.
struct NvmlFunctionTable {
#define VG_TABLE_MEMBER(req, name, params, args) vg_fn_##name name = nullptr;
  VG_NVML_FUNCTIONS(VG_TABLE_MEMBER)
#undef VG_TABLE_MEMBER
  vg_fn_nvmlErrorString nvmlErrorString = nullptr;
};

// The name NVML gives a return code ("GPU_IS_LOST"), or "UNKNOWN_<n>" for codes we do not know.
std::string NvmlReturnName(nvmlReturn_t code);

// Outcome of Acquire(): ok, or why NVML cannot be used (one line, with the library path and the code).
struct NvmlAcquireResult {
  bool ok = false;
  nvmlReturn_t code = NVML_SUCCESS;  // NVML's return when nvmlInit_v2 failed; LIBRARY_NOT_FOUND / FUNCTION_NOT_FOUND for loader failures
  std::string function;              // the NVML function (or dlopen/dlsym) that failed
  std::string reason;
};

class NvmlLibrary {
 public:
  // The process-wide instance. Deliberately never destroyed: a sampler thread may still be inside an
  // NVML call while the process exits, and must not find the table torn down under it.
  static NvmlLibrary& Instance();

  // Loads the library (once per process) and takes one reference on NVML's initialization.
  // libraryPath: empty means VRAMGUARD_NVML_LIBRARY, else "libnvidia-ml.so.1" through the usual search.
  NvmlAcquireResult Acquire(const std::string& libraryPath);
  // Drops one reference; the last one calls nvmlShutdown (the library itself stays mapped).
  void Release();

  // Valid after a successful Acquire(), for as long as the caller holds its reference.
  const NvmlFunctionTable& table() const { return table_; }
  const std::string& loadedPath() const { return loadedPath_; }
  int references() const;

  // Extension symbols exported by vramguard's mock library only (absent from NVIDIA's).
  bool isMock() const { return mockInitError_ != nullptr; }
  // The mock's recent warnings (bad control-file lines, refused ops), one per line; "" when none or
  // when the library is not the mock. Valid until this thread calls it again.
  const char* mockWarnings() const { return mockWarnings_ != nullptr ? mockWarnings_() : ""; }

 private:
  NvmlLibrary() = default;
  NvmlAcquireResult LoadLocked(const std::string& path);

  mutable std::mutex mutex_;
  void* handle_ = nullptr;
  std::string loadedPath_;
  NvmlFunctionTable table_;
  int references_ = 0;
  const char* (*mockInitError_)() = nullptr;
  const char* (*mockWarnings_)() = nullptr;
};

}  // namespace vramguard

#include "nvml_loader.h"

#include <dlfcn.h>

#include <cstdlib>

namespace vramguard {

namespace {
constexpr const char* kDefaultLibrary = "libnvidia-ml.so.1";
constexpr const char* kLibraryEnv = "VRAMGUARD_NVML_LIBRARY";

std::string ResolvePath(const std::string& requested) {
  if (!requested.empty()) return requested;
  const char* fromEnv = std::getenv(kLibraryEnv);
  if (fromEnv != nullptr && fromEnv[0] != '\0') return fromEnv;
  return kDefaultLibrary;
}
}  // namespace

std::string NvmlReturnName(nvmlReturn_t code) {
  switch (code) {
#define VG_RETURN_NAME(name, value) \
  case value:                       \
    return #name;
    VG_NVML_RETURN_CODES(VG_RETURN_NAME)
#undef VG_RETURN_NAME
    default:
      return "UNKNOWN_" + std::to_string(code);
  }
}

NvmlLibrary& NvmlLibrary::Instance() {
  static NvmlLibrary* instance = new NvmlLibrary();  // never destroyed, see the header
  return *instance;
}

int NvmlLibrary::references() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return references_;
}

NvmlAcquireResult NvmlLibrary::LoadLocked(const std::string& path) {
  NvmlAcquireResult result;
  if (handle_ != nullptr) {
    if (path != loadedPath_) {
      result.code = NVML_INVALID_ARGUMENT;
      result.function = "dlopen";
      result.reason = "NVML is already loaded from " + loadedPath_ + " in this process; cannot also load " + path;
      return result;
    }
    result.ok = true;
    return result;
  }
  dlerror();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    result.code = NVML_LIBRARY_NOT_FOUND;
    result.function = "dlopen";
    result.reason = "cannot load the NVIDIA management library " + path + ": " +
                    (why != nullptr ? why : "unknown dlopen error") +
                    " (is the NVIDIA driver installed? set VRAMGUARD_NVML_LIBRARY to its path)";
    return result;
  }
  NvmlFunctionTable table;
  std::string missingRequired;
#define VG_LOOKUP(req, name, params, args)                                                  \
  table.name = reinterpret_cast<vg_fn_##name>(dlsym(handle, #name));                        \
  if (table.name == nullptr && std::string(#req) == "REQUIRED") {                           \
    missingRequired += missingRequired.empty() ? #name : ", " #name;                          \
  }
  VG_NVML_FUNCTIONS(VG_LOOKUP)
#undef VG_LOOKUP
  table.nvmlErrorString = reinterpret_cast<vg_fn_nvmlErrorString>(dlsym(handle, "nvmlErrorString"));
  if (!missingRequired.empty()) {
    dlclose(handle);
    result.code = NVML_FUNCTION_NOT_FOUND;
    result.function = "dlsym";
    result.reason = path + " lacks required NVML functions: " + missingRequired + " (driver too old?)";
    return result;
  }
  handle_ = handle;
  loadedPath_ = path;
  table_ = table;
  mockInitError_ = reinterpret_cast<const char* (*)()>(dlsym(handle, "vramguardMockInitError"));
  mockWarnings_ = reinterpret_cast<const char* (*)()>(dlsym(handle, "vramguardMockWarnings"));
  result.ok = true;
  return result;
}

NvmlAcquireResult NvmlLibrary::Acquire(const std::string& libraryPath) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string path = ResolvePath(libraryPath);
  NvmlAcquireResult result = LoadLocked(path);
  if (!result.ok) return result;
  if (references_ == 0) {
    const nvmlReturn_t rc = table_.nvmlInit_v2();
    if (rc != NVML_SUCCESS) {
      result.ok = false;
      result.code = rc;
      result.function = "nvmlInit_v2";
      std::string detail;
      if (mockInitError_ != nullptr && mockInitError_() != nullptr) detail = mockInitError_();
      if (detail.empty()) {
        detail = table_.nvmlErrorString != nullptr ? table_.nvmlErrorString(rc) : NvmlReturnName(rc);
      }
      result.reason = "nvmlInit_v2 failed with " + NvmlReturnName(rc) + " (" + std::to_string(rc) + "): " + detail;
      return result;
    }
  }
  ++references_;
  return result;
}

void NvmlLibrary::Release() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (references_ == 0) return;
  if (--references_ == 0 && table_.nvmlShutdown != nullptr) table_.nvmlShutdown();
}

}  // namespace vramguard

// The addon's entry points: the module, probe(), readOnce(), the file lock and the Sampler class
// (js_sampler.cc). Owns the per-environment set of samplers and stops them from the environment's
// cleanup hook (worker termination, process teardown). Conversions to JS live in js_values.cc, the
// guards in js_guard.h.
//
// Exports: probe(libraryPath) -> load report; readOnce(libraryPath, devices) -> snapshot (one-off, for
// `vramguard info`); Sampler class. No policy here: thresholds arrive from JS, crossings go back.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "device_pass.h"
#include "device_reader.h"
#include "file_lock.h"
#include "js_guard.h"
#include "js_sampler.h"
#include "js_snapshot.h"
#include "js_values.h"
#include "nvml_loader.h"

namespace vramguard {
namespace {

// One reference on NVML's initialization for the length of a call, released however the call ends.
class ScopedNvml {
 public:
  explicit ScopedNvml(const std::string& libraryPath) : result_(NvmlLibrary::Instance().Acquire(libraryPath)) {}
  ~ScopedNvml() {
    if (result_.ok) NvmlLibrary::Instance().Release();
  }
  ScopedNvml(const ScopedNvml&) = delete;
  ScopedNvml& operator=(const ScopedNvml&) = delete;
  const NvmlAcquireResult& result() const { return result_; }

 private:
  NvmlAcquireResult result_;
};

// probe(libraryPath?): loads and initializes NVML once, reports versions and symbols, releases it.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ScopedNvml scoped(OptionalString(info[0]));
  if (!scoped.result().ok) return FailureToJs(env, ReadFailure::Unavailable(scoped.result()));
  NvmlLibrary& nvml = NvmlLibrary::Instance();
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", true);
  o.Set("libraryPath", nvml.loadedPath());
  o.Set("isMock", nvml.isMock());
  o.Set("system", SystemToJs(env, ReadSystemInfo(nvml.table())));
  o.Set("symbols", SymbolsToJs(env, nvml.table()));
  return o;
}

// readOnce(libraryPath?, devices?): one synchronous pass, for one-off commands. Steady-state readers
// use a Sampler instead.
Napi::Value ReadOnce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<uint32_t> devices = DeviceList(info[1]);
  ScopedNvml scoped(OptionalString(info[0]));
  if (!scoped.result().ok) return FailureToJs(env, ReadFailure::Unavailable(scoped.result()));
  const SystemInfo system = ReadSystemInfo(NvmlLibrary::Instance().table());
  DevicePass pass;
  ReadFailure failure;
  if (!pass.Open(NvmlLibrary::Instance().table(), system, devices, &failure)) return FailureToJs(env, failure);
  Snapshot snapshot;
  pass.Read(snapshot);
  // Packed like a sampler's snapshots (js_snapshot.h): sized by a first count, then written.
  JsStringTable table;
  Napi::Array strings = Napi::Array::New(env);
  const double needed = -PackSnapshot(env, snapshot, Napi::Float64Array::New(env, 0), strings, table);
  Napi::Float64Array numbers = Napi::Float64Array::New(env, static_cast<size_t>(needed));
  PackSnapshot(env, snapshot, numbers, strings, table);
  Napi::Object packed = Napi::Object::New(env);
  packed.Set("numbers", numbers);
  packed.Set("strings", strings);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", true);
  o.Set("system", SystemToJs(env, system));
  o.Set("snapshot", packed);
  return o;
}

// returnCodeName(returnValue): NVML's name for a return code ("GPU_IS_LOST"), for packed snapshots.
Napi::Value ReturnCodeName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), NvmlReturnName(static_cast<nvmlReturn_t>(info[0].ToNumber().Int32Value())));
}

// The loaded mock library's warnings, one string each (empty when NVML is not loaded or not the mock).
Napi::Value MockWarnings(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string text = NvmlLibrary::Instance().mockWarnings();
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.Set(n++, text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Worker termination and environment teardown: stop and join every sampler of this environment.
void OnEnvironmentCleanup(void* arg) noexcept { DetachSamplers(*static_cast<AddonData*>(arg)); }

void DeleteAddonData(napi_env /*env*/, void* data, void* /*hint*/) noexcept { delete static_cast<AddonData*>(data); }

Napi::Value Init(Napi::Env env, Napi::Object exports) {
  auto data = std::make_unique<AddonData>();
  Check(env, napi_set_instance_data(env, data.get(), &DeleteAddonData, nullptr));
  AddonData* owned = data.release();
  Check(env, napi_add_env_cleanup_hook(env, &OnEnvironmentCleanup, owned));
  exports.Set("Sampler", DefineSampler(env));
  exports.Set("probe", NewFunction(env, "probe", &FunctionEntry<Probe>));
  exports.Set("readOnce", NewFunction(env, "readOnce", &FunctionEntry<ReadOnce>));
  exports.Set("returnCodeName", NewFunction(env, "returnCodeName", &FunctionEntry<ReturnCodeName>));
  exports.Set("snapshotLayout", SnapshotLayoutToJs(env));
  RegisterFileLock(env, exports);
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  exports.Set("mockWarnings", NewFunction(env, "mockWarnings", &FunctionEntry<MockWarnings>));
  return exports;
}

}  // namespace
}  // namespace vramguard

// Module registration, raw: a failure leaves a pending exception (the require throws).
NAPI_MODULE_INIT() {
  vramguard::GuardValue(env, [&] { return vramguard::Init(Napi::Env(env), Napi::Object(env, exports)); });
  return exports;
}

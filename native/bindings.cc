// node-addon-api bindings: converts snapshots to JS, owns the per-environment set of samplers, and
// stops them from the environment's cleanup hook (worker termination, process teardown).
//
// Exports: probe(libraryPath) -> load report; readOnce(libraryPath, devices) -> snapshot (one-off, for
// `vramguard info`); Sampler class. No policy here: thresholds arrive from JS, crossings go back.
#include <napi.h>

#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "device_reader.h"
#include "nvml_loader.h"
#include "sampler.h"

namespace vramguard {
namespace {

Napi::Object Reason(Napi::Env env, nvmlReturn_t code, const char* function) {
  Napi::Object reason = Napi::Object::New(env);
  reason.Set("code", NvmlReturnName(code));
  reason.Set("returnValue", static_cast<double>(code));
  reason.Set("function", function);
  return reason;
}

// Sets key to the reading's value (converted by fn) or to null, noting why in missing.
template <typename T, typename Convert>
void SetReading(Napi::Object& target, Napi::Object& missing, const char* key, const Reading<T>& reading,
                Convert convert) {
  if (reading.ok()) {
    target.Set(key, convert(reading.value));
  } else {
    target.Set(key, target.Env().Null());
    missing.Set(key, Reason(target.Env(), reading.status, reading.function));
  }
}

const char* LayoutName(ProcessRecordLayout layout) {
  switch (layout) {
    case ProcessRecordLayout::kV1:
      return "v1";
    case ProcessRecordLayout::kV2:
      return "v2";
    case ProcessRecordLayout::kV3:
      return "v3";
    case ProcessRecordLayout::kV3Driver535:
      return "v3-535-32byte";
    case ProcessRecordLayout::kDetailList:
      return "detail-list-v1";
    default:
      return nullptr;
  }
}

Napi::Value ProcessToJs(Napi::Env env, const ProcessSample& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", static_cast<double>(p.pid));
  o.Set("usedBytes", p.usedKnown ? Napi::Value(Napi::Number::New(env, static_cast<double>(p.usedBytes))) : env.Null());
  Napi::Array types = Napi::Array::New(env);
  uint32_t n = 0;
  if (p.types & kProcessCompute) types.Set(n++, "compute");
  if (p.types & kProcessGraphics) types.Set(n++, "graphics");
  if (p.types & kProcessMps) types.Set(n++, "mps");
  o.Set("types", types);
  auto id = [&](uint32_t v) -> Napi::Value {
    return v == 0xFFFFFFFFu ? env.Null() : Napi::Value(Napi::Number::New(env, v));
  };
  o.Set("gpuInstanceId", id(p.gpuInstanceId));
  o.Set("computeInstanceId", id(p.computeInstanceId));
  auto ratio = [&](uint32_t percent) -> Napi::Value {
    return p.utilizationKnown ? Napi::Value(Napi::Number::New(env, percent / 100.0)) : env.Null();
  };
  o.Set("smUtilizationRatio", ratio(p.smUtilPercent));
  o.Set("memoryUtilizationRatio", ratio(p.memUtilPercent));
  o.Set("encoderUtilizationRatio", ratio(p.encUtilPercent));
  o.Set("decoderUtilizationRatio", ratio(p.decUtilPercent));
  return o;
}

Napi::Value DeviceToJs(Napi::Env env, const DeviceSample& d) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Object missing = Napi::Object::New(env);
  auto str = [&](const std::string& v) { return Napi::String::New(env, v); };
  auto num = [&](double v) { return Napi::Number::New(env, v); };
  o.Set("index", static_cast<double>(d.index));
  SetReading(o, missing, "uuid", d.identity.uuid, str);
  SetReading(o, missing, "name", d.identity.name, str);
  SetReading(o, missing, "pciBusId", d.identity.pciBusId, str);
  SetReading(o, missing, "pciDeviceId", d.identity.pciDeviceId, [&](uint32_t v) { return num(v); });
  o.Set("lost", d.lost);
  o.Set("lostReason", d.lost ? Napi::Value(Reason(env, d.lostStatus.status, d.lostStatus.function)) : env.Null());
  auto bytes = [&](uint64_t v) { return num(static_cast<double>(v)); };
  SetReading(o, missing, "memoryTotalBytes", d.memoryTotal, bytes);
  SetReading(o, missing, "memoryUsedBytes", d.memoryUsed, bytes);
  SetReading(o, missing, "memoryFreeBytes", d.memoryFree, bytes);
  SetReading(o, missing, "memoryReservedBytes", d.memoryReserved, bytes);
  o.Set("memoryInfoVersion", d.memoryInfoVersion == 0 ? env.Null() : Napi::Value(num(d.memoryInfoVersion)));
  auto ratio = [&](uint32_t percent) { return num(percent / 100.0); };
  SetReading(o, missing, "gpuUtilizationRatio", d.gpuUtilPercent, ratio);
  SetReading(o, missing, "memoryUtilizationRatio", d.memoryUtilPercent, ratio);
  SetReading(o, missing, "temperatureCelsius", d.temperatureCelsius, [&](uint32_t v) { return num(v); });
  auto watts = [&](uint32_t milliwatts) { return num(milliwatts / 1000.0); };
  SetReading(o, missing, "powerUsageWatts", d.powerUsageMilliwatts, watts);
  SetReading(o, missing, "powerLimitWatts", d.powerLimitMilliwatts, watts);
  auto hertz = [&](uint32_t mhz) { return num(mhz * 1e6); };
  SetReading(o, missing, "smClockHertz", d.smClockMhz, hertz);
  SetReading(o, missing, "memoryClockHertz", d.memoryClockMhz, hertz);
  const char* layout = LayoutName(d.processLayout);
  o.Set("processRecordLayout", layout == nullptr ? env.Null() : Napi::Value(str(layout)));
  if (d.processListStatus.ok()) {
    Napi::Array processes = Napi::Array::New(env, d.processes.size());
    for (size_t i = 0; i < d.processes.size(); ++i) processes.Set(static_cast<uint32_t>(i), ProcessToJs(env, d.processes[i]));
    o.Set("processes", processes);
  } else {
    o.Set("processes", env.Null());
    missing.Set("processes", Reason(env, d.processListStatus.status, d.processListStatus.function));
  }
  if (!d.graphicsListStatus.ok() && !d.lost) {
    missing.Set("graphicsProcesses", Reason(env, d.graphicsListStatus.status, d.graphicsListStatus.function));
  }
  if (!d.mpsListStatus.ok() && !d.lost) {
    missing.Set("mpsProcesses", Reason(env, d.mpsListStatus.status, d.mpsListStatus.function));
  }
  const nvmlReturn_t utilStatus = d.processUtilizationStatus.status;
  if (utilStatus != NVML_SUCCESS && utilStatus != NVML_NOT_FOUND) {
    missing.Set("processUtilization", Reason(env, utilStatus, d.processUtilizationStatus.function));
  }
  o.Set("processUtilizationFresh", utilStatus == NVML_SUCCESS);
  o.Set("utilizationSamplesRejected", num(d.utilizationSamplesRejected));
  o.Set("utilizationSamplesRejectedTotal", num(static_cast<double>(d.utilizationSamplesRejectedTotal)));
  o.Set("sampledAt", num(d.sampledAtMicros / 1000.0));
  o.Set("readDurationMs", num(d.readNanos / 1e6));
  o.Set("missing", missing);
  return o;
}

Napi::Value SnapshotToJs(Napi::Env env, const Snapshot& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("sequence", static_cast<double>(s.sequence));
  o.Set("timestamp", s.timestampMicros / 1000.0);
  o.Set("passDurationMs", s.passNanos / 1e6);
  Napi::Array devices = Napi::Array::New(env, s.devices.size());
  for (size_t i = 0; i < s.devices.size(); ++i) devices.Set(static_cast<uint32_t>(i), DeviceToJs(env, s.devices[i]));
  o.Set("devices", devices);
  return o;
}

Napi::Object SystemToJs(Napi::Env env, const SystemInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Object missing = Napi::Object::New(env);
  auto str = [&](const std::string& v) { return Napi::String::New(env, v); };
  SetReading(o, missing, "driverVersion", info.driverVersion, str);
  SetReading(o, missing, "nvmlVersion", info.nvmlVersion, str);
  SetReading(o, missing, "cudaDriverVersion", info.cudaDriverVersion, [&](int v) {
    return Napi::String::New(env, std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10));
  });
  SetReading(o, missing, "deviceCount", info.deviceCount, [&](uint32_t v) { return Napi::Number::New(env, v); });
  o.Set("v3ProcessRecordBytes", info.traits.v3ProcessRecordsAre32Bytes ? 32 : 24);
  o.Set("v3ProcessRecordEvidence", info.traits.evidence);
  o.Set("missing", missing);
  return o;
}

Napi::Object SymbolsToJs(Napi::Env env, const NvmlFunctionTable& table) {
  Napi::Object symbols = Napi::Object::New(env);
#define VG_SYMBOL_PRESENT(req, name, params, args) symbols.Set(#name, table.name != nullptr);
  VG_NVML_FUNCTIONS(VG_SYMBOL_PRESENT)
#undef VG_SYMBOL_PRESENT
  symbols.Set("nvmlErrorString", table.nvmlErrorString != nullptr);
  return symbols;
}

Napi::Object FailureToJs(Napi::Env env, const NvmlAcquireResult& result) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", false);
  o.Set("code", NvmlReturnName(result.code));
  o.Set("returnValue", static_cast<double>(result.code));
  o.Set("function", result.function);
  o.Set("reason", result.reason);
  return o;
}

std::string OptionalString(const Napi::Value& value) {
  return value.IsString() ? value.As<Napi::String>().Utf8Value() : std::string();
}

std::vector<uint32_t> DeviceList(const Napi::Value& value) {
  std::vector<uint32_t> devices;
  if (!value.IsArray()) return devices;
  Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const double index = array.Get(i).ToNumber().DoubleValue();
    if (!(index >= 0 && index < 4294967295.0) || std::floor(index) != index) {
      throw Napi::TypeError::New(value.Env(), "device index must be a non-negative integer, got " +
                                                  array.Get(i).ToString().Utf8Value());
    }
    devices.push_back(static_cast<uint32_t>(index));
  }
  return devices;
}

// probe(libraryPath?): loads and initializes NVML once, reports versions and symbols, releases it.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NvmlLibrary& nvml = NvmlLibrary::Instance();
  const NvmlAcquireResult result = nvml.Acquire(OptionalString(info[0]));
  if (!result.ok) return FailureToJs(env, result);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", true);
  o.Set("libraryPath", nvml.loadedPath());
  o.Set("isMock", nvml.isMock());
  o.Set("system", SystemToJs(env, ReadSystemInfo(nvml.table())));
  o.Set("symbols", SymbolsToJs(env, nvml.table()));
  nvml.Release();
  return o;
}

// readOnce(libraryPath?, devices?): one synchronous pass, for one-off commands. Steady-state readers
// use a Sampler instead.
Napi::Value ReadOnce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint32_t> devices = DeviceList(info[1]);
  NvmlLibrary& nvml = NvmlLibrary::Instance();
  const NvmlAcquireResult result = nvml.Acquire(OptionalString(info[0]));
  if (!result.ok) return FailureToJs(env, result);
  const SystemInfo system = ReadSystemInfo(nvml.table());
  if (!system.deviceCount.ok()) {
    nvml.Release();
    NvmlAcquireResult bad;
    bad.code = system.deviceCount.status;
    bad.function = system.deviceCount.function;
    bad.reason = "nvmlDeviceGetCount_v2 failed with " + NvmlReturnName(bad.code) + " (" + std::to_string(bad.code) + ")";
    return FailureToJs(env, bad);
  }
  const uint32_t count = system.deviceCount.value;
  if (devices.empty()) {
    for (uint32_t i = 0; i < count; ++i) devices.push_back(i);
  }
  Snapshot snapshot;
  snapshot.timestampMicros = NowMicrosRealtime();
  const uint64_t started = NowNanosMonotonic();
  const DriverTraits traits = system.traits;  // driver version and exported symbols
  for (uint32_t index : devices) {
    if (index >= count) {
      nvml.Release();
      NvmlAcquireResult bad;
      bad.code = NVML_INVALID_ARGUMENT;
      bad.function = "nvmlDeviceGetHandleByIndex_v2";
      bad.reason = "device index " + std::to_string(index) + " does not exist (NVML reports " + std::to_string(count) +
                   " device" + (count == 1 ? "" : "s") + ")";
      return FailureToJs(env, bad);
    }
    DeviceReader reader(nvml.table(), index, traits);
    snapshot.devices.emplace_back();
    const uint64_t deviceStarted = NowNanosMonotonic();
    reader.Read(snapshot.devices.back(), snapshot.timestampMicros);
    snapshot.devices.back().readNanos = NowNanosMonotonic() - deviceStarted;
  }
  snapshot.sequence = 1;
  snapshot.passNanos = NowNanosMonotonic() - started;
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", true);
  o.Set("system", SystemToJs(env, system));
  o.Set("snapshot", SnapshotToJs(env, snapshot));
  nvml.Release();
  return o;
}

class SamplerWrap;

struct AddonData {
  std::set<SamplerWrap*> samplers;
  Napi::FunctionReference samplerConstructor;
};

// What the sampler thread and queued JS calls share; outlives the wrap if calls are still queued.
struct SamplerCore {
  std::unique_ptr<Sampler> sampler;
  Napi::ThreadSafeFunction onEvents;
  std::atomic<bool> callPending{false};
  bool released = false;
};

Napi::Value EventToJs(Napi::Env env, const SamplerEvent& e) {
  Napi::Object o = Napi::Object::New(env);
  switch (e.type) {
    case SamplerEvent::Type::kWatermark:
      o.Set("type", "watermark");
      o.Set("id", static_cast<double>(e.watermarkId));
      o.Set("valueBytes", static_cast<double>(e.valueBytes));
      o.Set("thresholdBytes", static_cast<double>(e.thresholdBytes));
      o.Set("above", e.above);
      break;
    case SamplerEvent::Type::kDeviceLost:
      o.Set("type", "device-lost");
      o.Set("reason", Reason(env, e.code, e.function));
      break;
    case SamplerEvent::Type::kDeviceRecovered:
      o.Set("type", "device-recovered");
      break;
    case SamplerEvent::Type::kSample:
      o.Set("type", "sample");
      break;
  }
  o.Set("device", static_cast<double>(e.device));
  o.Set("sequence", static_cast<double>(e.sequence));
  o.Set("timestamp", e.timestampMicros / 1000.0);
  return o;
}

class SamplerWrap : public Napi::ObjectWrap<SamplerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Sampler",
                       {
                           InstanceMethod<&SamplerWrap::Start>("start"),
                           InstanceMethod<&SamplerWrap::Stop>("stop"),
                           InstanceMethod<&SamplerWrap::Latest>("latest"),
                           InstanceMethod<&SamplerWrap::PublishedSequence>("publishedSequence"),
                           InstanceMethod<&SamplerWrap::SetWatermarks>("setWatermarks"),
                           InstanceMethod<&SamplerWrap::RequestSample>("requestSample"),
                           InstanceMethod<&SamplerWrap::SetKeepAlive>("setKeepAlive"),
                       });
  }

  // new Sampler({ intervalMs, devices, libraryPath }, onEvents)
  explicit SamplerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SamplerWrap>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "Sampler(options, onEvents): options object and callback required");
    }
    Napi::Object options = info[0].As<Napi::Object>();
    const double intervalMs = options.Get("intervalMs").ToNumber().DoubleValue();
    if (!std::isfinite(intervalMs) || intervalMs < 1) {
      throw Napi::RangeError::New(env, "intervalMs must be a number >= 1, got " + std::to_string(intervalMs));
    }
    Sampler::Options samplerOptions;
    samplerOptions.intervalNanos = static_cast<uint64_t>(intervalMs * 1e6);
    samplerOptions.devices = DeviceList(options.Get("devices"));
    samplerOptions.libraryPath = OptionalString(options.Get("libraryPath"));
    core_ = std::make_shared<SamplerCore>();
    core_->onEvents = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "vramguard-sampler", 0, 1);
    core_->onEvents.Unref(env);  // a sampler never keeps the process alive by itself
    // The sampler's callback holds the core weakly (the core owns the sampler); each queued JS call holds
    // it strongly, so a call still queued when the wrap is collected finds it alive.
    std::weak_ptr<SamplerCore> weak = core_;
    core_->sampler = std::make_unique<Sampler>(samplerOptions, [weak] {
      std::shared_ptr<SamplerCore> core = weak.lock();
      // Sampler thread: coalesce wake-ups; the JS side drains every queued event per call.
      if (!core || core->callPending.exchange(true, std::memory_order_acq_rel)) return;
      core->onEvents.NonBlockingCall([core](Napi::Env env, Napi::Function callback) {
        if (static_cast<napi_env>(env) == nullptr || callback.IsEmpty()) return;  // environment tearing down
        core->callPending.store(false, std::memory_order_release);
        if (core->released) return;
        std::vector<SamplerEvent> events = core->sampler->TakeEvents();
        if (events.empty()) return;
        Napi::Array array = Napi::Array::New(env, events.size());
        for (size_t i = 0; i < events.size(); ++i) array.Set(static_cast<uint32_t>(i), EventToJs(env, events[i]));
        callback.Call({array});
      });
    });
    data_ = env.GetInstanceData<AddonData>();
    data_->samplers.insert(this);
  }

  // The environment is going away: stop, and never touch its instance data again.
  void DetachFromEnvironment() {
    Shutdown();
    data_ = nullptr;
  }

  ~SamplerWrap() override {
    Shutdown();
    if (data_ != nullptr) data_->samplers.erase(this);
  }

  // Stops the thread, then releases the thread-safe function: in that order, so nothing calls a
  // released function. Called from stop(), the finalizer and the environment's cleanup hook.
  void Shutdown() {
    if (!core_ || core_->released) return;
    core_->released = true;
    core_->sampler->Stop();
    core_->onEvents.Release();
  }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (core_->released || core_->sampler->running()) {
      throw Napi::Error::New(env, "sampler already started or stopped; create a new one");
    }
    const NvmlAcquireResult result = core_->sampler->Start();
    if (!result.ok) {
      Shutdown();
      return FailureToJs(env, result);
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("ok", true);
    o.Set("system", SystemToJs(env, core_->sampler->systemInfo()));
    o.Set("symbols", SymbolsToJs(env, NvmlLibrary::Instance().table()));
    o.Set("libraryPath", NvmlLibrary::Instance().loadedPath());
    o.Set("isMock", NvmlLibrary::Instance().isMock());
    Napi::Array devices = Napi::Array::New(env);
    uint32_t n = 0;
    for (uint32_t index : core_->sampler->devices()) devices.Set(n++, static_cast<double>(index));
    o.Set("devices", devices);
    return o;
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  // latest(knownSequence?): the newest snapshot, undefined when it is still knownSequence, null before
  // the first pass. No NVML call.
  Napi::Value Latest(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (core_->released) return env.Null();
    const double known = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    if (static_cast<double>(core_->sampler->publishedSequence()) == known) return env.Undefined();
    const Snapshot& snapshot = core_->sampler->Latest();
    if (snapshot.sequence == 0) return env.Null();
    return SnapshotToJs(env, snapshot);
  }

  Napi::Value PublishedSequence(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(core_->sampler->publishedSequence()));
  }

  // setWatermarks([{ id, device, thresholdBytes, pids? }])
  Napi::Value SetWatermarks(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, "setWatermarks expects an array");
    Napi::Array array = info[0].As<Napi::Array>();
    std::vector<Watermark> marks;
    for (uint32_t i = 0; i < array.Length(); ++i) {
      Napi::Object o = array.Get(i).As<Napi::Object>();
      Watermark mark;
      mark.id = o.Get("id").ToNumber().Uint32Value();
      mark.device = o.Get("device").ToNumber().Uint32Value();
      const double threshold = o.Get("thresholdBytes").ToNumber().DoubleValue();
      if (!std::isfinite(threshold) || threshold < 0) {
        throw Napi::RangeError::New(env, "thresholdBytes must be a non-negative number");
      }
      mark.thresholdBytes = static_cast<uint64_t>(threshold);
      Napi::Value pids = o.Get("pids");
      if (pids.IsArray()) {
        mark.ofPids = true;
        Napi::Array list = pids.As<Napi::Array>();
        for (uint32_t j = 0; j < list.Length(); ++j) mark.pids.push_back(list.Get(j).ToNumber().Uint32Value());
      }
      marks.push_back(std::move(mark));
    }
    core_->sampler->SetWatermarks(std::move(marks));
    return env.Undefined();
  }

  Napi::Value RequestSample(const Napi::CallbackInfo& info) {
    core_->sampler->RequestSampleEvent();
    return info.Env().Undefined();
  }

  // setKeepAlive(true) while JS awaits the next sample, so the event loop does not exit under it.
  Napi::Value SetKeepAlive(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_->released) {
      if (info[0].ToBoolean().Value()) {
        core_->onEvents.Ref(env);
      } else {
        core_->onEvents.Unref(env);
      }
    }
    return env.Undefined();
  }

  std::shared_ptr<SamplerCore> core_;
  AddonData* data_ = nullptr;
};

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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  // Worker termination and environment teardown: stop and join every sampler of this environment.
  env.AddCleanupHook([data] {
    std::vector<SamplerWrap*> samplers(data->samplers.begin(), data->samplers.end());
    for (SamplerWrap* sampler : samplers) sampler->DetachFromEnvironment();
    data->samplers.clear();
  });
  Napi::Function samplerClass = SamplerWrap::Define(env);
  data->samplerConstructor = Napi::Persistent(samplerClass);
  exports.Set("Sampler", samplerClass);
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("readOnce", Napi::Function::New(env, ReadOnce, "readOnce"));
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  exports.Set("mockWarnings", Napi::Function::New(env, MockWarnings, "mockWarnings"));
  return exports;
}

}  // namespace
}  // namespace vramguard

static Napi::Object InitVramguard(Napi::Env env, Napi::Object exports) { return vramguard::Init(env, exports); }
NODE_API_MODULE(vramguard, InitVramguard)

// The JS Sampler class and what it shares with the sampler thread: a SamplerWrap per JS object, a
// SamplerCore shared with the thread-safe function that delivers events. Stopped by stop(), by the
// object's finalizer, or by the environment's cleanup hook (DetachSamplers), whichever comes first.
#include "js_sampler.h"

#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "js_guard.h"
#include "js_snapshot.h"
#include "js_values.h"
#include "nvml_loader.h"
#include "sampler.h"

namespace vramguard {
namespace {

// What the sampler thread, the thread-safe function and the JS wrapper share. The wrapper holds one
// reference and the thread-safe function another (dropped in its finalizer), so a call still queued
// when the wrapper is collected finds the core alive. The sampler thread never outlives the thread-safe
// function: whoever ends the function (Shutdown, or Node's own teardown through OnFunctionFinalized)
// stops and joins the thread first.
struct SamplerCore {
  std::unique_ptr<Sampler> sampler;
  napi_threadsafe_function onEvents = nullptr;
  std::atomic<bool> callPending{false};
  bool released = false;  // JS thread only: no call into onEvents may happen any more
  std::vector<SamplerEvent> takenEvents;  // JS thread only: the events being delivered (CallJs)

  ~SamplerCore() {
    GuardSilently([&] {
      if (sampler) sampler->Stop();
    });
  }

  // Stops the thread, then releases the thread-safe function: in that order, so nothing calls a
  // released function. JS thread only.
  void Shutdown() {
    if (released) return;
    released = true;
    sampler->Stop();
    napi_release_threadsafe_function(onEvents, napi_tsfn_release);
  }

  // Sampler thread: coalesce wake-ups; the JS side drains every queued event per call. A non-blocking
  // call on a closing function answers napi_closing, which is fine: the environment is going away.
  void Notify() noexcept {
    if (callPending.exchange(true, std::memory_order_acq_rel)) return;
    napi_call_threadsafe_function(onEvents, nullptr, napi_tsfn_nonblocking);
  }

  // JS thread, from the thread-safe function. env and callback are null when Node drops queued calls
  // at teardown. While the environment stops, JS cannot run: creating the events or calling back fails,
  // and that is the end of it (a pending exception is left to Node, which drops it when terminating and
  // reports it otherwise).
  static void CallJs(napi_env env, napi_value callback, void* context, void* /*data*/) noexcept {
    GuardSilently([&] {
      if (env == nullptr || callback == nullptr) return;
      SamplerCore* core = static_cast<std::shared_ptr<SamplerCore>*>(context)->get();
      core->callPending.store(false, std::memory_order_release);
      if (core->released) return;
      std::vector<SamplerEvent>& events = core->takenEvents;  // kept between calls: no allocation per wake-up
      core->sampler->TakeEvents(events);
      if (events.empty()) return;
      Napi::Env jsEnv(env);
      Napi::Array array = Napi::Array::New(jsEnv, events.size());
      for (size_t i = 0; i < events.size(); ++i) array.Set(static_cast<uint32_t>(i), EventToJs(jsEnv, events[i]));
      napi_value undefined = nullptr;
      napi_value argument = array;
      if (napi_get_undefined(env, &undefined) != napi_ok) return;
      napi_call_function(env, undefined, callback, 1, &argument, nullptr);
    });
  }

  // JS thread: the thread-safe function is gone (released, or closed by Node's teardown).
  static void OnFunctionFinalized(napi_env /*env*/, void* data, void* /*hint*/) noexcept {
    auto* holder = static_cast<std::shared_ptr<SamplerCore>*>(data);
    GuardSilently([&] {
      SamplerCore& core = **holder;
      core.released = true;
      core.sampler->Stop();
    });
    delete holder;
  }
};

}  // namespace

// The JS Sampler class: a plain object napi_wrap'ped with a SamplerWrap (no node-addon-api ObjectWrap,
// so that every entry point is one of ours, see js_guard.h).
class SamplerWrap {
 public:
  static Napi::Function Define(Napi::Env env) {
    const napi_property_descriptor methods[] = {
        MethodProperty<SamplerWrap, &SamplerWrap::Start>("start"),
        MethodProperty<SamplerWrap, &SamplerWrap::Stop>("stop"),
        MethodProperty<SamplerWrap, &SamplerWrap::Latest>("latest"),
        MethodProperty<SamplerWrap, &SamplerWrap::PublishedSequence>("publishedSequence"),
        MethodProperty<SamplerWrap, &SamplerWrap::SetWatermarks>("setWatermarks"),
        MethodProperty<SamplerWrap, &SamplerWrap::RequestSample>("requestSample"),
        MethodProperty<SamplerWrap, &SamplerWrap::SetKeepAlive>("setKeepAlive"),
    };
    napi_value constructor = nullptr;
    Check(env, napi_define_class(env, "Sampler", NAPI_AUTO_LENGTH, &SamplerWrap::Construct, nullptr,
                                 sizeof(methods) / sizeof(methods[0]), methods, &constructor));
    return Napi::Function(env, constructor);
  }

  // The environment is going away: stop, and never touch its instance data again.
  void DetachFromEnvironment() noexcept {
    Shutdown();
    data_ = nullptr;
  }

  ~SamplerWrap() {
    Shutdown();
    if (data_ != nullptr) data_->samplers.erase(this);
  }

 private:
  // new Sampler({ intervalMs, devices, libraryPath }, onEvents)
  static napi_value Construct(napi_env env, napi_callback_info info) noexcept {
    return GuardValue(env, [&]() -> Napi::Value {
      Napi::CallbackInfo callbackInfo(env, info);
      if (!callbackInfo.IsConstructCall()) throw Napi::TypeError::New(env, "Sampler must be called with new");
      std::unique_ptr<SamplerWrap> wrap(new SamplerWrap(callbackInfo));
      Check(env, napi_wrap(env, callbackInfo.This(), wrap.get(), &SamplerWrap::Finalize, nullptr, nullptr));
      wrap.release();
      return callbackInfo.This();
    });
  }

  // The JS object was collected, or its environment is being torn down.
  static void Finalize(napi_env /*env*/, void* data, void* /*hint*/) noexcept {
    GuardSilently([&] { delete static_cast<SamplerWrap*>(data); });
  }

  explicit SamplerWrap(const Napi::CallbackInfo& info) {
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
    void* data = nullptr;
    Check(env, napi_get_instance_data(env, &data));  // before the thread-safe function: nothing to undo
    data_ = static_cast<AddonData*>(data);
    auto core = std::make_shared<SamplerCore>();
    // The sampler is owned by the core and joined before the core goes: a plain pointer is enough.
    SamplerCore* raw = core.get();
    core->sampler = std::make_unique<Sampler>(samplerOptions, [raw] { raw->Notify(); });
    auto* holder = new std::shared_ptr<SamplerCore>(core);
    const napi_status status = napi_create_threadsafe_function(
        env, info[1], nullptr, Napi::String::New(env, "vramguard-sampler"), 0, 1, holder,
        &SamplerCore::OnFunctionFinalized, holder, &SamplerCore::CallJs, &core->onEvents);
    if (status != napi_ok) {
      delete holder;
      throw Napi::Error::New(env, "cannot create the sampler's thread-safe function");
    }
    napi_unref_threadsafe_function(env, core->onEvents);  // a sampler never keeps the process alive by itself
    core_ = std::move(core);
    data_->samplers.insert(this);
  }

  // Called from stop(), the finalizer and the environment's cleanup hook.
  void Shutdown() noexcept {
    GuardSilently([&] {
      if (core_) core_->Shutdown();
    });
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (core_->released || core_->sampler->running()) {
      throw Napi::Error::New(env, "sampler already started or stopped; create a new one");
    }
    ReadFailure failure;
    if (!core_->sampler->Start(&failure)) {
      Shutdown();
      return FailureToJs(env, failure);
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

  // latest(knownSequence, numbers, strings): writes the newest snapshot into numbers (a Float64Array)
  // and strings (see js_snapshot.h) and returns the slots written (minus the slots needed when numbers
  // is too small); undefined when it is still knownSequence, null before the first pass. No NVML call.
  Napi::Value Latest(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (core_->released) return env.Null();
    double known = -1;
    Check(env, napi_get_value_double(env, info[0], &known));
    if (static_cast<double>(core_->sampler->publishedSequence()) == known) return env.Undefined();
    const Snapshot& snapshot = core_->sampler->Latest();
    if (snapshot.sequence == 0) return env.Null();
    return Napi::Number::New(env, PackSnapshot(env, snapshot, info[1], info[2], strings_));
  }

  Napi::Value PublishedSequence(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(core_->sampler->publishedSequence()));
  }

  // setWatermarks([{ id, device, thresholdBytes, pids?, migUuid? }])
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
      Napi::Value migUuid = o.Get("migUuid");
      if (migUuid.IsString()) mark.migUuid = migUuid.As<Napi::String>().Utf8Value();
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
        napi_ref_threadsafe_function(env, core_->onEvents);
      } else {
        napi_unref_threadsafe_function(env, core_->onEvents);
      }
    }
    return env.Undefined();
  }

  std::shared_ptr<SamplerCore> core_;
  AddonData* data_ = nullptr;
  JsStringTable strings_;  // what this sampler's JS reader has been given
};

Napi::Function DefineSampler(Napi::Env env) { return SamplerWrap::Define(env); }

void DetachSamplers(AddonData& data) noexcept {
  GuardSilently([&] {
    std::vector<SamplerWrap*> samplers(data.samplers.begin(), data.samplers.end());
    for (SamplerWrap* sampler : samplers) sampler->DetachFromEnvironment();
  });
  data.samplers.clear();
}

}  // namespace vramguard

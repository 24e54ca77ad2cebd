// Native values as JS values: system info, symbols, failures and sampler events (snapshots, the hot
// path, are in js_snapshot.cc); and the option values read from JS (library path, device list).
#include "js_values.h"

#include <cmath>
#include <string>

namespace vramguard {

Napi::Object ReasonToJs(Napi::Env env, nvmlReturn_t code, const char* function) {
  Napi::Object reason = Napi::Object::New(env);
  reason.Set("code", NvmlReturnName(code));
  reason.Set("returnValue", static_cast<double>(code));
  reason.Set("function", function);
  return reason;
}

namespace {

// Sets key to the reading's value (converted by fn) or to null, noting why in missing.
template <typename T, typename Convert>
void SetReading(Napi::Object& target, Napi::Object& missing, const char* key, const Reading<T>& reading,
                Convert convert) {
  if (reading.ok()) {
    target.Set(key, convert(reading.value));
  } else {
    target.Set(key, target.Env().Null());
    missing.Set(key, ReasonToJs(target.Env(), reading.status, reading.function));
  }
}

}  // namespace

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

Napi::Object FailureToJs(Napi::Env env, const ReadFailure& failure) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", false);
  o.Set("kind", FailureKindName(failure.kind));
  o.Set("code", NvmlReturnName(failure.code));
  o.Set("returnValue", static_cast<double>(failure.code));
  o.Set("function", failure.function);
  o.Set("reason", failure.reason);
  return o;
}

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
      o.Set("reason", ReasonToJs(env, e.code, e.function));
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

}  // namespace vramguard

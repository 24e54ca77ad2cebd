// Native values as JS values: snapshots, system info, symbols, failures and sampler events. One line
// per field: a field added to snapshot.h is converted here, in the function of its struct.
#include "js_values.h"

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
  o.Set("lostReason", d.lost ? Napi::Value(ReasonToJs(env, d.lostStatus.status, d.lostStatus.function)) : env.Null());
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
    missing.Set("processes", ReasonToJs(env, d.processListStatus.status, d.processListStatus.function));
  }
  if (!d.graphicsListStatus.ok() && !d.lost) {
    missing.Set("graphicsProcesses", ReasonToJs(env, d.graphicsListStatus.status, d.graphicsListStatus.function));
  }
  if (!d.mpsListStatus.ok() && !d.lost) {
    missing.Set("mpsProcesses", ReasonToJs(env, d.mpsListStatus.status, d.mpsListStatus.function));
  }
  const nvmlReturn_t utilStatus = d.processUtilizationStatus.status;
  if (utilStatus != NVML_SUCCESS && utilStatus != NVML_NOT_FOUND) {
    missing.Set("processUtilization", ReasonToJs(env, utilStatus, d.processUtilizationStatus.function));
  }
  o.Set("processUtilizationFresh", utilStatus == NVML_SUCCESS);
  o.Set("sampledAt", num(d.sampledAtMicros / 1000.0));
  o.Set("readDurationMs", num(d.readNanos / 1e6));
  o.Set("missing", missing);
  return o;
}

}  // namespace

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

}  // namespace vramguard

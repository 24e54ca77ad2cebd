// Native values as JS values (node-addon-api): what the bindings hand to JavaScript, but snapshots
// (js_snapshot.h); and the two option values read from JS. No N-API entry
// points here (see js_guard.h); every function may throw Napi::Error inside a guarded body.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "device_pass.h"
#include "device_reader.h"
#include "nvml_loader.h"
#include "sampler.h"
#include "snapshot.h"

namespace vramguard {

// { code, returnValue, function }: why a value is absent.
Napi::Object ReasonToJs(Napi::Env env, nvmlReturn_t code, const char* function);
Napi::Object SystemToJs(Napi::Env env, const SystemInfo& info);
// { nvmlFunctionName: exported? } for every function vramguard can use.
Napi::Object SymbolsToJs(Napi::Env env, const NvmlFunctionTable& table);
// { ok: false, kind, code, returnValue, function, reason }
Napi::Object FailureToJs(Napi::Env env, const ReadFailure& failure);
Napi::Value EventToJs(Napi::Env env, const SamplerEvent& event);

// From JS: a string, or "" for anything else (an absent library path).
std::string OptionalString(const Napi::Value& value);
// From JS: an array of device indexes (non-negative integers; TypeError naming a bad one), or none.
std::vector<uint32_t> DeviceList(const Napi::Value& value);

}  // namespace vramguard

// Snapshots to JavaScript, fast: the addon writes a snapshot as flat numbers into a Float64Array that
// JS owns, with strings interned once into a JS array beside it; src/native-snapshot.ts builds the
// objects from the layout the addon describes. One N-API call per snapshot instead of one per field
// (objects built in JS are an order of magnitude cheaper than through N-API).
//
// Every field is listed once, in SnapshotFields/DeviceFields/ProcessFields (js_snapshot.cc): the same
// list writes the numbers and describes the layout, so a new field is one line there (and its type in
// src/types.ts).
#pragma once

#include <napi.h>

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

#include "snapshot.h"

namespace vramguard {

// Strings JS has already been given, by content, with their index in the JS array. One per JS reader
// (a native sampler's, or a readOnce call's): steady-state snapshots create no JS string at all.
class JsStringTable {
 public:
  // Index of s in strings (appending it there when new).
  uint32_t Intern(napi_env env, napi_value strings, std::string_view s);
  size_t size() const { return stored_.size(); }
  void Clear() {
    indexes_.clear();
    stored_.clear();
  }

  static constexpr size_t kMaxStrings = 16384;  // then start over (a driver that invents names)

 private:
  std::deque<std::string> stored_;              // stable addresses for the views below
  std::unordered_map<std::string_view, uint32_t> indexes_;
};

// Writes snapshot into numbers (a Float64Array), interning strings into strings (a JS array). Returns
// the number of slots written, or minus the slots needed when numbers is too small (nothing usable
// written; JS grows the array and asks again).
double PackSnapshot(napi_env env, const Snapshot& snapshot, napi_value numbers, napi_value strings,
                    JsStringTable& table);

// { snapshot, device, process, migInstance }: each an array of { name, kind[, flags] } in slot order, for the decoder.
Napi::Object SnapshotLayoutToJs(Napi::Env env);

}  // namespace vramguard

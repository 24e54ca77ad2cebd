// The scenario parser's field readers (scenario_fields.cc), for scenario.cc: each throws InputError
// naming the JSON path of a bad value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "json.h"
#include "scenario.h"

namespace vgmock {
namespace fields {

using json::Value;

std::string indexPath(const std::string &path, std::size_t i);
std::string memberPath(const std::string &path, const std::string &key);
const Value &requireObject(const Value &value, const std::string &path);
const Value &requireArray(const Value &value, const std::string &path);
// Every key of object must be in allowed (a nullptr-terminated list).
void checkKeys(const Value &object, const std::string &path, const char *const *allowed);
std::uint64_t readUint64(const Value &value, const std::string &path);
std::uint64_t readUintInRange(const Value &value, const std::string &path, std::uint64_t min, std::uint64_t max);
bool readBool(const Value &value, const std::string &path);
// A non-empty string without NUL characters that fits NVML's buffer of bufferSize bytes (NUL included).
std::string readText(const Value &value, const std::string &path, std::size_t bufferSize);
int readDeviceIndex(const Value &value, const std::string &path, std::size_t deviceCount);
Fn readFunction(const Value &value, const std::string &path);
void applyProcessFields(const Value &object, Process *process, const std::string &path);
void applyDeviceFields(const Value &object, Device *device, const std::string &path, bool processesAllowed);
ErrorRule parseErrorRule(const Value &object, const std::string &path, std::size_t deviceCount, bool isOp);
// A copy of object without keys.
Value withoutKeys(const Value &object, std::initializer_list<const char *> keys);

}  // namespace fields
}  // namespace vgmock

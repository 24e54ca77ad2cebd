#include "js_snapshot.h"

#include <cmath>
#include <initializer_list>
#include <limits>
#include <vector>

#include "js_guard.h"

namespace vramguard {

namespace {

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

double Plain(double v) { return v; }
double Ratio(double percent) { return percent / 100.0; }
double Watts(double milliwatts) { return milliwatts / 1000.0; }
double Hertz(double megahertz) { return megahertz * 1e6; }

bool UtilizationMissing(nvmlReturn_t status) { return status != NVML_SUCCESS && status != NVML_NOT_FOUND; }

// ---- The fields: one line each, in the order of the JS objects' properties --------------------------
// A field whose reading failed is null in JS and its reason is in the device's `missing` object.

template <typename Fields>
void ProcessFields(Fields& f, const ProcessSample& p) {
  f.Number("pid", p.pid);
  f.Nullable("usedBytes", p.usedKnown, static_cast<double>(p.usedBytes));
  f.Flags("types", p.types, {"compute", "graphics", "mps"});  // kProcessCompute, kProcessGraphics, kProcessMps
  f.Nullable("gpuInstanceId", p.gpuInstanceId != 0xFFFFFFFFu, p.gpuInstanceId);
  f.Nullable("computeInstanceId", p.computeInstanceId != 0xFFFFFFFFu, p.computeInstanceId);
  f.Nullable("smUtilizationRatio", p.utilizationKnown, Ratio(p.smUtilPercent));
  f.Nullable("memoryUtilizationRatio", p.utilizationKnown, Ratio(p.memUtilPercent));
  f.Nullable("encoderUtilizationRatio", p.utilizationKnown, Ratio(p.encUtilPercent));
  f.Nullable("decoderUtilizationRatio", p.utilizationKnown, Ratio(p.decUtilPercent));
}

// A GPU's or a MIG device's memory: the same fields, read the same way.
template <typename Fields, typename Sample>
void MemoryFields(Fields& f, const Sample& s) {
  f.Reading("memoryTotalBytes", s.memoryTotal, Plain);
  f.Reading("memoryUsedBytes", s.memoryUsed, Plain);
  f.Reading("memoryFreeBytes", s.memoryFree, Plain);
  f.Reading("memoryReservedBytes", s.memoryReserved, Plain);
  f.Nullable("memoryInfoVersion", s.memoryInfoVersion != 0, s.memoryInfoVersion);
}

template <typename Fields>
void MigInstanceFields(Fields& f, const MigInstanceSample& m) {
  f.Number("index", m.index);
  f.StringReading("uuid", m.uuid);
  f.Reading("gpuInstanceId", m.gpuInstanceId, Plain);
  f.Reading("computeInstanceId", m.computeInstanceId, Plain);
  MemoryFields(f, m);
  f.NullableString("processRecordLayout", LayoutName(m.processLayout));
  f.Processes("processes", m.processListStatus, m.processes);
}

template <typename Fields>
void DeviceFields(Fields& f, const DeviceSample& d) {
  f.Number("index", d.index);
  f.StringReading("uuid", d.identity.uuid);
  f.StringReading("name", d.identity.name);
  f.StringReading("pciBusId", d.identity.pciBusId);
  f.Reading("pciDeviceId", d.identity.pciDeviceId, Plain);
  f.Boolean("lost", d.lost);
  f.Reason("lostReason", d.lost, d.lostStatus);
  MemoryFields(f, d);
  f.Reading("gpuUtilizationRatio", d.gpuUtilPercent, Ratio);
  f.Reading("memoryUtilizationRatio", d.memoryUtilPercent, Ratio);
  f.Reading("temperatureCelsius", d.temperatureCelsius, Plain);
  f.Reading("powerUsageWatts", d.powerUsageMilliwatts, Watts);
  f.Reading("powerLimitWatts", d.powerLimitMilliwatts, Watts);
  f.Reading("smClockHertz", d.smClockMhz, Hertz);
  f.Reading("memoryClockHertz", d.memoryClockMhz, Hertz);
  f.NullableString("processRecordLayout", LayoutName(d.processLayout));
  f.Processes("processes", d.processListStatus, d.processes);
  f.MissingIf("graphicsProcesses", !d.graphicsListStatus.ok() && !d.lost, d.graphicsListStatus);
  f.MissingIf("mpsProcesses", !d.mpsListStatus.ok() && !d.lost, d.mpsListStatus);
  f.MissingIf("processUtilization", UtilizationMissing(d.processUtilizationStatus.status), d.processUtilizationStatus);
  f.Boolean("processUtilizationFresh", d.processUtilizationStatus.status == NVML_SUCCESS);
  f.Number("utilizationSamplesRejected", d.utilizationSamplesRejected);
  f.Number("utilizationSamplesRejectedTotal", static_cast<double>(d.utilizationSamplesRejectedTotal));
  f.Mig("mig", d.mig);
  f.Number("sampledAt", d.sampledAtMicros / 1000.0);
  f.Number("readDurationMs", d.readNanos / 1e6);
}

template <typename Fields>
void SnapshotFields(Fields& f, const Snapshot& s) {
  f.Number("sequence", static_cast<double>(s.sequence));
  f.Number("timestamp", s.timestampMicros / 1000.0);
  f.Number("passDurationMs", s.passNanos / 1e6);
  f.Devices("devices", s.devices);
}

// ---- Writing the numbers ----------------------------------------------------------------------------
// Slots per kind: number, nullable (NaN: null), boolean, nullableString (string index or NaN), flags
// (bits): 1. reading, stringReading: [status, value or the failing function's string index].
// reason, missingIf: [status (0: none), function]. processes: [status, function, count] then the
// processes. devices: [count] then the devices. mig: [mode status, current mode or function, pending mode,
// instances status, function, count] then the instances (always 6 slots before them).

class Packer {
 public:
  Packer(napi_env env, napi_value strings, JsStringTable& table, double* data, size_t capacity)
      : env_(env), strings_(strings), table_(table), data_(data), capacity_(capacity) {}

  size_t written() const { return written_; }

  void Number(const char*, double v) { Put(v); }
  void Nullable(const char*, bool known, double v) { Put(known ? v : std::numeric_limits<double>::quiet_NaN()); }
  void Boolean(const char*, bool v) { Put(v ? 1 : 0); }
  void NullableString(const char*, const char* s) {
    Put(s == nullptr ? std::numeric_limits<double>::quiet_NaN() : String(s));
  }
  void Flags(const char*, uint32_t bits, std::initializer_list<const char*>) { Put(bits); }
  template <typename T>
  void Reading(const char*, const vramguard::Reading<T>& r, double (*convert)(double)) {
    Put(r.status);
    Put(r.ok() ? convert(static_cast<double>(r.value)) : String(r.function));
  }
  void StringReading(const char*, const vramguard::Reading<std::string>& r) {
    Put(r.status);
    Put(r.ok() ? String(r.value) : String(r.function));
  }
  void Reason(const char*, bool present, const vramguard::Reading<int>& r) {
    Put(present ? r.status : 0);
    Put(present ? String(r.function) : 0);
  }
  void MissingIf(const char* name, bool missing, const vramguard::Reading<int>& r) { Reason(name, missing, r); }
  void Processes(const char*, const vramguard::Reading<int>& status, const std::vector<ProcessSample>& list) {
    Put(status.status);
    Put(status.ok() ? 0 : String(status.function));
    Put(status.ok() ? static_cast<double>(list.size()) : 0);
    if (!status.ok()) return;
    for (const ProcessSample& p : list) ProcessFields(*this, p);
  }
  void Devices(const char*, const std::vector<DeviceSample>& list) {
    Put(static_cast<double>(list.size()));
    for (const DeviceSample& d : list) DeviceFields(*this, d);
  }
  void Mig(const char*, const MigSample& m) {
    const bool modeKnown = m.currentMode.ok();
    Put(m.currentMode.status);
    Put(modeKnown ? m.currentMode.value : String(m.currentMode.function));
    Put(modeKnown ? m.pendingMode : 0);
    const bool listed = modeKnown && m.instancesStatus.ok();
    Put(modeKnown ? m.instancesStatus.status : 0);
    Put(modeKnown && !listed ? String(m.instancesStatus.function) : 0);
    Put(listed ? static_cast<double>(m.instances.size()) : 0);
    if (!listed) return;
    for (const MigInstanceSample& i : m.instances) MigInstanceFields(*this, i);
  }

 private:
  void Put(double v) {
    if (written_ < capacity_) data_[written_] = v;
    ++written_;
  }
  double String(std::string_view s) { return table_.Intern(env_, strings_, s); }

  napi_env env_;
  napi_value strings_;
  JsStringTable& table_;
  double* data_;
  size_t capacity_;
  size_t written_ = 0;
};

// ---- Describing the layout --------------------------------------------------------------------------

class Describer {
 public:
  explicit Describer(Napi::Env env) : env_(env), fields_(Napi::Array::New(env)) {}
  Napi::Array fields() const { return fields_; }

  void Number(const char* name, double) { Add(name, "number"); }
  void Nullable(const char* name, bool, double) { Add(name, "nullable"); }
  void Boolean(const char* name, bool) { Add(name, "boolean"); }
  void NullableString(const char* name, const char*) { Add(name, "nullableString"); }
  void Flags(const char* name, uint32_t, std::initializer_list<const char*> flags) {
    Napi::Object field = Add(name, "flags");
    Napi::Array names = Napi::Array::New(env_, flags.size());
    uint32_t i = 0;
    for (const char* flag : flags) names.Set(i++, flag);
    field.Set("flags", names);
  }
  template <typename T>
  void Reading(const char* name, const vramguard::Reading<T>&, double (*)(double)) {
    Add(name, "reading");
  }
  void StringReading(const char* name, const vramguard::Reading<std::string>&) { Add(name, "stringReading"); }
  void Reason(const char* name, bool, const vramguard::Reading<int>&) { Add(name, "reason"); }
  void MissingIf(const char* name, bool, const vramguard::Reading<int>&) { Add(name, "missingIf"); }
  void Processes(const char* name, const vramguard::Reading<int>&, const std::vector<ProcessSample>&) {
    Add(name, "processes");
  }
  void Devices(const char* name, const std::vector<DeviceSample>&) { Add(name, "devices"); }
  void Mig(const char* name, const MigSample&) { Add(name, "mig"); }

 private:
  Napi::Object Add(const char* name, const char* kind) {
    Napi::Object field = Napi::Object::New(env_);
    field.Set("name", name);
    field.Set("kind", kind);
    fields_.Set(fields_.Length(), field);
    return field;
  }

  Napi::Env env_;
  Napi::Array fields_;
};

}  // namespace

uint32_t JsStringTable::Intern(napi_env env, napi_value strings, std::string_view s) {
  auto found = indexes_.find(s);
  if (found != indexes_.end()) return found->second;
  const uint32_t index = static_cast<uint32_t>(stored_.size());
  stored_.emplace_back(s);
  const std::string& kept = stored_.back();
  indexes_.emplace(std::string_view(kept), index);
  napi_value value = nullptr;
  Check(env, napi_create_string_utf8(env, kept.data(), kept.size(), &value));
  Check(env, napi_set_element(env, strings, index, value));
  return index;
}

double PackSnapshot(napi_env env, const Snapshot& snapshot, napi_value numbers, napi_value strings,
                    JsStringTable& table) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  Check(env, napi_get_typedarray_info(env, numbers, &type, &length, &data, nullptr, nullptr));
  if (type != napi_float64_array) throw Napi::TypeError::New(env, "snapshot numbers must be a Float64Array");
  if (table.size() > JsStringTable::kMaxStrings) {
    // Start over between snapshots, never within one: indexes already written stay valid.
    table.Clear();
    napi_value zero = nullptr;
    Check(env, napi_create_uint32(env, 0, &zero));
    Check(env, napi_set_named_property(env, strings, "length", zero));
  }
  Packer packer(env, strings, table, static_cast<double*>(data), length);
  SnapshotFields(packer, snapshot);
  const size_t written = packer.written();
  return written <= length ? static_cast<double>(written) : -static_cast<double>(written);
}

Napi::Object SnapshotLayoutToJs(Napi::Env env) {
  Describer snapshot(env), device(env), process(env), migInstance(env);
  SnapshotFields(snapshot, Snapshot());
  DeviceFields(device, DeviceSample());
  ProcessFields(process, ProcessSample());
  MigInstanceFields(migInstance, MigInstanceSample());
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("snapshot", snapshot.fields());
  layout.Set("device", device.fields());
  layout.Set("process", process.fields());
  layout.Set("migInstance", migInstance.fields());
  return layout;
}

}  // namespace vramguard

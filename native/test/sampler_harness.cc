// Drives the native core (loader, device reader, sampler) on the mock NVML without Node, so that the
// ASan/UBSan build can check it with LeakSanitizer on: no V8 or Node allocations to muddy the report.
//   sampler_harness <mock libnvidia-ml.so.1> <scratch dir>
// Exits non-zero on a failed check; the sanitizers exit non-zero on an error or a leak.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "device_reader.h"
#include "nvml_loader.h"
#include "sampler.h"

using namespace vramguard;

namespace {
int failures = 0;
void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "harness: FAILED: %s\n", what);
    ++failures;
  }
}

void Append(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << "\n";
}

// Runs passes until predicate(latest) or a timeout.
template <typename Predicate>
bool WaitFor(Sampler& sampler, Predicate predicate) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    const Snapshot& snapshot = sampler.Latest();
    if (snapshot.sequence > 0 && predicate(snapshot)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: sampler_harness <mock library> <scratch dir>\n");
    return 2;
  }
  const std::string library = argv[1];
  const std::string dir = argv[2];
  const std::string scenario = dir + "/harness-scenario.json";
  const std::string control = dir + "/harness-control.ndjson";
  {
    std::ofstream out(scenario);
    out << R"({"devices":[)"
        << R"({"memory":{"total":25769803776,"reserved":1048576},"processes":[)"
        << R"({"pid":11,"usedBytes":1073741824,"type":"compute","smUtilPercent":20},)"
        << R"({"pid":12,"usedBytes":2147483648,"type":"compute+graphics"}]},)"
        << R"({"memory":{"total":25769803776},"processes":[{"pid":21,"usedBytes":null,"type":"mps"}]}]})";
  }
  std::ofstream(control).close();
  setenv("VRAMGUARD_MOCK_SCENARIO", scenario.c_str(), 1);
  setenv("VRAMGUARD_MOCK_CONTROL", control.c_str(), 1);

  // A library that does not exist: a clear failure, nothing loaded.
  {
    NvmlAcquireResult missing = NvmlLibrary::Instance().Acquire(dir + "/no-such-libnvidia-ml.so.1");
    Check(!missing.ok && missing.code == NVML_LIBRARY_NOT_FOUND, "missing library is reported");
  }

  int events = 0;
  Sampler::Options options;
  options.intervalNanos = 10'000'000;
  options.libraryPath = library;
  Sampler sampler(options, [&events] { ++events; });
  ReadFailure failure;
  const bool started = sampler.Start(&failure);
  Check(started, "sampler starts on the mock");
  if (!started) {
    std::fprintf(stderr, "harness: %s\n", failure.reason.c_str());
    return 1;
  }
  Watermark mark;
  mark.id = 1;
  mark.device = 0;
  mark.thresholdBytes = 4ull << 30;
  Watermark pids;
  pids.id = 2;
  pids.device = 0;
  pids.ofPids = true;
  pids.pids = {12, 11};
  pids.thresholdBytes = 2ull << 30;
  sampler.SetWatermarks({mark, pids});
  Check(WaitFor(sampler, [](const Snapshot& s) { return s.devices.size() == 2 && s.devices[0].processes.size() == 2; }),
        "first snapshot has both devices and processes");

  Append(control, R"({"op":"setProcess","device":0,"pid":13,"usedBytes":4294967296,"type":"compute"})");
  Check(WaitFor(sampler, [](const Snapshot& s) { return s.devices[0].processes.size() == 3; }), "live process appears");
  Append(control, R"({"op":"loseDevice","device":1})");
  Check(WaitFor(sampler, [](const Snapshot& s) { return s.devices[1].lost; }), "device 1 lost");
  Append(control, R"({"op":"recoverDevice","device":1})");
  Check(WaitFor(sampler, [](const Snapshot& s) { return !s.devices[1].lost; }), "device 1 recovered");
  sampler.RequestSampleEvent();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto queued = sampler.TakeEvents();
  bool sawWatermark = false, sawLost = false, sawRecovered = false, sawSample = false;
  for (const SamplerEvent& e : queued) {
    sawWatermark |= e.type == SamplerEvent::Type::kWatermark && e.watermarkId == 1 && e.above;
    sawLost |= e.type == SamplerEvent::Type::kDeviceLost && e.device == 1;
    sawRecovered |= e.type == SamplerEvent::Type::kDeviceRecovered && e.device == 1;
    sawSample |= e.type == SamplerEvent::Type::kSample;
  }
  Check(sawWatermark && sawLost && sawRecovered && sawSample, "events queued for crossing, loss, recovery, sample");
  Check(events > 0, "JS wake-up callback called");

  // A device past the count: a bad-device failure, and the sampler holds nothing afterwards.
  {
    Sampler::Options bad = options;
    bad.devices = {0, 9};
    Sampler badSampler(bad, [] {});
    ReadFailure badFailure;
    const int referencesBefore = NvmlLibrary::Instance().references();
    Check(!badSampler.Start(&badFailure), "a sampler of device 9 of 2 does not start");
    Check(badFailure.kind == FailureKind::kBadDevice, "device 9 of 2 is a bad-device failure");
    Check(NvmlLibrary::Instance().references() == referencesBefore, "a failed start holds no NVML reference");
  }

  // A second sampler shares NVML; stopping it leaves the first working.
  {
    Sampler second(options, [] {});
    ReadFailure secondFailure;
    Check(second.Start(&secondFailure), "second sampler starts");
    second.Stop();
  }
  Append(control, R"({"op":"setDevice","device":0,"temperatureCelsius":66})");
  Check(WaitFor(sampler, [](const Snapshot& s) { return s.devices[0].temperatureCelsius.value == 66; }),
        "first sampler still reads after the second stopped");
  sampler.Stop();
  Check(NvmlLibrary::Instance().references() == 0, "every NVML reference released");

  // One-off reads, as readOnce does.
  Check(NvmlLibrary::Instance().Acquire(library).ok, "acquire for a one-off read");
  const SystemInfo system = ReadSystemInfo(NvmlLibrary::Instance().table());
  DeviceReader reader(NvmlLibrary::Instance().table(), 0, DriverTraits::FromVersion(system.driverVersion.value));
  DeviceSample sample;
  reader.Read(sample, NowMicrosRealtime());
  Check(sample.memoryTotal.ok() && sample.memoryTotal.value == 25769803776ull, "one-off read");
  NvmlLibrary::Instance().Release();

  Check(DriverTraits::FromVersion("535.54.03").v3ProcessRecordsAre32Bytes, "535.54 writes 32-byte records");
  Check(!DriverTraits::FromVersion("535.104.05").v3ProcessRecordsAre32Bytes, "535.104 writes 24-byte records");
  Check(!DriverTraits::FromVersion("550.54.15").v3ProcessRecordsAre32Bytes, "550 writes 24-byte records");
  std::remove(scenario.c_str());
  std::remove(control.c_str());
  std::printf("harness: %s\n", failures == 0 ? "all checks passed" : "FAILED");
  return failures == 0 ? 0 : 1;
}

// Fault injection over the native reader, without Node: 8 GPUs on the mock NVML, every NVML function
// failing at random (seeded error rules with "function": "*" and a probability, one per code), and a
// number of passes through the device readers. Built with ASan/UBSan and run with LeakSanitizer on, so
// a crash, an out-of-bounds access or a leak fails it; it checks itself that every failed reading
// carries an NVML code and the function that returned it, that every injected code surfaced in the
// snapshots, and that the readings that did succeed are sane.
//   fault_harness <mock libnvidia-ml.so.1> <scratch dir> [passes, default 100000] [seed, default 1]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "device_reader.h"
#include "nvml_loader.h"

using namespace vramguard;

namespace {

int failures = 0;
void Check(bool ok, const std::string& what) {
  if (ok) return;
  if (failures < 20) std::fprintf(stderr, "fault_harness: FAILED: %s\n", what.c_str());
  ++failures;
}

// The codes injected, each on every function with this probability per call.
const int kInjected[] = {NVML_NOT_SUPPORTED,     NVML_NO_PERMISSION, NVML_INSUFFICIENT_SIZE, NVML_TIMEOUT,
                         NVML_GPU_IS_LOST,       NVML_MEMORY,        NVML_NO_DATA,           NVML_INVALID_STATE,
                         NVML_RESET_TYPE_NOT_SUPPORTED, NVML_UNKNOWN};
constexpr double kProbability = 0.004;

std::string Scenario(unsigned seed) {
  std::string s = "{\"errorSeed\":" + std::to_string(seed) + ",\"processUtilizationPeriodMs\":1,\"devices\":[";
  for (int d = 0; d < 8; ++d) {
    if (d > 0) s += ",";
    s += "{\"memory\":{\"total\":85899345920,\"reserved\":536870912},\"processUtilizationJunk\":" +
         std::string(d % 2 ? "true" : "false") + ",";
    // GPUs 6 and 7 in MIG mode: MIG devices at indexes 0 (gi 1) and 2 (gi 2), the processes in them.
    const bool mig = d >= 6;
    if (mig) {
      s += "\"migMode\":true,\"migInstances\":[{\"gpuInstanceId\":1,\"memory\":{\"total\":42949672960}},null,"
           "{\"gpuInstanceId\":2,\"memory\":{\"total\":21474836480}}],";
    }
    s += "\"processes\":[";
    for (int p = 0; p < 3; ++p) {
      if (p > 0) s += ",";
      const int pid = 1000 * (d + 1) + p;
      s += "{\"pid\":" + std::to_string(pid) + ",\"usedBytes\":" + std::to_string((p + 1) * 1073741824LL) +
           ",\"type\":\"" + (p == 2 ? "mps" : p == 1 ? "compute+graphics" : "compute") +
           "\",\"smUtilPercent\":" + std::to_string(10 * (p + 1)) +
           (mig ? ",\"gpuInstanceId\":" + std::to_string(p == 1 ? 2 : 1) + ",\"computeInstanceId\":0" : std::string()) + "}";
    }
    s += "]}";
  }
  s += "],\"errors\":[";
  for (size_t i = 0; i < sizeof kInjected / sizeof kInjected[0]; ++i) {
    if (i > 0) s += ",";
    s += "{\"function\":\"*\",\"return\":" + std::to_string(kInjected[i]) + ",\"probability\":" + std::to_string(kProbability) + "}";
  }
  return s + "]}";
}

template <typename T>
void CheckReading(const Reading<T>& r, const char* field, std::map<int, uint64_t>& seen) {
  if (r.ok()) return;
  ++seen[r.status];
  Check(r.function != nullptr && std::strncmp(r.function, "nvml", 4) == 0,
        std::string(field) + ": " + NvmlReturnName(r.status) + " without the NVML function that returned it (\"" +
            (r.function ? r.function : "null") + "\")");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: fault_harness <mock library> <scratch dir> [passes] [seed]\n");
    return 2;
  }
  const std::string dir = argv[2];
  const long passes = argc > 3 ? std::atol(argv[3]) : 100000;
  const unsigned seed = argc > 4 ? static_cast<unsigned>(std::atoi(argv[4])) : 1;
  const std::string scenario = dir + "/fault-scenario.json";
  std::ofstream(scenario) << Scenario(seed);
  std::ofstream(dir + "/fault-control.ndjson").close();
  setenv("VRAMGUARD_MOCK_SCENARIO", scenario.c_str(), 1);
  setenv("VRAMGUARD_MOCK_CONTROL", (dir + "/fault-control.ndjson").c_str(), 1);

  // Initialization itself fails at random: try until it works, as a restarting sampler would.
  NvmlLibrary& nvml = NvmlLibrary::Instance();
  NvmlAcquireResult acquired;
  int initAttempts = 0;
  do {
    acquired = nvml.Acquire(argv[1]);
    ++initAttempts;
  } while (!acquired.ok && acquired.function != "dlopen" && initAttempts < 1000);
  if (!acquired.ok) {
    std::fprintf(stderr, "fault_harness: %s\n", acquired.reason.c_str());
    return 1;
  }
  SystemInfo system;
  do system = ReadSystemInfo(nvml.table());
  while (!system.deviceCount.ok());
  Check(system.deviceCount.value == 8, "8 devices");

  std::vector<std::unique_ptr<DeviceReader>> readers;
  std::vector<DeviceSample> samples(8);
  for (uint32_t i = 0; i < 8; ++i) readers.push_back(std::make_unique<DeviceReader>(nvml.table(), i, system.traits));
  std::map<int, uint64_t> seen;
  uint64_t lostPasses = 0, processes = 0, migReadings = 0;
  for (long pass = 0; pass < passes; ++pass) {
    const uint64_t now = NowMicrosRealtime();
    for (uint32_t i = 0; i < 8; ++i) {
      DeviceSample& d = samples[i];
      readers[i]->Read(d, now);
      if (d.lost) {
        ++lostPasses;
        Check(d.lostStatus.status == NVML_GPU_IS_LOST && d.lostStatus.function[0] != '\0', "lost with its call");
        continue;
      }
      CheckReading(d.memoryTotal, "memoryTotal", seen);
      CheckReading(d.temperatureCelsius, "temperature", seen);
      CheckReading(d.powerUsageMilliwatts, "powerUsage", seen);
      CheckReading(d.smClockMhz, "smClock", seen);
      CheckReading(d.gpuUtilPercent, "gpuUtil", seen);
      CheckReading(d.processListStatus, "processList", seen);
      CheckReading(d.processUtilizationStatus, "processUtilization", seen);
      CheckReading(d.identity.uuid, "uuid", seen);
      if (d.memoryTotal.ok()) Check(d.memoryTotal.value == 85899345920ull, "memory total reads right");
      uint32_t previous = 0;
      for (const ProcessSample& p : d.processes) {
        Check(p.pid > previous, "processes sorted by pid, no duplicates");
        previous = p.pid;
        Check(p.pid / 1000 == i + 1, "process on its own GPU");
        Check(p.smUtilPercent <= 100 && p.memUtilPercent <= 100, "utilization within 0-100");
      }
      processes += d.processes.size();
      if (i < 6) {
        Check(!d.mig.currentMode.ok() && d.mig.instances.empty(), "a GPU without MIG reports no mode, no MIG devices");
        continue;
      }
      CheckReading(d.mig.currentMode, "migMode", seen);
      if (!d.mig.currentMode.ok()) continue;
      Check(d.mig.currentMode.value == NVML_DEVICE_MIG_ENABLE, "MIG mode reads right");
      CheckReading(d.mig.instancesStatus, "migInstances", seen);
      if (!d.mig.instancesStatus.ok()) continue;
      Check(d.mig.instances.size() == 2, "both MIG devices listed");
      for (const MigInstanceSample& m : d.mig.instances) {
        ++migReadings;
        Check(m.index == 0 || m.index == 2, "MIG device at its index");
        CheckReading(m.uuid, "migUuid", seen);
        if (m.uuid.ok()) Check(m.uuid.value.rfind("MIG-", 0) == 0, "MIG uuid");
        CheckReading(m.memoryTotal, "migMemory", seen);
        if (m.memoryTotal.ok()) Check(m.memoryTotal.value == (m.index == 0 ? 42949672960ull : 21474836480ull), "MIG memory reads right");
        for (const ProcessSample& p : m.processes) {
          Check(p.pid / 1000 == i + 1, "MIG process on its own GPU");
          if (m.gpuInstanceId.ok()) Check(p.gpuInstanceId == m.gpuInstanceId.value, "MIG process in its own instance");
        }
      }
    }
  }
  nvml.Release();

  std::set<int> missing(std::begin(kInjected), std::end(kInjected));
  missing.erase(NVML_GPU_IS_LOST);  // surfaces as lost, counted apart
  missing.erase(NVML_INSUFFICIENT_SIZE);  // the reader retries it away, as it should
  for (const auto& entry : seen) missing.erase(entry.first);
  Check(lostPasses > 0, "injected GPU_IS_LOST marks devices lost");
  Check(migReadings > 0, "MIG devices were read");
  for (int code : missing) Check(false, "injected code " + NvmlReturnName(code) + " never surfaced in a reading");
  std::printf("fault_harness: %ld passes x 8 GPUs, %d init attempts, %llu process readings, %llu lost device-passes, %llu MIG device readings,",
              passes, initAttempts, static_cast<unsigned long long>(processes), static_cast<unsigned long long>(lostPasses),
              static_cast<unsigned long long>(migReadings));
  for (const auto& entry : seen) std::printf(" %s=%llu", NvmlReturnName(entry.first).c_str(), static_cast<unsigned long long>(entry.second));
  std::printf("; %d failed checks\n", failures);
  return failures == 0 ? 0 : 1;
}

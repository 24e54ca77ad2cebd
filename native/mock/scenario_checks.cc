// The scenario's consistency checks (scenario.cc parses, these refuse what no GPU could show): unique
// pids and UUIDs, memory not over-committed, MIG instances within their board.
#include "scenario.h"

#include "scenario_fields.h"

#include <cstdint>
#include <string>

namespace vgmock {

using fields::indexPath;

namespace {
// A device's MIG instances: ids unique, each instance's memory within its total, the totals within the
// board's, and (when instances are declared) every process with instance ids in one of them.
void checkMigInstances(const Device &device, const std::string &devicePath, const std::string &label) {
  const std::string at = devicePath + ".migInstances";
  std::uint64_t totals = 0;
  for (std::size_t a = 0; a < device.migInstances.size(); ++a) {
    if (!device.migInstances[a]) continue;
    const MigInstance &instance = *device.migInstances[a];
    const std::string path = indexPath(at, a);
    for (std::size_t b = 0; b < a; ++b) {
      const std::optional<MigInstance> &other = device.migInstances[b];
      if (other && other->gpuInstanceId == instance.gpuInstanceId && other->computeInstanceId == instance.computeInstanceId) {
        throw InputError(path, "duplicate MIG instance " + std::to_string(instance.gpuInstanceId) + "/" +
                                   std::to_string(instance.computeInstanceId) + " on " + label + " (also at migInstances[" +
                                   std::to_string(b) + "])");
      }
      if (other && instance.uuid && other->uuid && *other->uuid == *instance.uuid) {
        throw InputError(path + ".uuid", "duplicate uuid " + json::quote(*instance.uuid) + " (migInstances[" +
                                             std::to_string(b) + "] has it too)");
      }
    }
    std::uint64_t committed = 0;
    bool overflow = __builtin_add_overflow(instance.memoryReserved, instance.memoryOtherUsed, &committed);
    for (const Process &process : device.processes) {
      if (runsIn(process, instance) && process.usedBytes) {
        overflow |= __builtin_add_overflow(committed, *process.usedBytes, &committed);
      }
    }
    if (overflow || committed > instance.memoryTotal) {
      throw InputError(path + ".memory", "MIG instance " + std::to_string(instance.gpuInstanceId) + "/" +
                                             std::to_string(instance.computeInstanceId) + " on " + label +
                                             " is over-committed: reserved + otherUsed + its processes' usedBytes " +
                                             (overflow ? std::string("overflow 64 bits") : std::to_string(committed)) +
                                             " exceed its total " + std::to_string(instance.memoryTotal) + " bytes");
    }
    if (__builtin_add_overflow(totals, instance.memoryTotal, &totals) || totals > device.memoryTotal) {
      throw InputError(path + ".memory.total", "the MIG instances' totals exceed " + label + "'s total " +
                                                   std::to_string(device.memoryTotal) + " bytes");
    }
  }
  if (device.migInstances.empty()) return;
  for (std::size_t p = 0; p < device.processes.size(); ++p) {
    const Process &process = device.processes[p];
    if (process.gpuInstanceId == kNoInstance && process.computeInstanceId == kNoInstance) continue;
    bool found = false;
    for (const std::optional<MigInstance> &instance : device.migInstances) found = found || (instance && runsIn(process, *instance));
    if (!found) {
      throw InputError(indexPath(devicePath + ".processes", p), "pid " + std::to_string(process.pid) + " is in MIG instance " +
                                                                    std::to_string(process.gpuInstanceId) + "/" +
                                                                    std::to_string(process.computeInstanceId) + ", which " +
                                                                    label + " lacks");
    }
  }
}
}  // namespace

void checkDevices(const std::vector<Device> &devices) {
  for (std::size_t i = 0; i < devices.size(); ++i) {
    const Device &device = devices[i];
    const std::string devicePath = indexPath("$.devices", i);
    const std::string label = "device " + std::to_string(i) + (device.name ? " (" + json::quote(*device.name) + ")" : "");

    for (std::size_t a = 0; a < device.processes.size(); ++a) {
      for (std::size_t b = 0; b < a; ++b) {
        if (device.processes[a].pid == device.processes[b].pid) {
          throw InputError(indexPath(devicePath + ".processes", a) + ".pid",
                           "duplicate pid " + std::to_string(device.processes[a].pid) + " on " + label +
                               " (also at processes[" + std::to_string(b) + "])");
        }
      }
    }

    std::uint64_t processBytes = 0;
    bool overflow = false;
    for (const Process &process : device.processes) {
      if (process.usedBytes) overflow |= __builtin_add_overflow(processBytes, *process.usedBytes, &processBytes);
    }
    std::uint64_t migOtherUsed = 0;  // in the parent's aggregate while MIG is enabled (Device::usedBytes)
    if (device.migMode == 1u) {
      for (const std::optional<MigInstance> &instance : device.migInstances) {
        if (instance) overflow |= __builtin_add_overflow(migOtherUsed, instance->memoryOtherUsed, &migOtherUsed);
      }
    }
    std::uint64_t committed = 0;
    overflow |= __builtin_add_overflow(device.memoryReserved, device.memoryOtherUsed, &committed);
    overflow |= __builtin_add_overflow(committed, processBytes, &committed);
    overflow |= __builtin_add_overflow(committed, migOtherUsed, &committed);
    if (overflow || committed > device.memoryTotal) {
      throw InputError(devicePath + ".memory",
                       label + " is over-committed: reserved " + std::to_string(device.memoryReserved) +
                           " + otherUsed " + std::to_string(device.memoryOtherUsed) +
                           (migOtherUsed ? " + MIG devices' otherUsed " + std::to_string(migOtherUsed) : std::string()) +
                           " + process usedBytes " +
                           (overflow ? std::string("(overflows 64 bits)") : std::to_string(processBytes)) +
                           " exceeds total " + std::to_string(device.memoryTotal) + " bytes");
    }

    checkMigInstances(device, devicePath, label);

    if (device.uuid) {
      for (std::size_t j = 0; j < i; ++j) {
        if (devices[j].uuid && *devices[j].uuid == *device.uuid) {
          throw InputError(devicePath + ".uuid", "duplicate uuid " + json::quote(*device.uuid) + " (device " +
                                                     std::to_string(j) + " has it too)");
        }
      }
    }
  }
}

}  // namespace vgmock

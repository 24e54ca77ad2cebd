// Per-process utilization for DeviceReader: nvmlDeviceGetProcessesUtilizationInfo (drivers 550.40.07 on,
// versioned) with nvmlDeviceGetProcessUtilization as the fall-back, a per-device lastSeen, and the
// validation careful clients do, because real drivers have returned junk: a sample is taken only when
// its pid is in this pass's process lists, every value is within 0-100, and its timestamp is newer than
// the last accepted one and not in the future. One accepted future timestamp would move lastSeen ahead
// and make every later call answer NOT_FOUND, showing 0% for good. Refused samples are counted.
//
// A process keeps its last accepted figures until kUtilizationHoldMicros pass without a new sample
// (the driver reports only non-zero samples, and an answer may cover only some processes).
#include <algorithm>
#include <cstring>

#include "device_reader.h"

namespace vramguard {

namespace {
constexpr uint64_t kUtilizationHoldMicros = 2'000'000;
constexpr uint64_t kFutureSlackMicros = 1'000'000;  // clock granularity between the driver and us
}  // namespace

VG_PASS_CODE nvmlReturn_t DeviceReader::FetchUtilizationSamples(const char*& function) {
  samples_.clear();
  if (utilizationInfoUsable_ && nvml_.nvmlDeviceGetProcessesUtilizationInfo != nullptr) {
    function = "nvmlDeviceGetProcessesUtilizationInfo";
    if (utilizationInfoBuffer_.empty()) utilizationInfoBuffer_.resize(32);
    nvmlProcessesUtilizationInfo_v1_t request;
    nvmlReturn_t rc = NVML_INSUFFICIENT_SIZE;
    for (int attempt = 0; attempt < 5 && rc == NVML_INSUFFICIENT_SIZE; ++attempt) {
      std::memset(&request, 0, sizeof request);
      request.version = nvmlProcessesUtilizationInfo_v1;
      request.processSamplesCount = static_cast<unsigned>(utilizationInfoBuffer_.size());
      request.lastSeenTimeStamp = lastSeenTimestamp_;
      request.procUtilArray = utilizationInfoBuffer_.data();
      rc = nvml_.nvmlDeviceGetProcessesUtilizationInfo(handle_, &request);
      if (rc == NVML_INSUFFICIENT_SIZE) {
        utilizationInfoBuffer_.resize(GrownCapacity(utilizationInfoBuffer_.size(), request.processSamplesCount));
      }
    }
    if (!IsVersionProblem(rc)) {
      if (rc == NVML_SUCCESS) {
        const unsigned n = std::min<unsigned>(request.processSamplesCount, static_cast<unsigned>(utilizationInfoBuffer_.size()));
        for (unsigned i = 0; i < n; ++i) {
          const nvmlProcessUtilizationInfo_v1_t& u = utilizationInfoBuffer_[i];
          samples_.push_back({u.pid, u.smUtil, u.memUtil, u.encUtil, u.decUtil, u.timeStamp, 0});
        }
      }
      return rc;
    }
    utilizationInfoUsable_ = false;  // this driver lacks it: the older call from now on
  }
  function = "nvmlDeviceGetProcessUtilization";
  if (nvml_.nvmlDeviceGetProcessUtilization == nullptr) return NVML_FUNCTION_NOT_FOUND;
  unsigned count = static_cast<unsigned>(utilizationBuffer_.size());
  nvmlReturn_t rc = nvml_.nvmlDeviceGetProcessUtilization(handle_, utilizationBuffer_.data(), &count, lastSeenTimestamp_);
  for (int attempt = 0; rc == NVML_INSUFFICIENT_SIZE && attempt < 4; ++attempt) {
    utilizationBuffer_.resize(GrownCapacity(utilizationBuffer_.size(), count));
    count = static_cast<unsigned>(utilizationBuffer_.size());
    rc = nvml_.nvmlDeviceGetProcessUtilization(handle_, utilizationBuffer_.data(), &count, lastSeenTimestamp_);
  }
  if (rc == NVML_SUCCESS) {
    count = std::min<unsigned>(count, static_cast<unsigned>(utilizationBuffer_.size()));
    for (unsigned i = 0; i < count; ++i) {
      const nvmlProcessUtilizationSample_t& u = utilizationBuffer_[i];
      samples_.push_back({u.pid, u.smUtil, u.memUtil, u.encUtil, u.decUtil, u.timeStamp, 0});
    }
  }
  return rc;
}

VG_PASS_CODE uint32_t DeviceReader::AcceptUtilizationSamples(const DeviceSample& out, uint64_t now) {
  uint32_t rejected = 0;
  unsigned long long newest = lastSeenTimestamp_;
  for (const UtilizationEntry& s : samples_) {
    const auto pos = std::lower_bound(out.processes.begin(), out.processes.end(), s.pid,
                                      [](const ProcessSample& p, uint32_t pid) { return p.pid < pid; });
    const bool listed = pos != out.processes.end() && pos->pid == s.pid;
    const bool inRange = s.sm <= 100 && s.mem <= 100 && s.enc <= 100 && s.dec <= 100;
    const bool timely = s.timeStamp > lastSeenTimestamp_ && s.timeStamp <= now + kFutureSlackMicros;
    if (!listed || !inRange || !timely) {
      ++rejected;
      continue;
    }
    newest = std::max(newest, s.timeStamp);
    auto it = std::lower_bound(lastUtilization_.begin(), lastUtilization_.end(), s.pid,
                               [](const UtilizationEntry& e, uint32_t pid) { return e.pid < pid; });
    UtilizationEntry entry = s;
    entry.receivedMicros = now;
    if (it != lastUtilization_.end() && it->pid == s.pid) {
      if (it->timeStamp <= s.timeStamp) *it = entry;  // the newest sample of each pid
    } else {
      lastUtilization_.insert(it, entry);
    }
  }
  lastSeenTimestamp_ = newest;
  return rejected;
}

VG_PASS_CODE bool DeviceReader::ReadProcessUtilization(DeviceSample& out, uint64_t now) {
  const char* fn = "nvmlDeviceGetProcessUtilization";
  const nvmlReturn_t rc = FetchUtilizationSamples(fn);
  out.utilizationSamplesRejected = 0;
  if (MarkLostIf(rc, fn, out)) return false;
  if (rc == NVML_SUCCESS) {
    out.utilizationSamplesRejected = AcceptUtilizationSamples(out, now);
    rejectedTotal_ += out.utilizationSamplesRejected;
    out.processUtilizationStatus.Set(0, fn);
  } else if (rc == NVML_NOT_FOUND) {
    out.processUtilizationStatus.Fail(NVML_NOT_FOUND, fn);  // no new samples since lastSeen
  } else {
    out.processUtilizationStatus.Fail(rc, fn);
    out.utilizationSamplesRejectedTotal = rejectedTotal_;
    for (ProcessSample& p : out.processes) p.utilizationKnown = false;
    return true;
  }
  out.utilizationSamplesRejectedTotal = rejectedTotal_;
  // Figures older than the hold time are gone: that process has been idle since.
  lastUtilization_.erase(std::remove_if(lastUtilization_.begin(), lastUtilization_.end(),
                                        [&](const UtilizationEntry& e) { return now - e.receivedMicros > kUtilizationHoldMicros; }),
                         lastUtilization_.end());
  for (ProcessSample& p : out.processes) {
    p.utilizationKnown = true;
    auto it = std::lower_bound(lastUtilization_.begin(), lastUtilization_.end(), p.pid,
                               [](const UtilizationEntry& e, uint32_t pid) { return e.pid < pid; });
    if (it != lastUtilization_.end() && it->pid == p.pid) {
      p.smUtilPercent = it->sm;
      p.memUtilPercent = it->mem;
      p.encUtilPercent = it->enc;
      p.decUtilPercent = it->dec;
    } else {
      p.smUtilPercent = p.memUtilPercent = p.encUtilPercent = p.decUtilPercent = 0;
    }
  }
  return true;
}

}  // namespace vramguard

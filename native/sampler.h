// One named native thread that reads the chosen devices every interval, publishes the latest snapshot
// through a lock-free triple buffer, and evaluates JS-registered watermarks after each pass so that JS
// is woken only on a crossing (or when it asked to hear about the next sample).
//
// No JavaScript and no policy here: the bindings turn queued events into calls on the JS thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "device_pass.h"
#include "device_reader.h"
#include "lost_gpu_watcher.h"
#include "latest_buffer.h"
#include "nvml_loader.h"
#include "snapshot.h"

namespace vramguard {

// "Wake JS when this value crosses thresholdBytes": the used bytes of a device, or the summed used
// bytes of a set of pids on that device.
struct Watermark {
  uint32_t id = 0;
  uint32_t device = 0;
  bool ofPids = false;
  std::vector<uint32_t> pids;  // sorted
  uint64_t thresholdBytes = 0;
  std::string migUuid;  // non-empty: the MIG device of `device` with this UUID (its used bytes, its processes)
};

struct SamplerEvent {
  enum class Type { kWatermark, kDeviceLost, kDeviceRecovered, kSample };
  Type type = Type::kSample;
  uint64_t sequence = 0;
  uint64_t timestampMicros = 0;
  uint32_t device = 0;
  // kWatermark
  uint32_t watermarkId = 0;
  uint64_t valueBytes = 0;
  uint64_t thresholdBytes = 0;
  bool above = false;
  // kDeviceLost
  nvmlReturn_t code = NVML_SUCCESS;
  const char* function = "";
};

class Sampler {
 public:
  struct Options {
    uint64_t intervalNanos = 1'000'000'000;
    std::vector<uint32_t> devices;  // empty: every device
    std::string libraryPath;        // empty: VRAMGUARD_NVML_LIBRARY or libnvidia-ml.so.1
  };
  // Called on the sampler thread when events were queued; must be cheap and must not block.
  using EventsQueued = std::function<void()>;

  Sampler(Options options, EventsQueued eventsQueued);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Takes a reference on NVML, checks the devices and starts the thread. False, with *failure set and
  // nothing held, when NVML cannot be used or a device does not exist.
  bool Start(ReadFailure* failure);
  // Stops and joins the thread and drops the NVML reference. Idempotent; safe from any thread but the
  // sampler's own.
  void Stop();
  bool running() const { return running_.load(std::memory_order_acquire); }

  // Reader side (one reader thread): the newest snapshot; sequence 0 before the first pass.
  const Snapshot& Latest() { return latest_.Latest(); }
  uint64_t publishedSequence() const { return published_.load(std::memory_order_acquire); }

  // Replaces the watermarks. A watermark keeping its id keeps its above/below state.
  void SetWatermarks(std::vector<Watermark> watermarks);
  // Queue a kSample event after the next pass (one per request).
  void RequestSampleEvent() { sampleEventWanted_.store(true, std::memory_order_release); }
  std::vector<SamplerEvent> TakeEvents();
  // The same into `into` (cleared first), swapping buffers with the queue: a caller that keeps its vector
  // between calls makes neither side allocate once both have grown.
  void TakeEvents(std::vector<SamplerEvent>& into);

  const SystemInfo& systemInfo() const { return system_; }
  const std::vector<uint32_t>& devices() const { return pass_.devices(); }
  uint64_t intervalNanos() const { return options_.intervalNanos; }

  // Stops every sampler in the process without joining for long: used at process exit.
  static void StopAllForExit() noexcept;

 private:
  void Run();
  void Evaluate(const Snapshot& snapshot, std::vector<SamplerEvent>& out);
  void QueueAndNotify(const std::vector<SamplerEvent>& events);

  Options options_;
  EventsQueued eventsQueued_;
  SystemInfo system_;
  DevicePass pass_;
  std::vector<bool> wasLost_;

  LatestBuffer<Snapshot> latest_;
  std::atomic<uint64_t> published_{0};

  std::mutex watermarksMutex_;
  std::vector<Watermark> watermarks_;
  std::vector<int8_t> watermarkState_;  // -1 unknown, 0 below, 1 above; parallel to watermarks_

  std::mutex eventsMutex_;
  std::vector<SamplerEvent> events_;
  std::atomic<bool> sampleEventWanted_{false};

  std::mutex stopMutex_;
  std::condition_variable stopSignal_;
  bool stopRequested_ = false;
  bool passRequested_ = false;  // a critical XID came in: read now, not at the next tick
  LostGpuWatcher lostGpuWatcher_;
  std::atomic<bool> running_{false};
  std::atomic<bool> threadExited_{true};
  bool holdsNvml_ = false;
  std::thread thread_;
};

}  // namespace vramguard

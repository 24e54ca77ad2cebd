#include "sampler.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>

namespace vramguard {

namespace {

constexpr const char* kThreadName = "vramguard-smpl";  // pthread names are at most 15 characters
constexpr size_t kMaxQueuedEvents = 4096;

// Every running sampler, so that process exit can stop their threads before libraries unload.
// Leaked on purpose: it must outlive static destruction at exit.
std::mutex& RegistryMutex() {
  static std::mutex* mutex = new std::mutex();
  return *mutex;
}
std::set<Sampler*>& Registry() {
  static std::set<Sampler*>* registry = new std::set<Sampler*>();
  return *registry;
}

void InstallExitHandlerOnce() {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(&Sampler::StopAllForExit); });
}

}  // namespace

Sampler::Sampler(Options options, EventsQueued eventsQueued)
    : options_(std::move(options)), eventsQueued_(std::move(eventsQueued)) {}

Sampler::~Sampler() {
  try {
    Stop();
  } catch (...) {
    // A destructor must not throw (join on a broken thread handle at worst).
  }
}

bool Sampler::Start(ReadFailure* failure) {
  NvmlLibrary& nvml = NvmlLibrary::Instance();
  const NvmlAcquireResult acquired = nvml.Acquire(options_.libraryPath);
  if (!acquired.ok) {
    *failure = ReadFailure::Unavailable(acquired);
    return false;
  }
  holdsNvml_ = true;
  system_ = ReadSystemInfo(nvml.table());
  if (!pass_.Open(nvml.table(), system_, options_.devices, failure)) {
    Stop();
    return false;
  }
  wasLost_.assign(pass_.devices().size(), false);
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    Registry().insert(this);
  }
  InstallExitHandlerOnce();
  stopRequested_ = false;
  threadExited_.store(false, std::memory_order_release);
  running_.store(true, std::memory_order_release);
  thread_ = std::thread(&Sampler::Run, this);
  // A lost GPU is reported within one event wait (100 ms) where the driver delivers critical XIDs.
  lostGpuWatcher_.Start(nvml.table(), pass_.devices(), [this](uint32_t, unsigned long long) {
    std::lock_guard<std::mutex> lock(stopMutex_);
    passRequested_ = true;
    stopSignal_.notify_all();
  });
  return true;
}

void Sampler::Stop() {
  lostGpuWatcher_.Stop();  // before the table it uses can go
  {
    std::lock_guard<std::mutex> lock(stopMutex_);
    stopRequested_ = true;
  }
  stopSignal_.notify_all();
  if (thread_.joinable()) thread_.join();
  running_.store(false, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    Registry().erase(this);
  }
  if (holdsNvml_) {
    holdsNvml_ = false;
    NvmlLibrary::Instance().Release();
  }
}

// An atexit handler: nothing may escape it (std::terminate). The registry stays locked throughout, so a
// sampler being stopped elsewhere cannot be freed under us (Stop() takes this lock after its join).
void Sampler::StopAllForExit() noexcept {
  try {
    std::lock_guard<std::mutex> registryLock(RegistryMutex());
    for (Sampler* sampler : Registry()) {
      {
        std::lock_guard<std::mutex> lock(sampler->stopMutex_);
        sampler->stopRequested_ = true;
      }
      sampler->stopSignal_.notify_all();
    }
    // Wait briefly for the threads to leave NVML; never hang the exit on a stuck driver call.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    for (Sampler* sampler : Registry()) {
      while (!sampler->threadExited_.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  } catch (...) {
  }
}

void Sampler::SetWatermarks(std::vector<Watermark> watermarks) {
  for (Watermark& w : watermarks) std::sort(w.pids.begin(), w.pids.end());
  std::vector<int8_t> state(watermarks.size(), -1);
  std::lock_guard<std::mutex> lock(watermarksMutex_);
  for (size_t i = 0; i < watermarks.size(); ++i) {
    for (size_t j = 0; j < watermarks_.size(); ++j) {
      if (watermarks_[j].id == watermarks[i].id && watermarks_[j].thresholdBytes == watermarks[i].thresholdBytes &&
          watermarks_[j].device == watermarks[i].device) {
        state[i] = watermarkState_[j];
      }
    }
  }
  watermarks_ = std::move(watermarks);
  watermarkState_ = std::move(state);
}

std::vector<SamplerEvent> Sampler::TakeEvents() {
  std::vector<SamplerEvent> taken;
  TakeEvents(taken);
  return taken;
}

void Sampler::TakeEvents(std::vector<SamplerEvent>& into) {
  into.clear();
  std::lock_guard<std::mutex> lock(eventsMutex_);
  into.swap(events_);
}

void Sampler::QueueAndNotify(const std::vector<SamplerEvent>& events) {
  if (events.empty()) return;
  {
    std::lock_guard<std::mutex> lock(eventsMutex_);
    // A JS thread that stopped reading must not make us grow without bound.
    for (const SamplerEvent& event : events) {
      if (events_.size() < kMaxQueuedEvents) events_.push_back(event);
    }
  }
  if (eventsQueued_) eventsQueued_();
}

void Sampler::Evaluate(const Snapshot& snapshot, std::vector<SamplerEvent>& out) {
  for (size_t i = 0; i < snapshot.devices.size(); ++i) {
    const DeviceSample& device = snapshot.devices[i];
    if (device.lost != wasLost_[i]) {
      wasLost_[i] = device.lost;
      SamplerEvent event;
      event.type = device.lost ? SamplerEvent::Type::kDeviceLost : SamplerEvent::Type::kDeviceRecovered;
      event.sequence = snapshot.sequence;
      event.timestampMicros = device.sampledAtMicros;
      event.device = device.index;
      event.code = device.lostStatus.status;
      event.function = device.lostStatus.function;
      out.push_back(event);
    }
  }
  {
    std::lock_guard<std::mutex> lock(watermarksMutex_);
    for (size_t w = 0; w < watermarks_.size(); ++w) {
      const Watermark& mark = watermarks_[w];
      const DeviceSample* device = nullptr;
      for (const DeviceSample& d : snapshot.devices) {
        if (d.index == mark.device) device = &d;
      }
      if (device == nullptr || device->lost) continue;
      // A MIG target: its own used bytes and processes, not the board's.
      const Reading<uint64_t>* used = &device->memoryUsed;
      const Reading<int>* listStatus = &device->processListStatus;
      const std::vector<ProcessSample>* processes = &device->processes;
      if (!mark.migUuid.empty()) {
        const MigInstanceSample* instance = FindMigInstance(*device, mark.migUuid);
        if (instance == nullptr) continue;
        used = &instance->memoryUsed;
        listStatus = &instance->processListStatus;
        processes = &instance->processes;
      }
      uint64_t value = 0;
      if (mark.ofPids) {
        if (!listStatus->ok()) continue;
        for (const ProcessSample& p : *processes) {
          if (p.usedKnown && std::binary_search(mark.pids.begin(), mark.pids.end(), p.pid)) value += p.usedBytes;
        }
      } else {
        if (!used->ok()) continue;
        value = used->value;
      }
      const int8_t above = value > mark.thresholdBytes ? 1 : 0;
      if (above == watermarkState_[w]) continue;
      watermarkState_[w] = above;
      SamplerEvent event;
      event.type = SamplerEvent::Type::kWatermark;
      event.sequence = snapshot.sequence;
      event.timestampMicros = device->sampledAtMicros;
      event.device = mark.device;
      event.watermarkId = mark.id;
      event.valueBytes = value;
      event.thresholdBytes = mark.thresholdBytes;
      event.above = above == 1;
      out.push_back(event);
    }
  }
  if (sampleEventWanted_.exchange(false, std::memory_order_acq_rel)) {
    SamplerEvent event;
    event.type = SamplerEvent::Type::kSample;
    event.sequence = snapshot.sequence;
    event.timestampMicros = snapshot.timestampMicros;
    out.push_back(event);
  }
}

void Sampler::Run() {
  pthread_setname_np(pthread_self(), kThreadName);
  try {
    const auto interval = std::chrono::nanoseconds(options_.intervalNanos);
    auto next = std::chrono::steady_clock::now();
    std::vector<SamplerEvent> events;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(stopMutex_);
        if (stopRequested_) break;
      }
      // Evaluate while the snapshot is still ours, publish, then wake JS: a woken reader finds the
      // snapshot that caused the wake-up.
      Snapshot& snapshot = latest_.back();
      pass_.Read(snapshot);
      events.clear();
      Evaluate(snapshot, events);
      const uint64_t sequence = snapshot.sequence;
      latest_.Publish();
      published_.store(sequence, std::memory_order_release);
      QueueAndNotify(events);
      next += interval;
      const auto now = std::chrono::steady_clock::now();
      if (next < now) next = now;  // a pass overran: skip the missed ticks rather than burst
      std::unique_lock<std::mutex> lock(stopMutex_);
      stopSignal_.wait_until(lock, next, [this] { return stopRequested_ || passRequested_; });
      if (stopRequested_) break;
      if (passRequested_) {
        passRequested_ = false;
        next = std::chrono::steady_clock::now();  // the ticks go on from this pass
      }
    }
  } catch (...) {
    // Nothing is expected to throw here (allocation failure at worst); never let it take the process.
  }
  threadExited_.store(true, std::memory_order_release);
}

}  // namespace vramguard

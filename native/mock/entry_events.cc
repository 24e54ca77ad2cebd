// NVML events: event sets, registration per device, and waiting. The mock raises one event kind, the
// critical XID 79 ("GPU has fallen off the bus") when a registered device becomes lost, which is how a
// real driver reports a lost GPU at once. A waiter sleeps like a driver's does: until its timeout, the
// scenario's next timeline entry, or a write in the control file's directory (inotify), whichever comes
// first (and at least every 20 ms), so a loseDevice op wakes it at once without any other NVML call, and
// an idle wait costs 50 wake-ups a second, not 1000. Where inotify cannot watch the control file it
// looks every millisecond.
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <vector>

#include "mock_state.h"

using namespace vgmock;

namespace {

constexpr unsigned long long kSupportedEvents = nvmlEventTypeXidCriticalError;
constexpr unsigned long long kXidFallenOffTheBus = 79;

struct EventSet {
  struct Registration {
    int device;
    unsigned long long types;
    bool wasLost;
  };
  std::vector<Registration> registrations;
  std::deque<nvmlEventData_t> pending;
};

// Sets stay allocated for the life of the process once freed, so that a stale handle is detected, not
// dereferenced: live ones are listed here.
std::vector<EventSet *> &liveSets() {
  static std::vector<EventSet *> *const sets = new std::vector<EventSet *>();
  return *sets;
}

EventSet *findSet(nvmlEventSet_t handle) {
  EventSet *set = reinterpret_cast<EventSet *>(handle);
  auto &sets = liveSets();
  return std::find(sets.begin(), sets.end(), set) != sets.end() ? set : nullptr;
}

// Queues an XID event for every registered device that went from not lost to lost.
void noticeLostDevices(Session &s, EventSet &set) {
  for (EventSet::Registration &r : set.registrations) {
    if (r.device >= static_cast<int>(s.scenario.devices.size())) continue;
    const bool lost = s.scenario.devices[static_cast<std::size_t>(r.device)].lost;
    if (lost && !r.wasLost && (r.types & nvmlEventTypeXidCriticalError)) {
      nvmlEventData_t event{};
      event.device = handleFor(static_cast<std::size_t>(r.device));
      event.eventType = nvmlEventTypeXidCriticalError;
      event.eventData = kXidFallenOffTheBus;
      event.gpuInstanceId = event.computeInstanceId = kNoInstance;
      set.pending.push_back(event);
    }
    r.wasLost = lost;
  }
}

// Wakes a waiter when anything is written in the control file's directory (the file may not exist yet,
// or be replaced). Inactive when there is no control file or inotify cannot watch it.
class ControlWatch {
 public:
  explicit ControlWatch(const std::string &controlPath) {
    if (controlPath.empty()) return;
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) return;
    const std::string dir = directoryOf(controlPath);
    if (inotify_add_watch(fd_, dir.c_str(), IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO | IN_ATTRIB) < 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~ControlWatch() {
    if (fd_ >= 0) close(fd_);
  }
  ControlWatch(const ControlWatch &) = delete;
  ControlWatch &operator=(const ControlWatch &) = delete;

  bool active() const { return fd_ >= 0; }

  // Waits up to ms for a change (true when one came), then drains the queued notifications.
  bool wait(int ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) return false;
    char buffer[4096];
    while (read(fd_, buffer, sizeof buffer) > 0) {
    }
    return true;
  }

 private:
  int fd_ = -1;
};

// A wait is also cut at this length: a file system that sends no inotify events (a network mount)
// still gets its ops seen within it, and other threads' calls (injected errors) within it too.
constexpr int kWatchedWaitMaxMs = 20;

}  // namespace

VG_MOCK_GROUP_ANCHOR(events)

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t device, unsigned long long *eventTypes) {
  return deviceCall(Fn::nvmlDeviceGetSupportedEventTypes, device, [&](Session &, Device &) -> nvmlReturn_t {
    if (!eventTypes) return NVML_ERROR(INVALID_ARGUMENT);
    *eventTypes = kSupportedEvents;
    return NVML_SUCCESS;
  });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set) {
  return systemCall(Fn::nvmlEventSetCreate, [&](Session &) -> nvmlReturn_t {
    if (!set) return NVML_ERROR(INVALID_ARGUMENT);
    EventSet *created = new EventSet();
    liveSets().push_back(created);
    *set = reinterpret_cast<nvmlEventSet_t>(created);
    return NVML_SUCCESS;
  });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long eventTypes, nvmlEventSet_t set) {
  return deviceCall(Fn::nvmlDeviceRegisterEvents, device, [&](Session &s, Device &d) -> nvmlReturn_t {
    EventSet *target = findSet(set);
    if (!target || eventTypes == 0) return NVML_ERROR(INVALID_ARGUMENT);
    if (eventTypes & ~kSupportedEvents) return NVML_ERROR(NOT_SUPPORTED);
    const int index = static_cast<int>(&d - s.scenario.devices.data());
    target->registrations.push_back({index, eventTypes, d.lost});
    return NVML_SUCCESS;
  });
}

VG_MOCK_EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms) {
  try {
    Globals &g = globals();
    std::unique_lock<std::mutex> lock(g.mutex);
    Session *s = g.session.get();
    if (!s) return NVML_ERROR(UNINITIALIZED);
    enterCall(g, *s, Fn::nvmlEventSetWait_v2);
    nvmlReturn_t injected;
    if (takeInjectedError(g, *s, Fn::nvmlEventSetWait_v2, -1, &injected)) return injected;
    EventSet *target = findSet(set);
    if (!target || !data) return NVML_ERROR(INVALID_ARGUMENT);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutms);
    ControlWatch watch(s->control.path());
    for (;;) {
      s = g.session.get();
      if (!s) return NVML_ERROR(UNINITIALIZED);  // shut down while waiting
      refreshState(g, *s);
      noticeLostDevices(*s, *target);
      if (!target->pending.empty()) {
        *data = target->pending.front();
        target->pending.pop_front();
        return NVML_SUCCESS;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return NVML_ERROR(TIMEOUT);
      long long waitMs = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
      if (s->nextTimelineEntry < s->scenario.timeline.size()) {
        const long long elapsedMs = static_cast<long long>((clockNs(CLOCK_MONOTONIC) - s->startNs) / 1000000u);
        waitMs = std::min(waitMs, std::max(0LL, static_cast<long long>(s->scenario.timeline[s->nextTimelineEntry].atMs) - elapsedMs));
      }
      // With no control file only the timeline and the timeout can bring an event; with one that
      // inotify cannot watch, look every millisecond.
      const bool blind = !watch.active() && !s->control.path().empty();
      waitMs = std::min<long long>(waitMs, blind ? 1 : kWatchedWaitMaxMs);
      lock.unlock();  // let other threads call while this one waits
      bool changed = false;
      if (watch.active()) {
        changed = watch.wait(static_cast<int>(waitMs));
      } else {
        struct timespec pause = {static_cast<time_t>(waitMs / 1000), static_cast<long>(waitMs % 1000) * 1000000L};
        nanosleep(&pause, nullptr);
      }
      lock.lock();
      // A write in the directory: look at the control file now, not at most once per millisecond.
      if (changed && g.session) g.session->lastPollNs = 0;
    }
  } catch (...) {
    return NVML_ERROR(UNKNOWN);
  }
}

VG_MOCK_EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
  return systemCall(Fn::nvmlEventSetFree, [&](Session &) -> nvmlReturn_t {
    EventSet *target = findSet(set);
    if (!target) return NVML_ERROR(INVALID_ARGUMENT);
    auto &sets = liveSets();
    sets.erase(std::find(sets.begin(), sets.end(), target));
    delete target;
    return NVML_SUCCESS;
  });
}

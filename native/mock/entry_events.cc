// NVML events: event sets, registration per device, and waiting. The mock raises one event kind, the
// critical XID 79 ("GPU has fallen off the bus") when a registered device becomes lost, which is how a
// real driver reports a lost GPU at once. A waiter polls the scenario's timeline and control file every
// millisecond while it waits, so a loseDevice op wakes it without any other NVML call.
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
      if (std::chrono::steady_clock::now() >= deadline) return NVML_ERROR(TIMEOUT);
      lock.unlock();  // let other threads call while this one waits
      struct timespec pause = {0, 1000000};
      nanosleep(&pause, nullptr);
      lock.lock();
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

/*
 * The benchmark's baseline: one sampling pass of vramguard, done from a plain C loop.
 *
 * Makes exactly the NVML calls DeviceReader::Read (native/device_reader.cc, process_utilization.cc) makes
 * per device, in the same order, with the same fall-backs and the same buffer handling, on every driver
 * era the reader supports (the core suite checks this per era through the mock's call statistics), so
 * that "sampler pass / raw pass" measures what vramguard adds on top of NVML itself:
 *
 *   nvmlDeviceGetHandleByIndex_v2      first pass only (and again after a device was lost)
 *   nvmlDeviceGetMemoryInfo_v2         version word set; falls back to nvmlDeviceGetMemoryInfo for good on
 *                                      FUNCTION_NOT_FOUND / ARGUMENT_VERSION_MISMATCH / NOT_SUPPORTED
 *   nvmlDeviceGetTemperature(GPU), nvmlDeviceGetPowerUsage, nvmlDeviceGetEnforcedPowerLimit,
 *   nvmlDeviceGetClockInfo(SM), nvmlDeviceGetClockInfo(MEM), nvmlDeviceGetUtilizationRates
 *   per list (compute, graphics, MPS):
 *     nvmlDeviceGetRunningProcessDetailList (535.104.05 on), mode = the list, version word set, its own
 *                                      reused 32-byte detail buffer grown and retried up to 5 times; on a
 *                                      version problem given up for good on this device, then
 *     nvmlDevice{Compute,Graphics,MPSCompute}RunningProcesses _v3 -> _v2 -> v1
 *                                      into one reused record buffer (32-byte slots), grown and retried up
 *                                      to 4 times on INSUFFICIENT_SIZE; the _v3 stride is 32 bytes where the
 *                                      version and the exported symbols say 535.43-535.86 (DriverTraits)
 *     records merged by pid
 *   nvmlDeviceGetProcessesUtilizationInfo (550.40.07 on), version word set, per-device lastSeen, reused
 *                                      40-byte buffer grown and retried up to 5 times; on a version problem
 *                                      given up for good, then
 *   nvmlDeviceGetProcessUtilization    reused sample buffer grown the same way, per-device lastSeen
 *                                      timestamp; samples validated as the reader does (pid listed, values
 *                                      within 0-100, newer than lastSeen and not in the future), newest
 *                                      sample per pid, each held 2 s after it was accepted
 *
 * Beside the passes, like the sampler's LostGpuWatcher (native/lost_gpu_watcher.cc), a second thread waits
 * for critical XID events (nvmlEventSetWait_v2, 100 ms at a time) on the devices that support them, set
 * up with the same calls (nvmlEventSetCreate, then per device nvmlDeviceGetHandleByIndex_v2,
 * nvmlDeviceGetSupportedEventTypes and nvmlDeviceRegisterEvents); without a device that supports them
 * there is no such thread, on either side.
 *
 * The identity (UUID, name, PCI info) is read once per device by the sampler, not per pass: it is not
 * part of the steady-state pass and is not read here. Like DevicePass::Read, this loop reads the wall clock
 * once per pass (the utilization checks and the hold need it); where the sampler also reads the monotonic
 * clock per device (readNanos), this loop does not: those clock calls are part of what the benchmark
 * measures vramguard adding.
 *
 * Usage: raw_nvml_loop [LIBRARY] [--passes N] [--warmup N] [--interval-ms MS]
 *   LIBRARY        path of libnvidia-ml.so.1 (default: $VRAMGUARD_NVML_LIBRARY, else libnvidia-ml.so.1)
 *   --passes N     timed passes (default 1000)
 *   --warmup N     untimed passes first (default 3; the first one acquires the handles)
 *   --interval-ms  start a pass every MS milliseconds, like the sampler thread (default 0: back to back)
 * Prints one JSON object: {passes, medianNs, p90Ns, p99Ns, meanNs, ...} (also p10Ns, minNs, maxNs, what
 * the last pass saw and whether the event thread ran, so that a caller can check both sides did the same
 * work).
 *
 * Build: cc -O2 -std=c11 -pthread -Inative bench/raw_nvml_loop.c -o bench/out/raw_nvml_loop -ldl
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvml_api.h"

#define NOT_IN_MIG 0xFFFFFFFFu
#define UTILIZATION_HOLD_US 2000000ull /* kUtilizationHoldMicros: 2 s */
#define FUTURE_SLACK_US 1000000ull     /* kFutureSlackMicros */
#define RECORD_SLOT ((size_t)sizeof(vgNvmlProcessInfo_535_t)) /* buffers are sized in 32-byte slots */

/* ---- The functions one pass uses (plus set-up), looked up by name --------------------------------- */

static struct {
  vg_fn_nvmlInit_v2 init;
  vg_fn_nvmlShutdown shutdown;
  vg_fn_nvmlSystemGetDriverVersion driverVersion;
  vg_fn_nvmlDeviceGetCount_v2 count;
  vg_fn_nvmlDeviceGetHandleByIndex_v2 handleByIndex;
  vg_fn_nvmlDeviceGetMemoryInfo_v2 memoryV2;
  vg_fn_nvmlDeviceGetMemoryInfo memoryV1;
  vg_fn_nvmlDeviceGetTemperature temperature;
  vg_fn_nvmlDeviceGetPowerUsage powerUsage;
  vg_fn_nvmlDeviceGetEnforcedPowerLimit powerLimit;
  vg_fn_nvmlDeviceGetClockInfo clockInfo;
  vg_fn_nvmlDeviceGetUtilizationRates utilizationRates;
  vg_fn_nvmlDeviceGetComputeRunningProcesses lists[3][3]; /* [compute, graphics, mps][_v3, _v2, v1] */
  vg_fn_nvmlDeviceGetProcessUtilization processUtilization;
  vg_fn_nvmlDeviceGetRunningProcessDetailList detailList;
  vg_fn_nvmlDeviceGetProcessesUtilizationInfo utilizationInfo;
  vg_fn_nvmlDeviceGetConfComputeMemSizeInfo confComputeMemSize; /* looked up only: DriverTraits evidence */
  vg_fn_nvmlEventSetCreate eventSetCreate;
  vg_fn_nvmlDeviceGetSupportedEventTypes supportedEventTypes;
  vg_fn_nvmlDeviceRegisterEvents registerEvents;
  vg_fn_nvmlEventSetWait_v2 eventSetWait;
  vg_fn_nvmlEventSetFree eventSetFree;
} nvml;

static const char *const kListNames[3][3] = {
    {"nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2",
     "nvmlDeviceGetComputeRunningProcesses"},
    {"nvmlDeviceGetGraphicsRunningProcesses_v3", "nvmlDeviceGetGraphicsRunningProcesses_v2",
     "nvmlDeviceGetGraphicsRunningProcesses"},
    {"nvmlDeviceGetMPSComputeRunningProcesses_v3", "nvmlDeviceGetMPSComputeRunningProcesses_v2",
     "nvmlDeviceGetMPSComputeRunningProcesses"},
};

/* dlsym into a function pointer without the object-to-function pointer cast ISO C frowns upon. */
static void lookup(void *library, const char *name, void *slot, int required) {
  void *symbol = dlsym(library, name);
  if (symbol == NULL && required) {
    fprintf(stderr, "raw_nvml_loop: required symbol %s missing\n", name);
    exit(2);
  }
  memcpy(slot, &symbol, sizeof symbol);
}

/* ---- Per-device state, as DeviceReader keeps it ----------------------------------------------------- */

typedef struct {
  vg_fn_nvmlDeviceGetComputeRunningProcesses fn;
  size_t stride;
} entry_point_t;

typedef struct {
  unsigned type; /* 1 compute, 2 graphics, 4 mps */
  entry_point_t entries[3]; /* newest first, only the symbols that exist */
  size_t count, current;
} process_list_t;

typedef struct {
  unsigned pid, types;
  int usedKnown, utilizationKnown;
  unsigned long long usedBytes;
  unsigned gpuInstanceId, computeInstanceId;
  unsigned sm, mem, enc, dec;
} process_t;

typedef struct {
  unsigned pid, sm, mem, enc, dec;
  unsigned long long stamp;
  uint64_t receivedUs; /* wall clock of the pass that accepted it */
} utilization_t;

typedef struct {
  unsigned index;
  nvmlDevice_t handle;
  int lost, memoryV2Usable;
  process_list_t lists[3];
  unsigned char *records;
  size_t recordBytes;
  nvmlProcessUtilizationSample_t *samples;
  size_t sampleCapacity;
  int detailListUsable, utilizationInfoUsable; /* demoted for good on a version problem */
  nvmlProcessDetail_v1_t *details;
  size_t detailCapacity;
  nvmlProcessUtilizationInfo_v1_t *infos;
  size_t infoCapacity;
  utilization_t *fetched; /* this pass's answer, before validation */
  size_t fetchedCount, fetchedCapacity;
  unsigned long long lastSeen;
  unsigned long long rejectedTotal;
  utilization_t *utilization; /* sorted by pid */
  size_t utilizationCount, utilizationCapacity;
  process_t *processes; /* sorted by pid */
  size_t processCount, processCapacity;
  /* The readings, kept so that the calls' results are used. */
  unsigned long long memoryTotal, memoryUsed, memoryFree, memoryReserved;
  unsigned temperature, powerUsage, powerLimit, smClock, memClock, gpuUtil, memUtil;
  int utilizationFresh;
} device_t;

static void *xrealloc(void *p, size_t bytes) {
  void *q = realloc(p, bytes);
  if (q == NULL) {
    fprintf(stderr, "raw_nvml_loop: out of memory\n");
    exit(2);
  }
  return q;
}

static int is_lost(nvmlReturn_t rc) { return rc == NVML_GPU_IS_LOST || rc == NVML_GPU_NOT_FOUND; }
static int is_version_problem(nvmlReturn_t rc) {
  return rc == NVML_FUNCTION_NOT_FOUND || rc == NVML_ARGUMENT_VERSION_MISMATCH;
}

static void device_init(device_t *d, unsigned index, int v3Records32) {
  memset(d, 0, sizeof *d);
  d->index = index;
  d->memoryV2Usable = 1;
  d->detailListUsable = d->utilizationInfoUsable = 1;
  static const unsigned types[3] = {1, 2, 4};
  const size_t strides[3] = {v3Records32 ? sizeof(vgNvmlProcessInfo_535_t) : sizeof(nvmlProcessInfo_v2_t),
                             sizeof(nvmlProcessInfo_v2_t), sizeof(nvmlProcessInfo_v1_t)};
  for (int slot = 0; slot < 3; ++slot) {
    process_list_t *list = &d->lists[slot];
    list->type = types[slot];
    for (int version = 0; version < 3; ++version) {
      if (nvml.lists[slot][version] == NULL) continue;
      list->entries[list->count].fn = nvml.lists[slot][version];
      list->entries[list->count].stride = strides[version];
      list->count++;
    }
  }
  d->recordBytes = 32 * RECORD_SLOT;
  d->records = xrealloc(NULL, d->recordBytes);
  d->sampleCapacity = 32;
  d->samples = xrealloc(NULL, d->sampleCapacity * sizeof *d->samples);
}

/* Returns 1 (and marks the device) when rc says the GPU is lost. */
static int mark_lost_if(device_t *d, nvmlReturn_t rc) {
  if (!is_lost(rc)) return 0;
  d->lost = 1;
  return 1;
}

static int acquire_handle(device_t *d) {
  if (d->handle != NULL && !d->lost) return 1;
  nvmlDevice_t handle = NULL;
  if (nvml.handleByIndex(d->index, &handle) != NVML_SUCCESS) {
    d->lost = 1;
    return 0;
  }
  d->handle = handle;
  return 1;
}

static int read_memory(device_t *d) {
  nvmlReturn_t rc;
  if (d->memoryV2Usable && nvml.memoryV2 != NULL) {
    nvmlMemory_v2_t memory;
    memset(&memory, 0, sizeof memory);
    memory.version = nvmlMemory_v2;
    rc = nvml.memoryV2(d->handle, &memory);
    if (rc == NVML_SUCCESS) {
      d->memoryTotal = memory.total;
      d->memoryUsed = memory.used;
      d->memoryFree = memory.free;
      d->memoryReserved = memory.reserved;
      return 1;
    }
    if (mark_lost_if(d, rc)) return 0;
    if (is_version_problem(rc) || rc == NVML_NOT_SUPPORTED) d->memoryV2Usable = 0;
  }
  nvmlMemory_t memory;
  memset(&memory, 0, sizeof memory);
  rc = nvml.memoryV1(d->handle, &memory);
  if (mark_lost_if(d, rc)) return 0;
  if (rc == NVML_SUCCESS) {
    d->memoryTotal = memory.total;
    d->memoryUsed = memory.used;
    d->memoryFree = memory.free;
  }
  return 1;
}

/* Each reading is independent; a lost GPU stops the device (VG_READ_U32 in device_reader.cc). */
static void keep_u32(device_t *d, nvmlReturn_t rc, const unsigned *value, unsigned *field) {
  if (!mark_lost_if(d, rc) && rc == NVML_SUCCESS) *field = *value;
}

static void read_scalars(device_t *d) {
  unsigned value = 0;
  if (!d->lost && nvml.temperature != NULL) {
    value = 0;
    keep_u32(d, nvml.temperature(d->handle, NVML_TEMPERATURE_GPU, &value), &value, &d->temperature);
  }
  if (!d->lost && nvml.powerUsage != NULL) {
    value = 0;
    keep_u32(d, nvml.powerUsage(d->handle, &value), &value, &d->powerUsage);
  }
  if (!d->lost && nvml.powerLimit != NULL) {
    value = 0;
    keep_u32(d, nvml.powerLimit(d->handle, &value), &value, &d->powerLimit);
  }
  if (!d->lost && nvml.clockInfo != NULL) {
    value = 0;
    keep_u32(d, nvml.clockInfo(d->handle, NVML_CLOCK_SM, &value), &value, &d->smClock);
  }
  if (!d->lost && nvml.clockInfo != NULL) {
    value = 0;
    keep_u32(d, nvml.clockInfo(d->handle, NVML_CLOCK_MEM, &value), &value, &d->memClock);
  }
  if (d->lost || nvml.utilizationRates == NULL) return;
  nvmlUtilization_t utilization = {0, 0};
  const nvmlReturn_t rc = nvml.utilizationRates(d->handle, &utilization);
  if (mark_lost_if(d, rc)) return;
  if (rc == NVML_SUCCESS) {
    d->gpuUtil = utilization.gpu;
    d->memUtil = utilization.memory;
  }
}

/* Index of the first element whose pid is not below pid, in an array sorted by pid whose elements
 * (process_t, utilization_t) start with their pid. */
static size_t pid_lower_bound(const void *array, size_t count, size_t size, unsigned pid) {
  size_t lo = 0, hi = count;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    unsigned at;
    memcpy(&at, (const unsigned char *)array + mid * size, sizeof at);
    if (at < pid) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* The process with this pid in the sorted list, inserted when new. */
static process_t *process_for(device_t *d, unsigned pid) {
  /* Appending when the pid sorts last (the usual order), as MergeProcess does; else a binary search. */
  const size_t lo = d->processCount == 0 || d->processes[d->processCount - 1].pid < pid
                        ? d->processCount
                        : pid_lower_bound(d->processes, d->processCount, sizeof *d->processes, pid);
  if (lo < d->processCount && d->processes[lo].pid == pid) return &d->processes[lo];
  if (d->processCount == d->processCapacity) {
    d->processCapacity = d->processCapacity ? d->processCapacity * 2 : 16;
    d->processes = xrealloc(d->processes, d->processCapacity * sizeof *d->processes);
  }
  memmove(&d->processes[lo + 1], &d->processes[lo], (d->processCount - lo) * sizeof *d->processes);
  d->processCount++;
  process_t *p = &d->processes[lo];
  memset(p, 0, sizeof *p);
  p->pid = pid;
  p->gpuInstanceId = p->computeInstanceId = NOT_IN_MIG;
  return p;
}

/* Room for `needed` entries after INSUFFICIENT_SIZE: GrownCapacity in device_reader.h. */
static size_t grown_capacity(size_t current, size_t needed) {
  const size_t maxEntries = 16384;
  if (needed <= current) return current;
  const size_t grown = (needed + 8) * 2;
  return grown < maxEntries ? grown : maxEntries;
}

static void merge_process(device_t *d, unsigned type, unsigned pid, unsigned long long used, unsigned gpuInstance,
                          unsigned computeInstance) {
  process_t *p = process_for(d, pid);
  p->types |= type;
  if (used != NVML_VALUE_NOT_AVAILABLE) {
    /* The same process in two lists reports the same allocation: the larger, never the sum. */
    p->usedBytes = p->usedKnown && p->usedBytes > used ? p->usedBytes : used;
    p->usedKnown = 1;
  }
  if (gpuInstance != NOT_IN_MIG) p->gpuInstanceId = gpuInstance;
  if (computeInstance != NOT_IN_MIG) p->computeInstanceId = computeInstance;
}

/* nvmlDeviceGetRunningProcessDetailList for one list. Returns -1 when it is not usable on this driver (the
 * caller falls back to the *RunningProcesses chain), 0 when the device was found lost, 1 otherwise. */
static int read_detail_list(device_t *d, const process_list_t *list) {
  const unsigned mode = list->type == 1 ? NVML_PROCESS_MODE_COMPUTE
                        : list->type == 2 ? NVML_PROCESS_MODE_GRAPHICS
                                          : NVML_PROCESS_MODE_MPS;
  nvmlProcessDetailList_v1_t request;
  nvmlReturn_t rc = NVML_INSUFFICIENT_SIZE;
  if (d->detailCapacity == 0) {
    d->detailCapacity = 32;
    d->details = xrealloc(NULL, d->detailCapacity * sizeof *d->details);
  }
  for (int attempt = 0; attempt < 5 && rc == NVML_INSUFFICIENT_SIZE; ++attempt) {
    memset(&request, 0, sizeof request);
    request.version = nvmlProcessDetailList_v1;
    request.mode = mode;
    request.numProcArrayEntries = (unsigned)d->detailCapacity;
    request.procArray = d->details;
    rc = nvml.detailList(d->handle, &request);
    if (rc == NVML_INSUFFICIENT_SIZE) {
      d->detailCapacity = grown_capacity(d->detailCapacity, request.numProcArrayEntries);
      d->details = xrealloc(d->details, d->detailCapacity * sizeof *d->details);
    }
  }
  if (is_version_problem(rc)) {
    d->detailListUsable = 0; /* the *RunningProcesses chains for good */
    return -1;
  }
  if (mark_lost_if(d, rc)) return 0;
  if (rc != NVML_SUCCESS) return 1;
  const unsigned count = request.numProcArrayEntries < d->detailCapacity ? request.numProcArrayEntries
                                                                         : (unsigned)d->detailCapacity;
  for (unsigned i = 0; i < count; ++i) {
    const nvmlProcessDetail_v1_t *p = &d->details[i];
    merge_process(d, list->type, p->pid, p->usedGpuMemory, p->gpuInstanceId, p->computeInstanceId);
  }
  return 1;
}

/* Returns 0 when the device was found lost. */
static int read_process_list(device_t *d, process_list_t *list) {
  if (d->detailListUsable && nvml.detailList != NULL) {
    const int read = read_detail_list(d, list);
    if (read >= 0) return read;
  }
  while (list->current < list->count) {
    const entry_point_t *entry = &list->entries[list->current];
    unsigned count = (unsigned)(d->recordBytes / entry->stride);
    nvmlReturn_t rc = entry->fn(d->handle, &count, d->records);
    /* The process list can grow between the two calls: retry a few times with room to spare. */
    for (int attempt = 0; rc == NVML_INSUFFICIENT_SIZE && attempt < 4; ++attempt) {
      d->recordBytes = grown_capacity(d->recordBytes / RECORD_SLOT, count) * RECORD_SLOT;
      d->records = xrealloc(d->records, d->recordBytes);
      count = (unsigned)(d->recordBytes / entry->stride);
      rc = entry->fn(d->handle, &count, d->records);
    }
    if (is_version_problem(rc)) {
      list->current++; /* this driver lacks that version: the next older entry point from now on */
      continue;
    }
    if (mark_lost_if(d, rc)) return 0;
    if (rc != NVML_SUCCESS) return 1;
    for (unsigned i = 0; i < count; ++i) {
      const unsigned char *record = d->records + (size_t)i * entry->stride;
      unsigned pid = 0, gpuInstance = NOT_IN_MIG, computeInstance = NOT_IN_MIG;
      unsigned long long used = 0;
      memcpy(&pid, record + offsetof(nvmlProcessInfo_v2_t, pid), sizeof pid);
      memcpy(&used, record + offsetof(nvmlProcessInfo_v2_t, usedGpuMemory), sizeof used);
      if (entry->stride >= sizeof(nvmlProcessInfo_v2_t)) {
        memcpy(&gpuInstance, record + offsetof(nvmlProcessInfo_v2_t, gpuInstanceId), sizeof gpuInstance);
        memcpy(&computeInstance, record + offsetof(nvmlProcessInfo_v2_t, computeInstanceId), sizeof computeInstance);
      }
      merge_process(d, list->type, pid, used, gpuInstance, computeInstance);
    }
    return 1;
  }
  return 1;
}

static int read_processes(device_t *d) {
  d->processCount = 0;
  for (int slot = 0; slot < 3; ++slot) {
    if (!read_process_list(d, &d->lists[slot])) return 0;
  }
  return 1;
}

static size_t utilization_lower_bound(const device_t *d, unsigned pid) {
  return pid_lower_bound(d->utilization, d->utilizationCount, sizeof *d->utilization, pid);
}

static int process_listed(const device_t *d, unsigned pid) {
  const size_t at = pid_lower_bound(d->processes, d->processCount, sizeof *d->processes, pid);
  return at < d->processCount && d->processes[at].pid == pid;
}

static void keep_fetched(device_t *d, unsigned pid, unsigned sm, unsigned mem, unsigned enc, unsigned dec,
                         unsigned long long stamp) {
  if (d->fetchedCount == d->fetchedCapacity) {
    d->fetchedCapacity = d->fetchedCapacity ? d->fetchedCapacity * 2 : 16;
    d->fetched = xrealloc(d->fetched, d->fetchedCapacity * sizeof *d->fetched);
  }
  utilization_t *u = &d->fetched[d->fetchedCount++];
  u->pid = pid;
  u->sm = sm;
  u->mem = mem;
  u->enc = enc;
  u->dec = dec;
  u->stamp = stamp;
  u->receivedUs = 0;
}

/* The samples newer than lastSeen into d->fetched, the newest entry point first (FetchUtilizationSamples). */
static nvmlReturn_t fetch_utilization(device_t *d) {
  d->fetchedCount = 0;
  if (d->utilizationInfoUsable && nvml.utilizationInfo != NULL) {
    if (d->infoCapacity == 0) {
      d->infoCapacity = 32;
      d->infos = xrealloc(NULL, d->infoCapacity * sizeof *d->infos);
    }
    nvmlProcessesUtilizationInfo_v1_t request;
    nvmlReturn_t rc = NVML_INSUFFICIENT_SIZE;
    for (int attempt = 0; attempt < 5 && rc == NVML_INSUFFICIENT_SIZE; ++attempt) {
      memset(&request, 0, sizeof request);
      request.version = nvmlProcessesUtilizationInfo_v1;
      request.processSamplesCount = (unsigned)d->infoCapacity;
      request.lastSeenTimeStamp = d->lastSeen;
      request.procUtilArray = d->infos;
      rc = nvml.utilizationInfo(d->handle, &request);
      if (rc == NVML_INSUFFICIENT_SIZE) {
        d->infoCapacity = grown_capacity(d->infoCapacity, request.processSamplesCount);
        d->infos = xrealloc(d->infos, d->infoCapacity * sizeof *d->infos);
      }
    }
    if (!is_version_problem(rc)) {
      if (rc == NVML_SUCCESS) {
        const unsigned n = request.processSamplesCount < d->infoCapacity ? request.processSamplesCount
                                                                         : (unsigned)d->infoCapacity;
        for (unsigned i = 0; i < n; ++i) {
          const nvmlProcessUtilizationInfo_v1_t *u = &d->infos[i];
          keep_fetched(d, u->pid, u->smUtil, u->memUtil, u->encUtil, u->decUtil, u->timeStamp);
        }
      }
      return rc;
    }
    d->utilizationInfoUsable = 0; /* the older call from now on */
  }
  if (nvml.processUtilization == NULL) return NVML_FUNCTION_NOT_FOUND;
  unsigned count = (unsigned)d->sampleCapacity;
  nvmlReturn_t rc = nvml.processUtilization(d->handle, d->samples, &count, d->lastSeen);
  for (int attempt = 0; rc == NVML_INSUFFICIENT_SIZE && attempt < 4; ++attempt) {
    d->sampleCapacity = grown_capacity(d->sampleCapacity, count);
    d->samples = xrealloc(d->samples, d->sampleCapacity * sizeof *d->samples);
    count = (unsigned)d->sampleCapacity;
    rc = nvml.processUtilization(d->handle, d->samples, &count, d->lastSeen);
  }
  if (rc == NVML_SUCCESS) {
    if (count > d->sampleCapacity) count = (unsigned)d->sampleCapacity;
    for (unsigned i = 0; i < count; ++i) {
      const nvmlProcessUtilizationSample_t *u = &d->samples[i];
      keep_fetched(d, u->pid, u->smUtil, u->memUtil, u->encUtil, u->decUtil, u->timeStamp);
    }
  }
  return rc;
}

/* Keeps the valid fetched samples, newest per pid (AcceptUtilizationSamples); returns how many were refused. */
static unsigned accept_utilization(device_t *d, uint64_t nowUs) {
  unsigned rejected = 0;
  unsigned long long newest = d->lastSeen;
  for (size_t i = 0; i < d->fetchedCount; ++i) {
    const utilization_t *s = &d->fetched[i];
    const int inRange = s->sm <= 100 && s->mem <= 100 && s->enc <= 100 && s->dec <= 100;
    const int timely = s->stamp > d->lastSeen && s->stamp <= nowUs + FUTURE_SLACK_US;
    if (!process_listed(d, s->pid) || !inRange || !timely) {
      ++rejected;
      continue;
    }
    if (s->stamp > newest) newest = s->stamp;
    const size_t at = utilization_lower_bound(d, s->pid);
    utilization_t *e = &d->utilization[at];
    if (at < d->utilizationCount && e->pid == s->pid) {
      if (e->stamp > s->stamp) continue; /* the newest sample of each pid */
    } else {
      if (d->utilizationCount == d->utilizationCapacity) {
        d->utilizationCapacity = d->utilizationCapacity ? d->utilizationCapacity * 2 : 16;
        d->utilization = xrealloc(d->utilization, d->utilizationCapacity * sizeof *d->utilization);
        e = &d->utilization[at];
      }
      memmove(e + 1, e, (d->utilizationCount - at) * sizeof *e);
      d->utilizationCount++;
    }
    *e = *s;
    e->receivedUs = nowUs;
  }
  d->lastSeen = newest;
  return rejected;
}

static void read_process_utilization(device_t *d, uint64_t nowUs) {
  d->utilizationFresh = 0;
  const nvmlReturn_t rc = fetch_utilization(d);
  if (mark_lost_if(d, rc)) return;
  if (rc == NVML_SUCCESS) {
    d->rejectedTotal += accept_utilization(d, nowUs);
    d->utilizationFresh = 1;
  } else if (rc != NVML_NOT_FOUND) { /* NOT_FOUND: no new samples since lastSeen */
    for (size_t i = 0; i < d->processCount; ++i) d->processes[i].utilizationKnown = 0;
    return;
  }
  /* Figures older than the hold time are gone: that process has been idle since. */
  size_t kept = 0;
  for (size_t i = 0; i < d->utilizationCount; ++i) {
    if (nowUs - d->utilization[i].receivedUs <= UTILIZATION_HOLD_US) d->utilization[kept++] = d->utilization[i];
  }
  d->utilizationCount = kept;
  for (size_t i = 0; i < d->processCount; ++i) {
    process_t *p = &d->processes[i];
    p->utilizationKnown = 1;
    const size_t at = utilization_lower_bound(d, p->pid);
    if (at < d->utilizationCount && d->utilization[at].pid == p->pid) {
      p->sm = d->utilization[at].sm;
      p->mem = d->utilization[at].mem;
      p->enc = d->utilization[at].enc;
      p->dec = d->utilization[at].dec;
    } else {
      p->sm = p->mem = p->enc = p->dec = 0;
    }
  }
}

/* DeviceReader::Read without the identity (read once, not per pass) and without its clock calls.
 * nowUs: the wall clock of the pass (DevicePass reads it once per pass), for the utilization checks. */
static void read_device(device_t *d, uint64_t nowUs) {
  d->processCount = 0;
  if (!acquire_handle(d)) return;
  d->lost = 0;
  if (!read_memory(d)) return;
  read_scalars(d);
  if (!d->lost && read_processes(d)) read_process_utilization(d, nowUs);
}

/* ---- The critical-XID watcher thread, as LostGpuWatcher ------------------------------------------------ */

static struct {
  nvmlEventSet_t set;
  pthread_t thread;
  volatile int stop; /* read by the watcher between waits of at most 100 ms */
  int running;
} watcher;

static void *watch_events(void *unused) {
  (void)unused;
  while (!__atomic_load_n(&watcher.stop, __ATOMIC_ACQUIRE)) {
    nvmlEventData_t data;
    memset(&data, 0, sizeof data);
    const nvmlReturn_t rc = nvml.eventSetWait(watcher.set, &data, 100);
    if (rc != NVML_SUCCESS && rc != NVML_TIMEOUT) {
      struct timespec pause = {0, 100000000L}; /* a failing wait must not spin */
      nanosleep(&pause, NULL);
    }
  }
  return NULL;
}

static void start_watcher(unsigned deviceCount) {
  if (nvml.eventSetCreate == NULL || nvml.registerEvents == NULL || nvml.eventSetWait == NULL || nvml.eventSetFree == NULL) {
    return;
  }
  if (nvml.eventSetCreate(&watcher.set) != NVML_SUCCESS || watcher.set == NULL) return;
  int registered = 0;
  for (unsigned i = 0; i < deviceCount; ++i) {
    nvmlDevice_t handle = NULL;
    if (nvml.handleByIndex(i, &handle) != NVML_SUCCESS) continue;
    unsigned long long supported = nvmlEventTypeXidCriticalError;
    if (nvml.supportedEventTypes != NULL && nvml.supportedEventTypes(handle, &supported) != NVML_SUCCESS) continue;
    if ((supported & nvmlEventTypeXidCriticalError) == 0) continue;
    if (nvml.registerEvents(handle, nvmlEventTypeXidCriticalError, watcher.set) == NVML_SUCCESS) registered++;
  }
  if (registered == 0 || pthread_create(&watcher.thread, NULL, watch_events, NULL) != 0) {
    nvml.eventSetFree(watcher.set);
    return;
  }
  watcher.running = 1;
}

static void stop_watcher(void) {
  if (!watcher.running) return;
  __atomic_store_n(&watcher.stop, 1, __ATOMIC_RELEASE);
  pthread_join(watcher.thread, NULL);
  nvml.eventSetFree(watcher.set);
  watcher.running = 0;
}

/* ---- Timing ------------------------------------------------------------------------------------------ */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000u;
}

static int compare_u64(const void *a, const void *b) {
  const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Median (mean of the middle two when even) and nearest-rank percentiles: bench/stats.mjs does the same. */
static double median_of(const uint64_t *sorted, size_t n) {
  return n % 2 ? (double)sorted[n / 2] : ((double)sorted[n / 2 - 1] + (double)sorted[n / 2]) / 2.0;
}
static uint64_t percentile_of(const uint64_t *sorted, size_t n, double p) {
  size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999999);
  if (rank < 1) rank = 1;
  return sorted[rank - 1];
}

static void usage(void) {
  fprintf(stderr, "usage: raw_nvml_loop [LIBRARY] [--passes N] [--warmup N] [--interval-ms MS]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *library = getenv("VRAMGUARD_NVML_LIBRARY");
  long passes = 1000, warmup = 3;
  double intervalMs = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc) passes = strtol(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc) warmup = strtol(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc) intervalMs = strtod(argv[++i], NULL);
    else if (argv[i][0] == '-') usage();
    else library = argv[i];
  }
  if (passes < 1 || warmup < 0 || intervalMs < 0) usage();
  if (library == NULL || library[0] == '\0') library = "libnvidia-ml.so.1";

  void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL); /* as nvml_loader.cc does */
  if (handle == NULL) {
    fprintf(stderr, "raw_nvml_loop: dlopen(%s): %s\n", library, dlerror());
    return 2;
  }
  lookup(handle, "nvmlInit_v2", &nvml.init, 1);
  lookup(handle, "nvmlShutdown", &nvml.shutdown, 1);
  lookup(handle, "nvmlSystemGetDriverVersion", &nvml.driverVersion, 1);
  lookup(handle, "nvmlDeviceGetCount_v2", &nvml.count, 1);
  lookup(handle, "nvmlDeviceGetHandleByIndex_v2", &nvml.handleByIndex, 1);
  lookup(handle, "nvmlDeviceGetMemoryInfo", &nvml.memoryV1, 1);
  lookup(handle, "nvmlDeviceGetMemoryInfo_v2", &nvml.memoryV2, 0);
  lookup(handle, "nvmlDeviceGetTemperature", &nvml.temperature, 0);
  lookup(handle, "nvmlDeviceGetPowerUsage", &nvml.powerUsage, 0);
  lookup(handle, "nvmlDeviceGetEnforcedPowerLimit", &nvml.powerLimit, 0);
  lookup(handle, "nvmlDeviceGetClockInfo", &nvml.clockInfo, 0);
  lookup(handle, "nvmlDeviceGetUtilizationRates", &nvml.utilizationRates, 0);
  for (int slot = 0; slot < 3; ++slot) {
    for (int version = 0; version < 3; ++version) lookup(handle, kListNames[slot][version], &nvml.lists[slot][version], 0);
  }
  lookup(handle, "nvmlDeviceGetProcessUtilization", &nvml.processUtilization, 0);
  lookup(handle, "nvmlDeviceGetRunningProcessDetailList", &nvml.detailList, 0);
  lookup(handle, "nvmlDeviceGetProcessesUtilizationInfo", &nvml.utilizationInfo, 0);
  lookup(handle, "nvmlDeviceGetConfComputeMemSizeInfo", &nvml.confComputeMemSize, 0);
  lookup(handle, "nvmlEventSetCreate", &nvml.eventSetCreate, 0);
  lookup(handle, "nvmlDeviceGetSupportedEventTypes", &nvml.supportedEventTypes, 0);
  lookup(handle, "nvmlDeviceRegisterEvents", &nvml.registerEvents, 0);
  lookup(handle, "nvmlEventSetWait_v2", &nvml.eventSetWait, 0);
  lookup(handle, "nvmlEventSetFree", &nvml.eventSetFree, 0);

  nvmlReturn_t rc = nvml.init();
  if (rc != NVML_SUCCESS) {
    fprintf(stderr, "raw_nvml_loop: nvmlInit_v2 returned %d\n", rc);
    return 2;
  }
  /* DriverTraits::Decide: drivers 535.43-535.86 write 32-byte _v3 process records. They export
   * nvmlDeviceGetConfComputeMemSizeInfo and not nvmlDeviceGetRunningProcessDetailList; the symbols overrule
   * a version they contradict and decide alone when the version is unreadable. */
  char driver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = {0};
  unsigned major = 0, minor = 0;
  const int symbolsAllow32 = nvml.lists[0][0] != NULL && nvml.confComputeMemSize != NULL && nvml.detailList == NULL;
  int v3Records32 = symbolsAllow32;
  if (nvml.driverVersion(driver, sizeof driver) == NVML_SUCCESS && sscanf(driver, "%u.%u", &major, &minor) == 2) {
    v3Records32 = symbolsAllow32 && major == 535 && minor >= 43 && minor <= 86;
  }
  unsigned deviceCount = 0;
  rc = nvml.count(&deviceCount);
  if (rc != NVML_SUCCESS || deviceCount == 0) {
    fprintf(stderr, "raw_nvml_loop: nvmlDeviceGetCount_v2 returned %d (%u devices)\n", rc, deviceCount);
    return 2;
  }
  device_t *devices = xrealloc(NULL, deviceCount * sizeof *devices);
  for (unsigned i = 0; i < deviceCount; ++i) device_init(&devices[i], i, v3Records32);

  start_watcher(deviceCount);

  uint64_t *durations = xrealloc(NULL, (size_t)passes * sizeof *durations);
  const uint64_t intervalNs = (uint64_t)(intervalMs * 1e6);
  uint64_t next = now_ns();
  long freshUtilizationPasses = 0;
  for (long pass = -warmup; pass < passes; ++pass) {
    const uint64_t started = now_ns();
    const uint64_t wallUs = now_wall_us(); /* DevicePass::Read reads the wall clock once per pass too */
    for (unsigned i = 0; i < deviceCount; ++i) read_device(&devices[i], wallUs);
    const uint64_t elapsed = now_ns() - started;
    if (pass >= 0) {
      durations[pass] = elapsed;
      freshUtilizationPasses += devices[0].utilizationFresh;
    }
    if (intervalNs > 0) {
      /* Paced like Sampler::Run: the next tick, skipping missed ones rather than bursting. */
      next += intervalNs;
      const uint64_t now = now_ns();
      if (next < now) next = now;
      struct timespec until = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) != 0) {
      }
    }
  }

  /* What the last pass saw, so a reader can check both sides did the same work. */
  size_t processes = 0, withUtilization = 0;
  for (unsigned i = 0; i < deviceCount; ++i) {
    processes += devices[i].processCount;
    for (size_t j = 0; j < devices[i].processCount; ++j) withUtilization += devices[i].processes[j].sm > 0;
  }
  double sum = 0;
  for (long i = 0; i < passes; ++i) sum += (double)durations[i];
  qsort(durations, (size_t)passes, sizeof *durations, compare_u64);
  printf("{\"passes\":%ld,\"medianNs\":%.1f,\"p10Ns\":%llu,\"p90Ns\":%llu,\"p99Ns\":%llu,\"meanNs\":%.1f,"
         "\"minNs\":%llu,\"maxNs\":%llu,\"devices\":%u,\"intervalMs\":%g,\"processesLastPass\":%zu,"
         "\"processesWithSmUtilLastPass\":%zu,\"freshUtilizationPasses\":%ld,\"eventThread\":%s,\"driverVersion\":\"%s\"}\n",
         passes, median_of(durations, (size_t)passes), (unsigned long long)percentile_of(durations, (size_t)passes, 10),
         (unsigned long long)percentile_of(durations, (size_t)passes, 90),
         (unsigned long long)percentile_of(durations, (size_t)passes, 99), sum / (double)passes,
         (unsigned long long)durations[0], (unsigned long long)durations[passes - 1], deviceCount, intervalMs, processes,
         withUtilization, freshUtilizationPasses, watcher.running ? "true" : "false", driver);

  stop_watcher();
  nvml.shutdown();
  for (unsigned i = 0; i < deviceCount; ++i) {
    free(devices[i].records);
    free(devices[i].samples);
    free(devices[i].utilization);
    free(devices[i].processes);
    free(devices[i].details);
    free(devices[i].infos);
    free(devices[i].fetched);
  }
  free(devices);
  free(durations);
  return 0;
}

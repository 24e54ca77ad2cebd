/*
 * The benchmark's baseline: one sampling pass of vramguard, done from a plain C loop.
 *
 * Makes exactly the NVML calls DeviceReader::Read (native/device_reader.cc) makes per device, in the
 * same order and with the same buffer handling, so that "sampler pass / raw pass" measures what
 * vramguard adds on top of NVML itself:
 *
 *   nvmlDeviceGetHandleByIndex_v2      first pass only (and again after a device was lost)
 *   nvmlDeviceGetMemoryInfo_v2         version word set; falls back to nvmlDeviceGetMemoryInfo for good on
 *                                      FUNCTION_NOT_FOUND / ARGUMENT_VERSION_MISMATCH / NOT_SUPPORTED
 *   nvmlDeviceGetTemperature(GPU), nvmlDeviceGetPowerUsage, nvmlDeviceGetEnforcedPowerLimit,
 *   nvmlDeviceGetClockInfo(SM), nvmlDeviceGetClockInfo(MEM), nvmlDeviceGetUtilizationRates
 *   nvmlDevice{Compute,Graphics,MPSCompute}RunningProcesses _v3 -> _v2 -> v1
 *                                      into one reused record buffer (32-byte slots), grown and retried up
 *                                      to 4 times on INSUFFICIENT_SIZE, records merged by pid
 *   nvmlDeviceGetProcessUtilization    reused sample buffer grown the same way, per-device lastSeen
 *                                      timestamp, newest sample per pid, held 2 s on NOT_FOUND
 *
 * The identity (UUID, name, PCI info) is read once per device by the sampler, not per pass: it is not
 * part of the steady-state pass and is not read here. Where the sampler calls the clock per device
 * (sampledAt, readNanos, the utilization hold), this loop uses the pass's start time: the clock calls are
 * part of what the benchmark measures vramguard adding.
 *
 * Usage: raw_nvml_loop [LIBRARY] [--passes N] [--warmup N] [--interval-ms MS]
 *   LIBRARY        path of libnvidia-ml.so.1 (default: $VRAMGUARD_NVML_LIBRARY, else libnvidia-ml.so.1)
 *   --passes N     timed passes (default 1000)
 *   --warmup N     untimed passes first (default 3; the first one acquires the handles)
 *   --interval-ms  start a pass every MS milliseconds, like the sampler thread (default 0: back to back)
 * Prints one JSON object: {passes, medianNs, p90Ns, p99Ns, meanNs, ...} (also p10Ns, minNs, maxNs and what
 * the last pass saw, so that a caller can check both sides did the same work).
 *
 * Build: cc -O2 -std=c11 -Inative bench/raw_nvml_loop.c -o bench/out/raw_nvml_loop -ldl
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvml_api.h"

#define NOT_IN_MIG 0xFFFFFFFFu
#define UTILIZATION_HOLD_NS 2000000000ull /* kUtilizationHoldMicros: 2 s */
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
  unsigned long long lastSeen;
  uint64_t lastUtilizationNs;
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

/* The process with this pid in the sorted list, inserted when new. */
static process_t *process_for(device_t *d, unsigned pid) {
  size_t lo = 0, hi = d->processCount;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (d->processes[mid].pid < pid) lo = mid + 1;
    else hi = mid;
  }
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

/* Returns 0 when the device was found lost. */
static int read_process_list(device_t *d, process_list_t *list) {
  while (list->current < list->count) {
    const entry_point_t *entry = &list->entries[list->current];
    unsigned count = (unsigned)(d->recordBytes / entry->stride);
    nvmlReturn_t rc = entry->fn(d->handle, &count, d->records);
    /* The process list can grow between the two calls: retry a few times with room to spare. */
    for (int attempt = 0; rc == NVML_INSUFFICIENT_SIZE && attempt < 4; ++attempt) {
      d->recordBytes = ((size_t)count + 8) * 2 * RECORD_SLOT;
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
      process_t *p = process_for(d, pid);
      p->types |= list->type;
      if (used != NVML_VALUE_NOT_AVAILABLE) {
        /* The same process in two lists reports the same allocation: the larger, never the sum. */
        p->usedBytes = p->usedKnown && p->usedBytes > used ? p->usedBytes : used;
        p->usedKnown = 1;
      }
      if (gpuInstance != NOT_IN_MIG) p->gpuInstanceId = gpuInstance;
      if (computeInstance != NOT_IN_MIG) p->computeInstanceId = computeInstance;
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

/* Index of the first utilization entry whose pid is not below pid. */
static size_t utilization_lower_bound(const device_t *d, unsigned pid) {
  size_t lo = 0, hi = d->utilizationCount;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (d->utilization[mid].pid < pid) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static void read_process_utilization(device_t *d, uint64_t nowNs) {
  d->utilizationFresh = 0;
  if (nvml.processUtilization == NULL) return;
  unsigned count = (unsigned)d->sampleCapacity;
  nvmlReturn_t rc = nvml.processUtilization(d->handle, d->samples, &count, d->lastSeen);
  for (int attempt = 0; rc == NVML_INSUFFICIENT_SIZE && attempt < 4; ++attempt) {
    d->sampleCapacity = ((size_t)count + 8) * 2;
    d->samples = xrealloc(d->samples, d->sampleCapacity * sizeof *d->samples);
    count = (unsigned)d->sampleCapacity;
    rc = nvml.processUtilization(d->handle, d->samples, &count, d->lastSeen);
  }
  if (mark_lost_if(d, rc)) return;
  if (rc == NVML_SUCCESS) {
    /* Newest sample per pid; pids without a sample were idle (the driver reports only non-zero ones). */
    d->utilizationCount = 0;
    unsigned long long newest = d->lastSeen;
    if (d->utilizationCapacity < count) {
      d->utilizationCapacity = count;
      d->utilization = xrealloc(d->utilization, d->utilizationCapacity * sizeof *d->utilization);
    }
    for (unsigned i = 0; i < count; ++i) {
      const nvmlProcessUtilizationSample_t *s = &d->samples[i];
      if (s->timeStamp > newest) newest = s->timeStamp;
      const size_t at = utilization_lower_bound(d, s->pid);
      utilization_t *e = &d->utilization[at];
      if (at < d->utilizationCount && e->pid == s->pid) {
        if (e->stamp >= s->timeStamp) continue;
      } else {
        memmove(e + 1, e, (d->utilizationCount - at) * sizeof *e);
        d->utilizationCount++;
      }
      e->pid = s->pid;
      e->sm = s->smUtil;
      e->mem = s->memUtil;
      e->enc = s->encUtil;
      e->dec = s->decUtil;
      e->stamp = s->timeStamp;
    }
    d->lastSeen = newest;
    d->lastUtilizationNs = nowNs;
    d->utilizationFresh = 1;
  } else if (rc == NVML_NOT_FOUND) {
    /* No new samples since lastSeen: keep the last ones for a while, then the processes are idle. */
    if (nowNs - d->lastUtilizationNs > UTILIZATION_HOLD_NS) d->utilizationCount = 0;
  } else {
    for (size_t i = 0; i < d->processCount; ++i) d->processes[i].utilizationKnown = 0;
    return;
  }
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

/* DeviceReader::Read without the identity (read once, not per pass) and without its clock calls. */
static void read_device(device_t *d, uint64_t nowNs) {
  d->processCount = 0;
  if (!acquire_handle(d)) return;
  d->lost = 0;
  if (!read_memory(d)) return;
  read_scalars(d);
  if (!d->lost && read_processes(d)) read_process_utilization(d, nowNs);
}

/* ---- Timing ------------------------------------------------------------------------------------------ */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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

  nvmlReturn_t rc = nvml.init();
  if (rc != NVML_SUCCESS) {
    fprintf(stderr, "raw_nvml_loop: nvmlInit_v2 returned %d\n", rc);
    return 2;
  }
  /* DriverTraits::FromVersion: drivers 535.43-535.86 write 32-byte _v3 process records. */
  char driver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = {0};
  unsigned major = 0, minor = 0;
  int v3Records32 = 0;
  if (nvml.driverVersion(driver, sizeof driver) == NVML_SUCCESS && sscanf(driver, "%u.%u", &major, &minor) == 2) {
    v3Records32 = major == 535 && minor >= 43 && minor <= 86;
  }
  unsigned deviceCount = 0;
  rc = nvml.count(&deviceCount);
  if (rc != NVML_SUCCESS || deviceCount == 0) {
    fprintf(stderr, "raw_nvml_loop: nvmlDeviceGetCount_v2 returned %d (%u devices)\n", rc, deviceCount);
    return 2;
  }
  device_t *devices = xrealloc(NULL, deviceCount * sizeof *devices);
  for (unsigned i = 0; i < deviceCount; ++i) device_init(&devices[i], i, v3Records32);

  uint64_t *durations = xrealloc(NULL, (size_t)passes * sizeof *durations);
  const uint64_t intervalNs = (uint64_t)(intervalMs * 1e6);
  uint64_t next = now_ns();
  long freshUtilizationPasses = 0;
  for (long pass = -warmup; pass < passes; ++pass) {
    const uint64_t started = now_ns();
    for (unsigned i = 0; i < deviceCount; ++i) read_device(&devices[i], started);
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
         "\"processesWithSmUtilLastPass\":%zu,\"freshUtilizationPasses\":%ld,\"driverVersion\":\"%s\"}\n",
         passes, median_of(durations, (size_t)passes), (unsigned long long)percentile_of(durations, (size_t)passes, 10),
         (unsigned long long)percentile_of(durations, (size_t)passes, 90),
         (unsigned long long)percentile_of(durations, (size_t)passes, 99), sum / (double)passes,
         (unsigned long long)durations[0], (unsigned long long)durations[passes - 1], deviceCount, intervalMs, processes,
         withUtilization, freshUtilizationPasses, driver);

  nvml.shutdown();
  for (unsigned i = 0; i < deviceCount; ++i) {
    free(devices[i].records);
    free(devices[i].samples);
    free(devices[i].utilization);
    free(devices[i].processes);
  }
  free(devices);
  free(durations);
  return 0;
}

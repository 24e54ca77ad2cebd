/*
 * Self-test of the mock NVML library, in C, through dlopen and the function-pointer types of
 * native/nvml_api.h (the way vramguard's loader sees it).
 *
 *   mock_selftest <path to libnvidia-ml.so.1> <native/mock/test/scenarios> [--era <era>, default 580]
 *
 * --era: the driver era the library was built for; checks that it exports exactly what that driver
 * exports, its versions and record layouts; era 580 also runs every other test (the client API, error
 * injection, the control file, ...). Exit status 0 when every check passed.
 * run_selftest.sh builds every era and runs this under ASan/UBSan, TSan and valgrind too.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../nvml_api.h"

/* ---- Library ------------------------------------------------------------------------------------------ */

static void *lib;
#define VG_TEST_POINTER(requirement, name, params, args) static vg_fn_##name p_##name;
VG_NVML_FUNCTIONS(VG_TEST_POINTER)
VG_NVML_CLIENT_FUNCTIONS(VG_TEST_POINTER)
#undef VG_TEST_POINTER
static vg_fn_nvmlErrorString p_nvmlErrorString;
static const char *(*p_initError)(void);
static const char *(*p_warnings)(void);
static int (*p_isMock)(void);
static const char *(*p_mockEra)(void);

typedef nvmlReturn_t (*process_list_fn)(nvmlDevice_t, unsigned int *, void *);

static const char *scenario_dir;
static char tmp_dir[] = "/tmp/vgmock-selftest-XXXXXX";

/* ---- Checks ------------------------------------------------------------------------------------------- */

static int checks, failures;
static const char *current_test = "";

static int check_at(int ok, int line, const char *fmt, ...) {
  ++checks;
  if (!ok) {
    va_list ap;
    ++failures;
    fprintf(stderr, "FAIL [%s] mock_selftest.c:%d: ", current_test, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
  }
  return ok;
}

#define CHECK(cond) check_at(!!(cond), __LINE__, "%s", #cond)
#define CHECKF(cond, ...) check_at(!!(cond), __LINE__, __VA_ARGS__)
#define EXPECT_RC(expr, want)                                                                              \
  do {                                                                                                     \
    nvmlReturn_t rc_ = (expr);                                                                             \
    check_at(rc_ == (want), __LINE__, "%s returned %d, expected %d (%s)", #expr, rc_, (int)(want), #want); \
  } while (0)
#define EXPECT_U64(actual, want)                                                                      \
  do {                                                                                                \
    unsigned long long a_ = (unsigned long long)(actual), w_ = (unsigned long long)(want);            \
    check_at(a_ == w_, __LINE__, "%s is %llu, expected %llu (%s)", #actual, a_, w_, #want);           \
  } while (0)
#define EXPECT_STR(actual, want)                                                                            \
  do {                                                                                                      \
    const char *a_ = (actual), *w_ = (want);                                                                \
    check_at(a_ && strcmp(a_, w_) == 0, __LINE__, "%s is \"%s\", expected \"%s\"", #actual, a_ ? a_ : "(null)", w_); \
  } while (0)
#define EXPECT_CONTAINS(haystack, needle)                                                                  \
  do {                                                                                                     \
    const char *h_ = (haystack), *n_ = (needle);                                                           \
    check_at(h_ && strstr(h_, n_) != NULL, __LINE__, "expected \"%s\" in:\n    %s", n_, h_ ? h_ : "(null)"); \
  } while (0)

/* ---- Helpers ------------------------------------------------------------------------------------------ */

static void sleep_ms(int ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Long enough for the mock's once-per-millisecond look at the control file to come round. */
static void settle(void) { sleep_ms(3); }

static char *scenario_path(const char *name) {
  static char buf[4][4096];
  static int next;
  char *out = buf[next++ % 4];
  snprintf(out, sizeof buf[0], "%s/%s", scenario_dir, name);
  return out;
}

static char *tmp_path(const char *name) {
  static char buf[4][4096];
  static int next;
  char *out = buf[next++ % 4];
  snprintf(out, sizeof buf[0], "%s/%s", tmp_dir, name);
  return out;
}

/* A path in the temporary directory, in a local buffer (for paths a test keeps using). */
#define TMP_PATH(var, name) \
  char var[4096];           \
  snprintf(var, sizeof var, "%s/%s", tmp_dir, name)

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(2);
  }
  fputs(text, f);
  fclose(f);
}

/* Appends text with one write(2) on an O_APPEND descriptor, as control-file writers should. */
static void append_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  size_t length = strlen(text);
  if (fd < 0 || write(fd, text, length) != (ssize_t)length) {
    perror(path);
    exit(2);
  }
  close(fd);
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "r");
  char *text;
  long size;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  size = ftell(f);
  fseek(f, 0, SEEK_SET);
  text = calloc(1, (size_t)size + 1);
  if (text && fread(text, 1, (size_t)size, f) != (size_t)size) text[0] = '\0';
  fclose(f);
  return text;
}

static void use_scenario(const char *path, const char *control) {
  setenv("VRAMGUARD_MOCK_SCENARIO", path, 1);
  if (control) {
    setenv("VRAMGUARD_MOCK_CONTROL", control, 1);
  } else {
    unsetenv("VRAMGUARD_MOCK_CONTROL");
  }
}

static int init_ok(int line) {
  nvmlReturn_t rc = p_nvmlInit_v2();
  return check_at(rc == NVML_SUCCESS, line, "nvmlInit_v2 returned %d: %s", rc, p_initError());
}
#define INIT_OK() init_ok(__LINE__)

static nvmlDevice_t handle(unsigned int index) {
  nvmlDevice_t device = NULL;
  nvmlReturn_t rc = p_nvmlDeviceGetHandleByIndex_v2(index, &device);
  CHECKF(rc == NVML_SUCCESS, "nvmlDeviceGetHandleByIndex_v2(%u) returned %d", index, rc);
  return device;
}

static unsigned long long memory_used_v2(nvmlDevice_t device) {
  nvmlMemory_v2_t memory;
  memset(&memory, 0, sizeof memory);
  memory.version = nvmlMemory_v2;
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo_v2(device, &memory), NVML_SUCCESS);
  return memory.used;
}

static unsigned long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
}

/* One decoded process record; the fields a layout lacks stay at their defaults. */
typedef struct {
  unsigned int pid;
  unsigned long long used;
  unsigned int gpuInstanceId, computeInstanceId;
  unsigned long long ccProtected;
} record_t;

#define MAX_RECORDS 512
#define GUARD_BYTES 64

/*
 * Reads a process list with the two-call protocol, decoding records stride bytes apart, and checks
 * that nothing past count * stride was written. Returns the count, or -1 when a call failed.
 */
static int read_processes(process_list_fn fn, nvmlDevice_t device, size_t stride, record_t *out, int line) {
  unsigned int count = 0;
  unsigned char *buf;
  unsigned int i;
  nvmlReturn_t rc = fn(device, &count, NULL);
  if (rc == NVML_SUCCESS) {
    check_at(count == 0, line, "empty list reported count %u", count);
    return 0;
  }
  if (!check_at(rc == NVML_ERROR(INSUFFICIENT_SIZE), line, "size query returned %d", rc)) return -1;
  if (!check_at(count > 0 && count <= MAX_RECORDS, line, "size query count %u", count)) return -1;
  buf = malloc(count * stride + GUARD_BYTES);
  memset(buf, 0xAB, count * stride + GUARD_BYTES);
  rc = fn(device, &count, buf);
  if (!check_at(rc == NVML_SUCCESS, line, "list call returned %d", rc)) {
    free(buf);
    return -1;
  }
  for (i = 0; i < GUARD_BYTES; ++i) {
    if (buf[count * stride + i] != 0xAB) {
      check_at(0, line, "byte %zu past %u records of %zu bytes was written", (size_t)i, count, stride);
      break;
    }
  }
  for (i = 0; i < count; ++i) {
    const unsigned char *r = buf + i * stride;
    memset(&out[i], 0, sizeof out[i]);
    out[i].gpuInstanceId = out[i].computeInstanceId = 0xDEADBEEF;
    memcpy(&out[i].pid, r + 0, 4);
    memcpy(&out[i].used, r + 8, 8);
    if (stride >= 24) {
      memcpy(&out[i].gpuInstanceId, r + 16, 4);
      memcpy(&out[i].computeInstanceId, r + 20, 4);
    }
    if (stride >= 32) memcpy(&out[i].ccProtected, r + 24, 8);
  }
  free(buf);
  return (int)count;
}
#define READ_PROCESSES(fn, device, stride, out) read_processes((process_list_fn)(fn), device, stride, out, __LINE__)

static int has_pid(const record_t *records, int count, unsigned int pid) {
  int i;
  for (i = 0; i < count; ++i) {
    if (records[i].pid == pid) return 1;
  }
  return 0;
}

/* ---- Tests -------------------------------------------------------------------------------------------- */

/* What each driver era's libnvidia-ml exports, as a spec independent of the mock's own grouping
 * (era numbers: major * 1000 + minor). Everything not named here is in every era. */
static int exported_in_era(const char *name, int era) {
  size_t l = strlen(name);
  int v2 = l > 3 && strcmp(name + l - 3, "_v2") == 0;
  int v3 = l > 3 && strcmp(name + l - 3, "_v3") == 0;
  if (strstr(name, "RunningProcesses") && v3) return era >= 510000 && era != 535098;
  if (strstr(name, "RunningProcesses") && v2) return era >= 470000;
  if (strcmp(name, "nvmlSystemGetCudaDriverVersion_v2") == 0 || strstr(name, "Mig") || strstr(name, "InstanceId") ||
      strcmp(name, "nvmlDeviceGetFanSpeed_v2") == 0 || strcmp(name, "nvmlDeviceGetNumFans") == 0) {
    return era >= 470000;
  }
  if (strcmp(name, "nvmlDeviceGetMemoryInfo_v2") == 0) return era >= 510000;
  if (strcmp(name, "nvmlDeviceGetConfComputeMemSizeInfo") == 0) return era >= 535054;
  if (strcmp(name, "nvmlDeviceGetRunningProcessDetailList") == 0) return era >= 535104;
  if (strcmp(name, "nvmlDeviceGetProcessesUtilizationInfo") == 0) return era >= 550000;
  return 1;
}

static void test_symbols(int era) {
  current_test = "symbols";
  CHECK(p_isMock && p_isMock() == 1);
  CHECK(p_initError != NULL);
  CHECK(p_warnings != NULL);
  CHECK(p_nvmlErrorString != NULL);
  CHECK(p_mockEra != NULL);
#define VG_TEST_SYMBOL(requirement, name, params, args)                                      \
  if (exported_in_era(#name, era)) {                                                       \
    CHECKF(p_##name != NULL, "era %d: %s is not exported", era, #name);                    \
  } else {                                                                                 \
    CHECKF(p_##name == NULL, "era %d: %s is exported but that driver lacks it", era, #name); \
  }
  VG_NVML_FUNCTIONS(VG_TEST_SYMBOL)
  VG_NVML_CLIENT_FUNCTIONS(VG_TEST_SYMBOL)
#undef VG_TEST_SYMBOL
}

static void test_uninitialized(void) {
  unsigned int count = 7;
  nvmlDevice_t device = NULL;
  current_test = "uninitialized";
  EXPECT_RC(p_nvmlDeviceGetCount_v2(&count), NVML_ERROR(UNINITIALIZED));
  EXPECT_RC(p_nvmlDeviceGetHandleByIndex_v2(0, &device), NVML_ERROR(UNINITIALIZED));
  EXPECT_RC(p_nvmlShutdown(), NVML_ERROR(UNINITIALIZED));
  EXPECT_STR(p_nvmlErrorString(NVML_ERROR(GPU_IS_LOST)), "GPU is lost");
  EXPECT_STR(p_nvmlErrorString(NVML_SUCCESS), "Success");
  EXPECT_STR(p_nvmlErrorString(NVML_ERROR(NOT_SUPPORTED)), "Not Supported");
  EXPECT_STR(p_nvmlErrorString(12345), "Unknown Error");
}

static void test_init_failures(void) {
  static const struct {
    const char *file;
    const char *expected[3];
  } bad[] = {
      {"bad-syntax.json", {"bad-syntax.json:4:5: invalid JSON: expected ',' or ']' after an array element, got '{'"}},
      {"bad-type.json", {"bad-type.json: $.devices[1].memory.total: expected a non-negative integer, got \"abc\""}},
      {"bad-unknown-key.json", {"bad-unknown-key.json: $.devices[0].temperatureCelcius: unknown key"}},
      {"bad-overcommit.json",
       {"$.devices[1].memory: device 1 (\"Small GPU\") is over-committed", "process usedBytes 501",
        "exceeds total 1000"}},
      {"bad-duplicate-uuid.json", {"$.devices[1].uuid: duplicate uuid \"GPU-same\""}},
      {"bad-error-function.json", {"$.errors[0].function: unknown function \"nvmlDeviceGetBoardId\""}},
      {"bad-device-index.json", {"$.errors[0].device: device index 1 is out of range (the scenario has 1 device)"}},
      {"bad-duplicate-pid.json", {"$.devices[0].processes[2].pid: duplicate pid 7"}},
  };
  size_t i, j;
  unsigned int count;
  current_test = "init failures";

  unsetenv("VRAMGUARD_MOCK_SCENARIO");
  EXPECT_RC(p_nvmlInit_v2(), NVML_ERROR(UNKNOWN));
  EXPECT_CONTAINS(p_initError(), "VRAMGUARD_MOCK_SCENARIO is not set");

  use_scenario(scenario_path("does-not-exist.json"), NULL);
  EXPECT_RC(p_nvmlInit_v2(), NVML_ERROR(UNKNOWN));
  EXPECT_CONTAINS(p_initError(), "does-not-exist.json: cannot open: No such file or directory");

  for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    use_scenario(scenario_path(bad[i].file), NULL);
    EXPECT_RC(p_nvmlInit_v2(), NVML_ERROR(UNKNOWN));
    for (j = 0; j < 3 && bad[i].expected[j]; ++j) EXPECT_CONTAINS(p_initError(), bad[i].expected[j]);
    EXPECT_CONTAINS(p_initError(), "scenario /");
    CHECKF(strchr(p_initError(), '\n') == NULL, "init error is not one line: %s", p_initError());
    EXPECT_RC(p_nvmlDeviceGetCount_v2(&count), NVML_ERROR(UNINITIALIZED));
  }

  /* A good scenario clears the reason. */
  use_scenario(scenario_path("current.json"), tmp_path("unused.control"));
  if (INIT_OK()) {
    EXPECT_STR(p_initError(), "");
    EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
  }

  /* Injected nvmlInit_v2 failures count across re-reads of the scenario. */
  use_scenario(scenario_path("init-errors.json"), tmp_path("unused.control"));
  EXPECT_RC(p_nvmlInit_v2(), NVML_ERROR(DRIVER_NOT_LOADED));
  EXPECT_CONTAINS(p_initError(), "injected NVML_ERROR_DRIVER_NOT_LOADED (scenario errors[0])");
  EXPECT_RC(p_nvmlInit_v2(), NVML_ERROR(DRIVER_NOT_LOADED));
  EXPECT_RC(p_nvmlDeviceGetCount_v2(&count), NVML_ERROR(UNINITIALIZED));
  if (INIT_OK()) {
    EXPECT_STR(p_initError(), "");
    EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
  }
  if (INIT_OK()) EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
}

static void test_refcount_and_reread(void) {
  unsigned int count = 0;
  nvmlMemory_t memory;
  TMP_PATH(path, "reread.json");
  current_test = "refcount and re-read";
  write_file(path, "{\"devices\":[{\"memory\":{\"total\":1000}}]}");
  use_scenario(path, tmp_path("reread.control"));
  if (!INIT_OK()) return;
  EXPECT_RC(p_nvmlInit_v2(), NVML_SUCCESS);
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
  EXPECT_U64(count, 1);
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(handle(0), &memory), NVML_SUCCESS);
  EXPECT_U64(memory.total, 1000);
  write_file(path, "{\"devices\":[{\"memory\":{\"total\":2000}},{\"memory\":{\"total\":3000}}]}");
  EXPECT_RC(p_nvmlInit_v2(), NVML_SUCCESS); /* nested: no re-read */
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
  EXPECT_U64(count, 1);
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetCount_v2(&count), NVML_ERROR(UNINITIALIZED));
  EXPECT_RC(p_nvmlShutdown(), NVML_ERROR(UNINITIALIZED));
  if (!INIT_OK()) return;
  EXPECT_RC(p_nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
  EXPECT_U64(count, 2);
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(handle(0), &memory), NVML_SUCCESS);
  EXPECT_U64(memory.total, 2000);
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
}

static void test_current_era(void) {
  const unsigned long long total = 85520809984ULL, reserved = 566231040ULL;
  const unsigned long long used = 1048576ULL + 4294967296ULL + 1073741824ULL + 2147483648ULL;
  unsigned int count = 0, value = 0;
  int cuda = 0, n;
  char text[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
  nvmlDevice_t d0, d1, bogus;
  nvmlPciInfo_t pci;
  nvmlMemory_t memory;
  nvmlMemory_v2_t memory2;
  nvmlUtilization_t utilization;
  record_t records[MAX_RECORDS];
  nvmlProcessUtilizationSample_t samples[8];
  unsigned long long stamp = 0;
  nvmlReturn_t rc;

  current_test = "current era";
  use_scenario(scenario_path("current.json"), tmp_path("current.control"));
  if (!INIT_OK()) return;
  EXPECT_RC(p_nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
  EXPECT_U64(count, 2);
  EXPECT_RC(p_nvmlDeviceGetCount_v2(NULL), NVML_ERROR(INVALID_ARGUMENT));
  d0 = handle(0);
  d1 = handle(1);
  CHECK(d0 != NULL && d1 != NULL && d0 != d1);
  EXPECT_RC(p_nvmlDeviceGetHandleByIndex_v2(2, &bogus), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlDeviceGetHandleByIndex_v2(0, NULL), NVML_ERROR(INVALID_ARGUMENT));
  bogus = (nvmlDevice_t)(uintptr_t)0x1234;
  EXPECT_RC(p_nvmlDeviceGetName(bogus, text, sizeof text), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlDeviceGetName(NULL, text, sizeof text), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo((nvmlDevice_t)((char *)d1 + 1), &memory), NVML_ERROR(INVALID_ARGUMENT));

  /* Strings. */
  EXPECT_RC(p_nvmlDeviceGetName(d0, text, sizeof text), NVML_SUCCESS);
  EXPECT_STR(text, "NVIDIA H100 80GB HBM3");
  EXPECT_RC(p_nvmlDeviceGetName(d0, text, (unsigned int)strlen("NVIDIA H100 80GB HBM3")), NVML_ERROR(INSUFFICIENT_SIZE));
  EXPECT_RC(p_nvmlDeviceGetName(d0, text, (unsigned int)strlen("NVIDIA H100 80GB HBM3") + 1), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetName(d0, NULL, 96), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlDeviceGetName(d1, text, sizeof text), NVML_SUCCESS);
  EXPECT_STR(text, "Mock GPU 1");
  EXPECT_RC(p_nvmlDeviceGetUUID(d0, text, sizeof text), NVML_SUCCESS);
  EXPECT_STR(text, "GPU-5a3c0e52-3f1d-4c2e-9b8a-0123456789ab");
  EXPECT_RC(p_nvmlDeviceGetUUID(d1, text, sizeof text), NVML_SUCCESS);
  EXPECT_STR(text, "GPU-00000000-0000-0000-0000-000000000001");
  EXPECT_RC(p_nvmlDeviceGetUUID(d1, text, 10), NVML_ERROR(INSUFFICIENT_SIZE));
  EXPECT_RC(p_nvmlSystemGetDriverVersion(text, sizeof text), NVML_SUCCESS);
  EXPECT_STR(text, "550.54.15");
  EXPECT_RC(p_nvmlSystemGetDriverVersion(text, 9), NVML_ERROR(INSUFFICIENT_SIZE));
  EXPECT_RC(p_nvmlSystemGetDriverVersion(text, 10), NVML_SUCCESS);
  EXPECT_RC(p_nvmlSystemGetNVMLVersion(text, sizeof text), NVML_SUCCESS);
  EXPECT_STR(text, "12.550.54.15");
  EXPECT_RC(p_nvmlSystemGetCudaDriverVersion_v2(&cuda), NVML_SUCCESS);
  EXPECT_U64(cuda, 12040);
  cuda = 0;
  EXPECT_RC(p_nvmlSystemGetCudaDriverVersion(&cuda), NVML_SUCCESS);
  EXPECT_U64(cuda, 12040);
  EXPECT_RC(p_nvmlSystemGetCudaDriverVersion(NULL), NVML_ERROR(INVALID_ARGUMENT));

  /* PCI. */
  EXPECT_RC(p_nvmlDeviceGetPciInfo_v3(d0, &pci), NVML_SUCCESS);
  EXPECT_STR(pci.busId, "00000000:18:00.0");
  EXPECT_STR(pci.busIdLegacy, "0000:18:00.0");
  EXPECT_U64(pci.domain, 0);
  EXPECT_U64(pci.bus, 0x18);
  EXPECT_U64(pci.device, 0);
  EXPECT_U64(pci.pciDeviceId, 591728862u);
  EXPECT_U64(pci.pciSubSystemId, 0);
  EXPECT_RC(p_nvmlDeviceGetPciInfo_v3(d1, &pci), NVML_SUCCESS);
  EXPECT_STR(pci.busId, "00000000:02:00.0");
  EXPECT_U64(pci.bus, 2);
  EXPECT_U64(pci.pciDeviceId, 0x233010DEu);
  EXPECT_RC(p_nvmlDeviceGetPciInfo_v3(d1, NULL), NVML_ERROR(INVALID_ARGUMENT));

  /* Memory: v2 reports reserved apart from used; v1 counts it as used. */
  memset(&memory2, 0, sizeof memory2);
  memory2.version = 1;
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo_v2(d0, &memory2), NVML_ERROR(ARGUMENT_VERSION_MISMATCH));
  memory2.version = nvmlMemory_v2;
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo_v2(d0, &memory2), NVML_SUCCESS);
  EXPECT_U64(memory2.total, total);
  EXPECT_U64(memory2.reserved, reserved);
  EXPECT_U64(memory2.used, used);
  EXPECT_U64(memory2.free, total - reserved - used);
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo_v2(d0, NULL), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(d0, &memory), NVML_SUCCESS);
  EXPECT_U64(memory.total, total);
  EXPECT_U64(memory.used, reserved + used);
  EXPECT_U64(memory.free, total - reserved - used);
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(d1, &memory), NVML_SUCCESS);
  EXPECT_U64(memory.total, 17179869184ULL);
  EXPECT_U64(memory.used, 0);
  EXPECT_U64(memory.free, 17179869184ULL);

  /* Gauges, and null fields that make their functions NOT_SUPPORTED. */
  EXPECT_RC(p_nvmlDeviceGetUtilizationRates(d0, &utilization), NVML_SUCCESS);
  EXPECT_U64(utilization.gpu, 35);
  EXPECT_U64(utilization.memory, 12);
  EXPECT_RC(p_nvmlDeviceGetUtilizationRates(d1, &utilization), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetTemperature(d0, NVML_TEMPERATURE_GPU, &value), NVML_SUCCESS);
  EXPECT_U64(value, 41);
  EXPECT_RC(p_nvmlDeviceGetTemperature(d0, 1, &value), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlDeviceGetTemperature(d0, NVML_TEMPERATURE_GPU, NULL), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlDeviceGetTemperature(d1, NVML_TEMPERATURE_GPU, &value), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetPowerUsage(d0, &value), NVML_SUCCESS);
  EXPECT_U64(value, 123000);
  EXPECT_RC(p_nvmlDeviceGetEnforcedPowerLimit(d0, &value), NVML_SUCCESS);
  EXPECT_U64(value, 700000);
  EXPECT_RC(p_nvmlDeviceGetPowerUsage(d1, &value), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetEnforcedPowerLimit(d1, &value), NVML_SUCCESS);
  EXPECT_U64(value, 300000);
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d0, NVML_CLOCK_SM, &value), NVML_SUCCESS);
  EXPECT_U64(value, 1980);
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d0, NVML_CLOCK_GRAPHICS, &value), NVML_SUCCESS);
  EXPECT_U64(value, 1410); /* the graphics clock is its own reading (the scenario sets only smMhz) */
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d0, NVML_CLOCK_MEM, &value), NVML_SUCCESS);
  EXPECT_U64(value, 2619);
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d0, NVML_CLOCK_VIDEO, &value), NVML_SUCCESS);
  EXPECT_U64(value, 1275);
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d0, 9, &value), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d0, NVML_CLOCK_SM, NULL), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d1, NVML_CLOCK_MEM, &value), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d1, NVML_CLOCK_SM, &value), NVML_SUCCESS);
  EXPECT_U64(value, 1410);

  /* Process lists in every layout. */
  n = READ_PROCESSES(p_nvmlDeviceGetComputeRunningProcesses, d0, 16, records);
  if (CHECKF(n == 2, "v1 compute count %d", n)) {
    EXPECT_U64(records[0].pid, 4242);
    EXPECT_U64(records[0].used, 4294967296ULL);
    EXPECT_U64(records[1].pid, 4244);
    EXPECT_U64(records[1].used, 2147483648ULL);
  }
  n = READ_PROCESSES(p_nvmlDeviceGetComputeRunningProcesses_v2, d0, 24, records);
  if (CHECKF(n == 2, "v2 compute count %d", n)) {
    EXPECT_U64(records[0].pid, 4242);
    EXPECT_U64(records[0].gpuInstanceId, 0xFFFFFFFFu);
    EXPECT_U64(records[0].computeInstanceId, 0xFFFFFFFFu);
    EXPECT_U64(records[1].pid, 4244);
    EXPECT_U64(records[1].gpuInstanceId, 1);
    EXPECT_U64(records[1].computeInstanceId, 0);
  }
  n = READ_PROCESSES(p_nvmlDeviceGetComputeRunningProcesses_v3, d0, 24, records);
  if (CHECKF(n == 2, "v3 compute count %d", n)) {
    EXPECT_U64(records[1].pid, 4244);
    EXPECT_U64(records[1].used, 2147483648ULL);
    EXPECT_U64(records[1].gpuInstanceId, 1);
  }
  n = READ_PROCESSES(p_nvmlDeviceGetGraphicsRunningProcesses_v3, d0, 24, records);
  if (CHECKF(n == 2, "graphics count %d", n)) {
    EXPECT_U64(records[0].pid, 4243);
    EXPECT_U64(records[0].used, 1073741824ULL);
    EXPECT_U64(records[1].pid, 4244);
  }
  n = READ_PROCESSES(p_nvmlDeviceGetGraphicsRunningProcesses, d0, 16, records);
  CHECKF(n == 2 && records[0].pid == 4243, "v1 graphics count %d", n);
  n = READ_PROCESSES(p_nvmlDeviceGetMPSComputeRunningProcesses_v2, d0, 24, records);
  if (CHECKF(n == 1, "mps count %d", n)) {
    EXPECT_U64(records[0].pid, 4245);
    EXPECT_U64(records[0].used, NVML_VALUE_NOT_AVAILABLE);
  }
  n = READ_PROCESSES(p_nvmlDeviceGetMPSComputeRunningProcesses, d0, 16, records);
  CHECKF(n == 1 && records[0].pid == 4245, "v1 mps count %d", n);
  n = READ_PROCESSES(p_nvmlDeviceGetMPSComputeRunningProcesses_v3, d0, 24, records);
  CHECKF(n == 1 && records[0].pid == 4245, "v3 mps count %d", n);
  n = READ_PROCESSES(p_nvmlDeviceGetGraphicsRunningProcesses_v2, d1, 24, records);
  CHECKF(n == 0, "device 1 graphics count %d", n);

  /* The two-call protocol's edges. */
  count = 0;
  EXPECT_RC(p_nvmlDeviceGetComputeRunningProcesses_v3(d1, &count, NULL), NVML_SUCCESS);
  EXPECT_U64(count, 0);
  count = 5;
  EXPECT_RC(p_nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, NULL), NVML_ERROR(INSUFFICIENT_SIZE));
  EXPECT_U64(count, 2);
  {
    nvmlProcessInfo_v2_t one[2];
    memset(one, 0x5A, sizeof one);
    count = 1;
    EXPECT_RC(p_nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, one), NVML_ERROR(INSUFFICIENT_SIZE));
    EXPECT_U64(count, 2);
    CHECK(one[0].pid == 0x5A5A5A5Au); /* nothing written on INSUFFICIENT_SIZE */
    count = 2;
    EXPECT_RC(p_nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, one), NVML_SUCCESS);
    EXPECT_U64(count, 2);
  }
  EXPECT_RC(p_nvmlDeviceGetComputeRunningProcesses_v2(d0, NULL, NULL), NVML_ERROR(INVALID_ARGUMENT));

  /* Process utilization: each process with non-zero figures is sampled once per period at its own phase;
   * lastSeen 0 gets the 3 samples the driver keeps per process (oldest first), a lastSeen only newer ones. */
  count = 0;
  rc = p_nvmlDeviceGetProcessUtilization(d0, NULL, &count, 0);
  EXPECT_RC(rc, NVML_ERROR(INSUFFICIENT_SIZE));
  EXPECT_U64(count, 6);
  count = 1;
  EXPECT_RC(p_nvmlDeviceGetProcessUtilization(d0, samples, &count, 0), NVML_ERROR(INSUFFICIENT_SIZE));
  EXPECT_U64(count, 6);
  EXPECT_RC(p_nvmlDeviceGetProcessUtilization(d0, samples, NULL, 0), NVML_ERROR(INVALID_ARGUMENT));
  count = 8;
  EXPECT_RC(p_nvmlDeviceGetProcessUtilization(d0, samples, &count, 0), NVML_SUCCESS);
  if (CHECK(count == 6)) {
    EXPECT_U64(samples[0].pid, 4242);
    EXPECT_U64(samples[2].pid, 4242);
    EXPECT_U64(samples[2].smUtil, 30);
    EXPECT_U64(samples[2].memUtil, 10);
    EXPECT_U64(samples[5].pid, 4244);
    EXPECT_U64(samples[5].encUtil, 5);
    EXPECT_U64(samples[2].timeStamp - samples[1].timeStamp, 3600000000ULL);
    CHECKF(samples[2].timeStamp != samples[5].timeStamp, "processes share a timestamp %llu", samples[2].timeStamp);
    CHECKF(samples[2].timeStamp <= now_us() && samples[2].timeStamp + 3600000000ULL > now_us(),
           "sample stamp %llu is not this period's", samples[2].timeStamp);
    stamp = samples[2].timeStamp > samples[5].timeStamp ? samples[2].timeStamp : samples[5].timeStamp;
    count = 8;
    EXPECT_RC(p_nvmlDeviceGetProcessUtilization(d0, samples, &count, stamp), NVML_ERROR(NOT_FOUND));
    count = 8;
    EXPECT_RC(p_nvmlDeviceGetProcessUtilization(d0, samples, &count, stamp - 1), NVML_SUCCESS);
    CHECKF(count == 1 && samples[0].timeStamp == stamp, "after lastSeen: %u samples", count);
  }

  count = 4;
  EXPECT_RC(p_nvmlDeviceGetProcessUtilization(d1, samples, &count, 0), NVML_ERROR(NOT_FOUND));

  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(d0, &memory), NVML_ERROR(UNINITIALIZED));
}

/* Every entry point other NVML clients call (NVIDIA's Python binding, nvitop, gpustat, nvtop), on the
 * scenario's first device (fully modelled) and second (defaults): each answers as NVML does. */
static void test_client_api(void) {
  nvmlDevice_t d0, d1, found = NULL;
  unsigned int u = 0, u2 = 0;
  int i1 = -1, i2 = -1;
  unsigned long long ull = 0;
  char text[256];
  nvmlBAR1Memory_t bar1;
  nvmlConfComputeMemSizeInfo_t cc;
  nvmlFieldValue_t fields[2];
  nvmlEventSet_t set = NULL;
  nvmlEventData_t event;
  TMP_PATH(control, "client.control");

  current_test = "client api";
  write_file(control, "");
  use_scenario(scenario_path("current.json"), control);
  EXPECT_RC(p_nvmlInitWithFlags(0), NVML_SUCCESS); /* NVIDIA's Python binding starts here */
  EXPECT_RC(p_nvmlInit(), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetCount(&u), NVML_SUCCESS);
  EXPECT_U64(u, 2);
  EXPECT_RC(p_nvmlDeviceGetHandleByIndex(1, &d1), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetHandleByIndex(2, &found), NVML_ERROR(INVALID_ARGUMENT));
  d0 = handle(0);
  CHECK(d1 == handle(1));

  EXPECT_RC(p_nvmlDeviceGetHandleByUUID("GPU-5a3c0e52-3f1d-4c2e-9b8a-0123456789ab", &found), NVML_SUCCESS);
  CHECK(found == d0);
  EXPECT_RC(p_nvmlDeviceGetHandleByUUID("GPU-nope", &found), NVML_ERROR(NOT_FOUND));
  found = NULL;
  EXPECT_RC(p_nvmlDeviceGetHandleByPciBusId_v2("00000000:18:00.0", &found), NVML_SUCCESS);
  CHECK(found == d0);
  found = NULL;
  EXPECT_RC(p_nvmlDeviceGetHandleByPciBusId_v2("0000:18:00.0", &found), NVML_SUCCESS); /* the legacy form too */
  CHECK(found == d0);
  EXPECT_RC(p_nvmlDeviceGetHandleByPciBusId("00000000:02:00.0", &found), NVML_SUCCESS); /* device 1's default */
  CHECK(found == d1);
  EXPECT_RC(p_nvmlDeviceGetHandleByPciBusId_v2("00000000:77:00.0", &found), NVML_ERROR(NOT_FOUND));
  EXPECT_RC(p_nvmlDeviceGetHandleByPciBusId_v2("not a bus id", &found), NVML_ERROR(NOT_FOUND));

  EXPECT_RC(p_nvmlDeviceGetIndex(d1, &u), NVML_SUCCESS);
  EXPECT_U64(u, 1);
  EXPECT_RC(p_nvmlDeviceGetMinorNumber(d1, &u), NVML_SUCCESS);
  EXPECT_U64(u, 1);
  EXPECT_RC(p_nvmlDeviceGetSerial(d0, text, sizeof text), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetArchitecture(d0, &u), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetCudaComputeCapability(d0, &i1, &i2), NVML_SUCCESS);
  CHECKF(i1 == 9 && i2 == 0, "compute capability %d.%d", i1, i2);

  EXPECT_RC(p_nvmlDeviceGetFanSpeed(d0, &u), NVML_ERROR(NOT_SUPPORTED)); /* no fan: a datacenter GPU */
  EXPECT_RC(p_nvmlDeviceGetFanSpeed_v2(d0, 0, &u), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetNumFans(d0, &u), NVML_SUCCESS);
  EXPECT_U64(u, 0);
  EXPECT_RC(p_nvmlDeviceGetPerformanceState(d0, &i1), NVML_SUCCESS);
  EXPECT_U64(i1, 0);
  EXPECT_RC(p_nvmlDeviceGetPowerState(d0, &i1), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetPowerManagementLimit(d0, &u), NVML_SUCCESS);
  EXPECT_U64(u, 700000);
  EXPECT_RC(p_nvmlDeviceGetBAR1MemoryInfo(d0, &bar1), NVML_SUCCESS);
  EXPECT_U64(bar1.bar1Total, 256ULL << 20);
  EXPECT_U64(bar1.bar1Free + bar1.bar1Used, bar1.bar1Total);
  EXPECT_RC(p_nvmlDeviceGetComputeMode(d0, &i1), NVML_SUCCESS);
  EXPECT_U64(i1, 0);
  EXPECT_RC(p_nvmlDeviceGetPersistenceMode(d0, &i1), NVML_SUCCESS);
  EXPECT_U64(i1, 1);
  EXPECT_RC(p_nvmlDeviceGetDisplayActive(d0, &i1), NVML_SUCCESS);
  EXPECT_U64(i1, 0);
  EXPECT_RC(p_nvmlDeviceGetDisplayMode(d0, &i1), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetEncoderUtilization(d0, &u, &u2), NVML_SUCCESS);
  CHECKF(u == 0 && u2 > 0, "encoder %u%% over %u us", u, u2);
  EXPECT_RC(p_nvmlDeviceGetDecoderUtilization(d0, &u, &u2), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetDecoderUtilization(d0, &u, NULL), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlDeviceGetMaxClockInfo(d0, NVML_CLOCK_SM, &u), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d0, NVML_CLOCK_GRAPHICS, &u), NVML_SUCCESS);
  EXPECT_U64(u, 1410); /* its own value: the scenario set smMhz only */
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d0, NVML_CLOCK_VIDEO, &u), NVML_SUCCESS);

  EXPECT_RC(p_nvmlDeviceGetTemperatureThreshold(d0, 0, &u), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetMaxPcieLinkGeneration(d0, &u), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetMaxPcieLinkWidth(d0, &u), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetCurrPcieLinkGeneration(d0, &u), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetCurrPcieLinkWidth(d0, &u), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetPcieThroughput(d0, 0, &u), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetTotalEccErrors(d0, 0, 0, &ull), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetDriverModel(d0, &i1, &i2), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetConfComputeMemSizeInfo(d0, &cc), NVML_ERROR(NOT_SUPPORTED));
  memset(fields, 0, sizeof fields);
  EXPECT_RC(p_nvmlDeviceGetFieldValues(d0, 2, fields), NVML_SUCCESS);
  EXPECT_U64(fields[1].nvmlReturn, NVML_ERROR(NOT_SUPPORTED));

  EXPECT_RC(p_nvmlDeviceGetMigMode(d0, &u, &u2), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceIsMigDeviceHandle(d0, &u), NVML_SUCCESS);
  EXPECT_U64(u, 0);
  EXPECT_RC(p_nvmlDeviceGetMaxMigDeviceCount(d0, &u), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetMigDeviceHandleByIndex(d0, 0, &found), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetDeviceHandleFromMigDeviceHandle(d0, &found), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlDeviceGetGpuInstanceId(d0, &u), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlDeviceGetComputeInstanceId(d0, &u), NVML_ERROR(INVALID_ARGUMENT));

  EXPECT_RC(p_nvmlSystemGetProcessName((unsigned int)getpid(), text, sizeof text), NVML_SUCCESS);
  EXPECT_CONTAINS(text, "mock_selftest");
  EXPECT_RC(p_nvmlSystemGetProcessName(0x7FFFFFF0u, text, sizeof text), NVML_ERROR(NOT_FOUND));

  /* Events: a critical XID 79 when a registered device is lost, seen by the waiter alone. */
  EXPECT_RC(p_nvmlDeviceGetSupportedEventTypes(d0, &ull), NVML_SUCCESS);
  CHECK(ull & nvmlEventTypeXidCriticalError);
  EXPECT_RC(p_nvmlEventSetCreate(&set), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceRegisterEvents(d1, nvmlEventTypeXidCriticalError, set), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceRegisterEvents(d1, nvmlEventTypePState, set), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlEventSetWait_v2(set, &event, 5), NVML_ERROR(TIMEOUT));
  append_text(control, "{\"op\":\"loseDevice\",\"device\":1}\n");
  EXPECT_RC(p_nvmlEventSetWait_v2(set, &event, 5000), NVML_SUCCESS);
  CHECK(event.device == d1);
  EXPECT_U64(event.eventType, nvmlEventTypeXidCriticalError);
  EXPECT_U64(event.eventData, 79);
  EXPECT_RC(p_nvmlEventSetWait_v2(set, &event, 1), NVML_ERROR(TIMEOUT));
  EXPECT_RC(p_nvmlEventSetFree(set), NVML_SUCCESS);
  EXPECT_RC(p_nvmlEventSetFree(set), NVML_ERROR(INVALID_ARGUMENT));

  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
}

/* One era's library: its default driver and CUDA versions, and its process lists decoded with the
 * record size that era's driver writes (three processes: a second record shows a wrong stride). */
static void test_era(const char *driver, int cudaVersion, size_t v3stride) {
  char text[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
  record_t records[MAX_RECORDS];
  nvmlDevice_t d;
  nvmlMemory_t memory;
  nvmlMemory_v2_t memory2;
  int cuda = 0, n, expected, i;
  unsigned long long sum = 0;

  current_test = "era";
  use_scenario(scenario_path("era.json"), tmp_path("era.control"));
  if (!INIT_OK()) return;
  d = handle(0);
  EXPECT_RC(p_nvmlSystemGetDriverVersion(text, sizeof text), NVML_SUCCESS);
  EXPECT_STR(text, driver);
  EXPECT_RC(p_nvmlSystemGetCudaDriverVersion(&cuda), NVML_SUCCESS);
  EXPECT_U64(cuda, cudaVersion);
  if (p_nvmlSystemGetCudaDriverVersion_v2) {
    EXPECT_RC(p_nvmlSystemGetCudaDriverVersion_v2(&cuda), NVML_SUCCESS);
    EXPECT_U64(cuda, cudaVersion);
  }

  n = READ_PROCESSES(p_nvmlDeviceGetComputeRunningProcesses, d, 16, records);
  expected = n;
  CHECKF(n == 3, "v1 count %d", n);
  for (i = 0; i < n; ++i) {
    EXPECT_U64(records[i].used, (records[i].pid % 1000) * 1000001ULL); /* scenarios use usedBytes = k * 1000001 */
    sum += records[i].used;
  }
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(d, &memory), NVML_SUCCESS);
  CHECKF(memory.used >= sum && memory.free == memory.total - memory.used, "v1 memory %llu/%llu/%llu", memory.total,
         memory.used, memory.free);
  if (p_nvmlDeviceGetMemoryInfo_v2) {
    memset(&memory2, 0, sizeof memory2);
    memory2.version = nvmlMemory_v2;
    EXPECT_RC(p_nvmlDeviceGetMemoryInfo_v2(d, &memory2), NVML_SUCCESS);
    EXPECT_U64(memory2.used + memory2.reserved, memory.used);
  }
  if (p_nvmlDeviceGetComputeRunningProcesses_v2) {
    n = READ_PROCESSES(p_nvmlDeviceGetComputeRunningProcesses_v2, d, 24, records);
    CHECKF(n == expected, "v2 count %d", n);
    for (i = 0; i < n; ++i) EXPECT_U64(records[i].used, (records[i].pid % 1000) * 1000001ULL);
  }
  if (p_nvmlDeviceGetComputeRunningProcesses_v3) {
    n = READ_PROCESSES(p_nvmlDeviceGetComputeRunningProcesses_v3, d, v3stride, records);
    CHECKF(n == expected, "v3 count %d", n);
    for (i = 0; i < n; ++i) {
      EXPECT_U64(records[i].used, (records[i].pid % 1000) * 1000001ULL);
      if (v3stride == 32) EXPECT_U64(records[i].ccProtected, 0);
    }
    EXPECT_U64(records[0].gpuInstanceId, 2); /* the first process is in MIG instance 2/3 */
    EXPECT_U64(records[0].computeInstanceId, 3);
    EXPECT_U64(records[1].gpuInstanceId, 0xFFFFFFFFu);
  }
  if (p_nvmlDeviceGetRunningProcessDetailList) {
    nvmlProcessDetail_v1_t details[8];
    nvmlProcessDetailList_v1_t list;
    memset(&list, 0, sizeof list);
    list.version = nvmlProcessDetailList_v1;
    list.mode = NVML_PROCESS_MODE_COMPUTE;
    EXPECT_RC(p_nvmlDeviceGetRunningProcessDetailList(d, &list), NVML_ERROR(INSUFFICIENT_SIZE));
    EXPECT_U64(list.numProcArrayEntries, 3);
    list.procArray = details;
    list.numProcArrayEntries = 8;
    EXPECT_RC(p_nvmlDeviceGetRunningProcessDetailList(d, &list), NVML_SUCCESS);
    EXPECT_U64(list.numProcArrayEntries, 3);
    EXPECT_U64(details[2].pid, 1003);
    EXPECT_U64(details[2].usedGpuMemory, 3000003);
    list.version = nvmlMemory_v2;
    EXPECT_RC(p_nvmlDeviceGetRunningProcessDetailList(d, &list), NVML_ERROR(ARGUMENT_VERSION_MISMATCH));
  }
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
}

/* MIG (eras 470 on): MIG device handles by index, what they answer, and the parent's privileges. */
static void test_mig(void) {
  record_t records[MAX_RECORDS];
  nvmlDevice_t d0, d1, m0, m2, found;
  nvmlMemory_t memory;
  unsigned int u = 0, u2 = 0;
  char text[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
  int n;
  TMP_PATH(control, "mig.control");
  TMP_PATH(unprivileged, "mig-unprivileged.json");

  current_test = "mig";
  write_file(control, "");
  use_scenario(scenario_path("mig.json"), control);
  if (!INIT_OK()) return;
  d0 = handle(0);
  d1 = handle(1);
  EXPECT_RC(p_nvmlDeviceGetMigMode(d0, &u, &u2), NVML_SUCCESS);
  EXPECT_U64(u, NVML_DEVICE_MIG_ENABLE);
  EXPECT_RC(p_nvmlDeviceGetMaxMigDeviceCount(d0, &u), NVML_SUCCESS);
  EXPECT_U64(u, 7);
  EXPECT_RC(p_nvmlDeviceGetMaxMigDeviceCount(d1, &u), NVML_SUCCESS);
  EXPECT_U64(u, 0); /* MIG-capable, disabled */
  EXPECT_RC(p_nvmlDeviceGetMigDeviceHandleByIndex(d0, 0, &m0), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetMigDeviceHandleByIndex(d0, 1, &found), NVML_ERROR(NOT_FOUND));
  EXPECT_RC(p_nvmlDeviceGetMigDeviceHandleByIndex(d0, 2, &m2), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetMigDeviceHandleByIndex(d0, 7, &found), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlDeviceGetMigDeviceHandleByIndex(d1, 0, &found), NVML_ERROR(NOT_FOUND));
  CHECK(m0 != m2 && m0 != d0);

  EXPECT_RC(p_nvmlDeviceIsMigDeviceHandle(m0, &u), NVML_SUCCESS);
  EXPECT_U64(u, 1);
  EXPECT_RC(p_nvmlDeviceGetHandleByUUID("MIG-11111111-2222-3333-4444-555555555555", &found), NVML_SUCCESS);
  CHECK(found == m0);
  EXPECT_RC(p_nvmlDeviceGetHandleByUUID("MIG-00000000-0000-0000-0000-000000000000", &found), NVML_ERROR(NOT_FOUND));
  EXPECT_RC(p_nvmlDeviceGetDeviceHandleFromMigDeviceHandle(m2, &found), NVML_SUCCESS);
  CHECK(found == d0);
  EXPECT_RC(p_nvmlDeviceGetGpuInstanceId(m2, &u), NVML_SUCCESS);
  EXPECT_U64(u, 2);
  EXPECT_RC(p_nvmlDeviceGetComputeInstanceId(m2, &u), NVML_SUCCESS);
  EXPECT_U64(u, 1);
  EXPECT_RC(p_nvmlDeviceGetUUID(m0, text, sizeof text), NVML_SUCCESS);
  EXPECT_STR(text, "MIG-11111111-2222-3333-4444-555555555555");
  EXPECT_RC(p_nvmlDeviceGetUUID(m2, text, sizeof text), NVML_SUCCESS);
  EXPECT_CONTAINS(text, "MIG-"); /* derived: the scenario left it out */
  EXPECT_RC(p_nvmlDeviceGetName(m2, text, sizeof text), NVML_SUCCESS);
  EXPECT_STR(text, "NVIDIA A100-SXM4-80GB MIG 2g.20gb");

  /* The instance's own memory (v1: used includes its reservation) and processes. */
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(m0, &memory), NVML_SUCCESS);
  EXPECT_U64(memory.total, 42949672960ULL);
  EXPECT_U64(memory.used, 268435456ULL + 67108864ULL + 3000003ULL);
  EXPECT_U64(memory.free, memory.total - memory.used);
  n = READ_PROCESSES(p_nvmlDeviceGetComputeRunningProcesses, m0, 16, records);
  CHECKF(n == 2 && records[0].pid == 2001 && records[1].pid == 2002, "instance 1/0 lists %d processes", n);
  if (p_nvmlDeviceGetComputeRunningProcesses_v2) {
    n = READ_PROCESSES(p_nvmlDeviceGetComputeRunningProcesses_v2, m2, 24, records);
    CHECKF(n == 1 && records[0].pid == 2003 && records[0].gpuInstanceId == 2, "instance 2/1 lists %d processes", n);
  }
  n = READ_PROCESSES(p_nvmlDeviceGetComputeRunningProcesses, d0, 16, records);
  CHECKF(n == 3, "the privileged parent lists every instance's processes, got %d", n);
  /* The privileged parent's memory is the aggregate: its reservation, every MIG device's otherUsed and
   * every process (v1: used includes the reservation). */
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(d0, &memory), NVML_SUCCESS);
  EXPECT_U64(memory.total, 85899345920ULL);
  EXPECT_U64(memory.used, 444596224ULL + 67108864ULL + 1000001ULL + 2000002ULL + 3000003ULL);
  EXPECT_U64(memory.free, memory.total - memory.used);

  /* What a MIG handle does not answer. */
  EXPECT_RC(p_nvmlDeviceGetTemperature(m0, NVML_TEMPERATURE_GPU, &u), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetMigMode(m0, &u, &u2), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetMigDeviceHandleByIndex(m0, 0, &found), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlDeviceGetGpuInstanceId(d0, &u), NVML_ERROR(INVALID_ARGUMENT));

  /* A lost parent loses its MIG handles; MIG switched off makes them invalid. */
  append_text(control, "{\"op\":\"loseDevice\",\"device\":0}\n");
  settle();
  EXPECT_RC(p_nvmlDeviceGetUUID(m0, text, sizeof text), NVML_ERROR(GPU_IS_LOST));
  append_text(control, "{\"op\":\"recoverDevice\",\"device\":0}\n{\"op\":\"setDevice\",\"device\":0,\"migMode\":false}\n");
  settle();
  EXPECT_RC(p_nvmlDeviceGetUUID(m0, text, sizeof text), NVML_ERROR(INVALID_ARGUMENT));
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);

  /* Unprivileged: the MIG-enabled parent refuses memory and processes, its instances answer. */
  write_file(unprivileged, "{\"unprivileged\":true,\"devices\":[{\"migMode\":true,\"memory\":{\"total\":1000},"
                           "\"migInstances\":[{\"gpuInstanceId\":3,\"memory\":{\"total\":500}}],"
                           "\"processes\":[{\"pid\":7,\"usedBytes\":100,\"gpuInstanceId\":3,\"computeInstanceId\":0}]}]}");
  use_scenario(unprivileged, NULL);
  if (!INIT_OK()) return;
  d0 = handle(0);
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(d0, &memory), NVML_ERROR(NO_PERMISSION));
  u = 0;
  EXPECT_RC(p_nvmlDeviceGetComputeRunningProcesses(d0, &u, NULL), NVML_ERROR(NO_PERMISSION));
  EXPECT_RC(p_nvmlDeviceGetMigDeviceHandleByIndex(d0, 0, &m0), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(m0, &memory), NVML_SUCCESS);
  EXPECT_U64(memory.used, 100);
  n = READ_PROCESSES(p_nvmlDeviceGetComputeRunningProcesses, m0, 16, records);
  CHECKF(n == 1 && records[0].pid == 7, "unprivileged instance lists %d processes", n);
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
}

/* The scenario's era must be the library's own. */
static void test_era_mismatch(const char *own) {
  TMP_PATH(path, "other-era.json");
  current_test = "era mismatch";
  write_file(path, strcmp(own, "418") == 0 ? "{\"era\":\"580\",\"devices\":[]}" : "{\"era\":\"418\",\"devices\":[]}");
  use_scenario(path, tmp_path("unused.control"));
  EXPECT_RC(p_nvmlInit_v2(), NVML_ERROR(UNKNOWN));
  EXPECT_CONTAINS(p_initError(), "needs the mock library built for it");
  EXPECT_CONTAINS(p_initError(), own);
}

static void test_error_injection(void) {
  TMP_PATH(control, "errors.control");
  unsigned int value = 0;
  char text[80];
  int i;
  nvmlDevice_t d0, d1 = NULL;
  current_test = "error injection";
  unlink(control);
  use_scenario(scenario_path("errors.json"), control);
  if (!INIT_OK()) return;
  d0 = handle(0);
  /* Injection comes before argument checks, and counts down. */
  EXPECT_RC(p_nvmlDeviceGetPowerUsage(d0, NULL), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetPowerUsage(d0, &value), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetPowerUsage(d0, &value), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetPowerUsage(d0, &value), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetPowerUsage(d0, NULL), NVML_ERROR(INVALID_ARGUMENT));
  /* A rule for one device leaves the others alone; a rule without a device hits all. */
  EXPECT_RC(p_nvmlDeviceGetHandleByIndex_v2(1, &d1), 999);
  EXPECT_RC(p_nvmlDeviceGetHandleByIndex_v2(1, &d1), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetPowerUsage(d1, &value), NVML_SUCCESS);
  for (i = 0; i < 3; ++i) {
    EXPECT_RC(p_nvmlDeviceGetTemperature(d0, NVML_TEMPERATURE_GPU, &value), NVML_ERROR(TIMEOUT));
    EXPECT_RC(p_nvmlDeviceGetTemperature(d1, NVML_TEMPERATURE_GPU, &value), NVML_ERROR(TIMEOUT));
  }
  EXPECT_RC(p_nvmlSystemGetDriverVersion(text, sizeof text), NVML_ERROR(NO_PERMISSION));
  EXPECT_RC(p_nvmlSystemGetDriverVersion(text, sizeof text), NVML_SUCCESS);
  EXPECT_STR(p_nvmlErrorString(999), "Unknown Error");

  /* Rules added and removed at run time. */
  append_text(control,
              "{\"op\":\"injectError\",\"function\":\"nvmlDeviceGetClockInfo\",\"device\":1,\"return\":\"GPU_IS_LOST\",\"count\":2}\n"
              "{\"op\":\"injectError\",\"function\":\"nvmlErrorString\",\"return\":\"UNKNOWN\",\"count\":1}\n"
              "{\"op\":\"injectError\",\"function\":\"nvmlDeviceGetName\",\"device\":0,\"return\":\"NVML_ERROR_NO_DATA\"}\n"
              "{\"op\":\"injectError\",\"function\":\"nvmlDeviceGetName\",\"return\":\"IN_USE\"}\n");
  settle();
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d1, NVML_CLOCK_SM, &value), NVML_ERROR(GPU_IS_LOST));
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d0, NVML_CLOCK_SM, &value), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d1, NVML_CLOCK_SM, &value), NVML_ERROR(GPU_IS_LOST));
  EXPECT_RC(p_nvmlDeviceGetClockInfo(d1, NVML_CLOCK_SM, &value), NVML_SUCCESS);
  CHECK(p_nvmlErrorString(NVML_SUCCESS) == NULL);
  EXPECT_STR(p_nvmlErrorString(NVML_SUCCESS), "Success");
  EXPECT_RC(p_nvmlDeviceGetName(d0, text, sizeof text), NVML_ERROR(NO_DATA)); /* first matching rule wins */
  EXPECT_RC(p_nvmlDeviceGetName(d1, text, sizeof text), NVML_ERROR(IN_USE));
  append_text(control, "{\"op\":\"clearErrors\",\"device\":0}\n");
  settle();
  EXPECT_RC(p_nvmlDeviceGetName(d0, text, sizeof text), NVML_ERROR(IN_USE));
  append_text(control, "{\"op\":\"clearErrors\",\"function\":\"nvmlDeviceGetName\"}\n");
  settle();
  EXPECT_RC(p_nvmlDeviceGetName(d0, text, sizeof text), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetTemperature(d0, NVML_TEMPERATURE_GPU, &value), NVML_ERROR(TIMEOUT));
  append_text(control, "{\"op\":\"clearErrors\"}\n");
  settle();
  EXPECT_RC(p_nvmlDeviceGetTemperature(d0, NVML_TEMPERATURE_GPU, &value), NVML_SUCCESS);
  EXPECT_STR(p_warnings(), "");
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
}

static void test_lose_recover(void) {
  TMP_PATH(control, "lose.control");
  unsigned int count = 0, value = 0;
  nvmlDevice_t d0, d1 = NULL;
  nvmlMemory_t memory;
  char text[96];
  current_test = "lose and recover";
  unlink(control);
  use_scenario(scenario_path("current.json"), control);
  if (!INIT_OK()) return;
  d0 = handle(0);
  append_text(control, "{\"op\":\"loseDevice\",\"device\":1}\n");
  settle();
  EXPECT_RC(p_nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
  EXPECT_U64(count, 2);
  EXPECT_RC(p_nvmlDeviceGetHandleByIndex_v2(1, &d1), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(d1, &memory), NVML_ERROR(GPU_IS_LOST));
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(d1, NULL), NVML_ERROR(GPU_IS_LOST));
  EXPECT_RC(p_nvmlDeviceGetName(d1, text, sizeof text), NVML_ERROR(GPU_IS_LOST));
  EXPECT_RC(p_nvmlDeviceGetComputeRunningProcesses_v3(d1, &count, NULL), NVML_ERROR(GPU_IS_LOST));
  EXPECT_RC(p_nvmlDeviceGetPowerUsage(d1, &value), NVML_ERROR(GPU_IS_LOST));
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(d0, &memory), NVML_SUCCESS);
  append_text(control, "{\"op\":\"recoverDevice\",\"device\":1}\n");
  settle();
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(d1, &memory), NVML_SUCCESS);
  EXPECT_RC(p_nvmlDeviceGetName(d1, text, sizeof text), NVML_SUCCESS);
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
}

#define APPENDERS 4
#define LINES_PER_APPENDER 50
static const char *appender_control;

static void *appender_main(void *arg) {
  int id = (int)(intptr_t)arg, i;
  char line[160];
  for (i = 0; i < LINES_PER_APPENDER; ++i) {
    snprintf(line, sizeof line, "{\"op\":\"setProcess\",\"device\":1,\"pid\":%d,\"usedBytes\":%d}\n",
             10000 + id * 1000 + i, 1 + i);
    append_text(appender_control, line);
  }
  return NULL;
}

static void test_control_file(void) {
  TMP_PATH(path, "control.json");
  TMP_PATH(control, "control.jsonl");
  record_t records[MAX_RECORDS];
  nvmlDevice_t d0, d1;
  unsigned int value = 0, count;
  int n, i;
  pthread_t threads[APPENDERS];
  char *stats;
  current_test = "control file";
  write_file(path,
             "{\"devices\":[{\"memory\":{\"total\":1000000000},\"processes\":[{\"pid\":10,\"usedBytes\":100}]},"
             "{\"memory\":{\"total\":1000000000}}]}");
  unlink(control);
  use_scenario(path, control);
  if (!INIT_OK()) return;
  d0 = handle(0);
  d1 = handle(1);
  EXPECT_U64(memory_used_v2(d0), 100); /* no control file yet: fine */

  append_text(control, "{\"op\":\"setProcess\",\"device\":0,\"pid\":11,\"usedBytes\":1000,\"type\":\"compute\"}\n");
  settle();
  EXPECT_U64(memory_used_v2(d0), 1100);
  n = READ_PROCESSES(p_nvmlDeviceGetComputeRunningProcesses_v3, d0, 24, records);
  CHECKF(n == 2 && has_pid(records, n, 11), "count %d", n);

  /* A partial line waits for its end. */
  append_text(control, "{\"op\":\"setProcess\",\"device\":0,\"pid\":12,");
  settle();
  EXPECT_U64(memory_used_v2(d0), 1100);
  append_text(control, "\"usedBytes\":5}\n");
  settle();
  EXPECT_U64(memory_used_v2(d0), 1105);

  /* Partial updates keep the other fields; nested device objects merge. */
  append_text(control, "{\"op\":\"setProcess\",\"device\":0,\"pid\":11,\"smUtilPercent\":50}\n"
                       "{\"op\":\"setDevice\",\"device\":0,\"memory\":{\"otherUsed\":7},\"temperatureCelsius\":80}\n"
                       "{\"op\":\"setDevice\",\"device\":0,\"power\":null}\n"
                       "\n");
  settle();
  EXPECT_U64(memory_used_v2(d0), 1112);
  EXPECT_RC(p_nvmlDeviceGetTemperature(d0, NVML_TEMPERATURE_GPU, &value), NVML_SUCCESS);
  EXPECT_U64(value, 80);
  EXPECT_RC(p_nvmlDeviceGetPowerUsage(d0, &value), NVML_ERROR(NOT_SUPPORTED));
  EXPECT_RC(p_nvmlDeviceGetEnforcedPowerLimit(d0, &value), NVML_ERROR(NOT_SUPPORTED));
  {
    nvmlProcessUtilizationSample_t samples[4];
    count = 4;
    EXPECT_RC(p_nvmlDeviceGetProcessUtilization(d0, samples, &count, 0), NVML_SUCCESS);
    CHECK(count == 3 && samples[2].pid == 11 && samples[2].smUtil == 50);
  }

  /* Bad lines are skipped with a warning; the lines after them still apply. */
  append_text(control,
              "not json\n"
              "{\"op\":\"setProcess\",\"device\":5,\"pid\":1}\n"
              "{\"op\":\"bogus\"}\n"
              "{\"op\":\"setProcess\",\"device\":0,\"pid\":99,\"usedBytes\":999999999999}\n"
              "{\"op\":\"setProcess\",\"device\":0,\"pid\":13,\"usedBytes\":\"lots\"}\n"
              "{\"op\":\"setProcess\",\"device\":0,\"pid\":13,\"usedBytes\":1}\n");
  settle();
  EXPECT_U64(memory_used_v2(d0), 1113);
  EXPECT_CONTAINS(p_warnings(), "control.jsonl:7:1: invalid JSON");
  EXPECT_CONTAINS(p_warnings(), "control.jsonl:8: $.device: device index 5 is out of range");
  EXPECT_CONTAINS(p_warnings(), "control.jsonl:9: $.op: unknown op \"bogus\"");
  EXPECT_CONTAINS(p_warnings(), "control.jsonl:10: op refused: $.devices[0].memory: device 0 (\"Mock GPU 0\") is over-committed");
  EXPECT_CONTAINS(p_warnings(), "control.jsonl:11: $.usedBytes: expected a non-negative integer, got \"lots\"");

  /* removeProcess without a device removes the pid everywhere. */
  append_text(control, "{\"op\":\"setProcess\",\"device\":1,\"pid\":11,\"usedBytes\":3}\n"
                       "{\"op\":\"removeProcess\",\"pid\":11}\n");
  settle();
  EXPECT_U64(memory_used_v2(d0), 113);
  EXPECT_U64(memory_used_v2(d1), 0);

  /* Truncating the file starts it over from its first line. */
  CHECK(truncate(control, 0) == 0);
  settle();
  EXPECT_U64(memory_used_v2(d0), 113);
  append_text(control, "{\"op\":\"setProcess\",\"device\":0,\"pid\":14,\"usedBytes\":1000}\n");
  settle();
  EXPECT_U64(memory_used_v2(d0), 1113);
  append_text(control, "{\"op\":\"bogus\"}\n");
  settle();
  p_nvmlDeviceGetCount_v2(&count); /* ops, and their warnings, come with NVML calls */
  EXPECT_CONTAINS(p_warnings(), "control.jsonl:2: $.op: unknown op");

  /* So does replacing it with another file, even a longer one. */
  {
    TMP_PATH(replacement, "control.jsonl.new");
    write_file(replacement,
               "{\"op\":\"removeProcess\",\"device\":0,\"pid\":14}\n"
               "{\"op\":\"setProcess\",\"device\":0,\"pid\":15,\"usedBytes\":20000}\n"
               "{\"op\":\"setProcess\",\"device\":0,\"pid\":16,\"usedBytes\":30000}\n");
    CHECK(rename(replacement, control) == 0);
    settle();
    EXPECT_U64(memory_used_v2(d0), 50113);
  }

  /* Appenders in several threads, each line in one write: every line arrives whole. */
  appender_control = control;
  for (i = 0; i < APPENDERS; ++i) pthread_create(&threads[i], NULL, appender_main, (void *)(intptr_t)i);
  for (i = 0; i < 200; ++i) p_nvmlDeviceGetCount_v2(&count); /* read while they write */
  for (i = 0; i < APPENDERS; ++i) pthread_join(threads[i], NULL);
  settle();
  n = READ_PROCESSES(p_nvmlDeviceGetComputeRunningProcesses_v3, d1, 24, records);
  EXPECT_U64(n, APPENDERS * LINES_PER_APPENDER);
  EXPECT_U64(memory_used_v2(d1), APPENDERS * (LINES_PER_APPENDER * (LINES_PER_APPENDER + 1) / 2));

  /* writeStats paths resolve against the scenario's directory. */
  unlink(tmp_path("stats.json"));
  append_text(control, "{\"op\":\"writeStats\",\"path\":\"stats.json\"}\n");
  settle();
  p_nvmlDeviceGetCount_v2(&count);
  stats = read_file(tmp_path("stats.json"));
  EXPECT_CONTAINS(stats, "\"nvmlInit_v2\":1");
  free(stats);
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);

  /* The control file is a log on top of the scenario: a fresh init applies it from the start, except
   * that writeStats lines already there do not run again. */
  if (INIT_OK()) {
    EXPECT_U64(memory_used_v2(handle(0)), 50100);
    EXPECT_U64(memory_used_v2(handle(1)), APPENDERS * (LINES_PER_APPENDER * (LINES_PER_APPENDER + 1) / 2));
    stats = read_file(tmp_path("stats.json"));
    EXPECT_CONTAINS(stats, "\"nvmlDeviceGetMemoryInfo_v2\":");
    free(stats);
    EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
  }
}

static void test_control_paths(void) {
  TMP_PATH(path, "paths.json");
  current_test = "control file paths";
  /* "controlFile" resolves against the scenario's directory. */
  mkdir(tmp_path("ctl"), 0755);
  write_file(path, "{\"controlFile\":\"ctl/ops.jsonl\",\"devices\":[{\"memory\":{\"total\":1000}}]}");
  write_file(tmp_path("ctl/ops.jsonl"), "{\"op\":\"setProcess\",\"device\":0,\"pid\":5,\"usedBytes\":10}\n");
  use_scenario(path, NULL);
  if (INIT_OK()) {
    EXPECT_U64(memory_used_v2(handle(0)), 10);
    EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
  }
  /* VRAMGUARD_MOCK_CONTROL wins over it. */
  write_file(tmp_path("env.jsonl"), "{\"op\":\"setProcess\",\"device\":0,\"pid\":5,\"usedBytes\":20}\n");
  use_scenario(path, tmp_path("env.jsonl"));
  if (INIT_OK()) {
    EXPECT_U64(memory_used_v2(handle(0)), 20);
    EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
  }
  /* Neither: "<scenario>.control". */
  write_file(path, "{\"devices\":[{\"memory\":{\"total\":1000}}]}");
  write_file(tmp_path("paths.json.control"), "{\"op\":\"setProcess\",\"device\":0,\"pid\":5,\"usedBytes\":30}\n");
  use_scenario(path, NULL);
  if (INIT_OK()) {
    EXPECT_U64(memory_used_v2(handle(0)), 30);
    EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
  }
}

static void test_timeline(void) {
  unsigned int value = 0;
  nvmlDevice_t d0, d1;
  nvmlMemory_t memory;
  current_test = "timeline";
  use_scenario(scenario_path("timeline.json"), tmp_path("timeline.control"));
  if (!INIT_OK()) return;
  d0 = handle(0);
  d1 = handle(1);
  EXPECT_U64(memory_used_v2(d0), 1000); /* atMs 0 applies at init */
  EXPECT_RC(p_nvmlDeviceGetTemperature(d0, NVML_TEMPERATURE_GPU, &value), NVML_SUCCESS);
  EXPECT_U64(value, 40);
  sleep_ms(550);
  EXPECT_RC(p_nvmlDeviceGetMemoryInfo(d0, &memory), NVML_ERROR(GPU_IS_LOST));
  EXPECT_U64(memory_used_v2(d1), 200000000);
  sleep_ms(400);
  EXPECT_U64(memory_used_v2(d0), 5000);
  EXPECT_RC(p_nvmlDeviceGetTemperature(d0, NVML_TEMPERATURE_GPU, &value), NVML_SUCCESS);
  EXPECT_U64(value, 80);
  EXPECT_STR(p_warnings(), "");
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
}

static void test_follow_pid(void) {
  TMP_PATH(path, "follow.json");
  TMP_PATH(control, "follow.control");
  char line[256];
  record_t records[MAX_RECORDS];
  pid_t sleeper, gone;
  int n, status;
  nvmlDevice_t d0;
  current_test = "followPid";

  gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, &status, 0); /* reaped: the pid names no process now */
  sleeper = fork();
  if (sleeper == 0) {
    pause();
    _exit(0);
  }
  write_file(path, "{\"devices\":[{\"memory\":{\"total\":1000000}}]}");
  unlink(control);
  use_scenario(path, control);
  if (!INIT_OK()) return;
  d0 = handle(0);
  snprintf(line, sizeof line,
           "{\"op\":\"setProcess\",\"device\":0,\"pid\":%d,\"usedBytes\":100,\"followPid\":true}\n"
           "{\"op\":\"setProcess\",\"device\":0,\"pid\":%d,\"usedBytes\":200,\"followPid\":true}\n"
           "{\"op\":\"setProcess\",\"device\":0,\"pid\":%d,\"usedBytes\":400}\n",
           (int)sleeper, (int)gone, (int)gone + 100000);
  append_text(control, line);
  settle();
  n = READ_PROCESSES(p_nvmlDeviceGetComputeRunningProcesses_v3, d0, 24, records);
  CHECKF(n == 2 && has_pid(records, n, (unsigned)sleeper) && !has_pid(records, n, (unsigned)gone), "count %d", n);
  EXPECT_U64(memory_used_v2(d0), 500);
  kill(sleeper, SIGKILL);
  sleep_ms(50); /* a zombie until reaped below, which already counts as gone */
  settle();
  EXPECT_U64(memory_used_v2(d0), 400);
  waitpid(sleeper, &status, 0);
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
}

struct caller {
  const char *name;
  int calls;
};

static void *caller_main(void *arg) {
  const struct caller *c = arg;
  int i;
  unsigned int count;
  pthread_setname_np(pthread_self(), c->name);
  for (i = 0; i < c->calls; ++i) {
    if (strcmp(c->name, "vg-sampler") == 0) {
      nvmlDevice_t d;
      nvmlMemory_v2_t memory;
      memory.version = nvmlMemory_v2;
      p_nvmlDeviceGetHandleByIndex_v2(0, &d);
      p_nvmlDeviceGetMemoryInfo_v2(d, &memory);
    } else {
      p_nvmlDeviceGetCount_v2(&count);
    }
  }
  return NULL;
}

static void test_stats_by_thread(void) {
  TMP_PATH(path, "stats-scenario.json");
  TMP_PATH(control, "stats.control");
  TMP_PATH(stats_path, "thread-stats.json");
  struct caller sampler = {"vg-sampler", 5}, other = {"vg-other", 3};
  pthread_t a, b;
  unsigned int count;
  char *stats;
  char main_name[32] = "", expected[4200];
  current_test = "stats by thread";
  write_file(path, "{\"devices\":[{\"memory\":{\"total\":1000000}}]}");
  unlink(control);
  unlink(stats_path);
  use_scenario(path, control);
  if (!INIT_OK()) return;
  pthread_create(&a, NULL, caller_main, &sampler);
  pthread_create(&b, NULL, caller_main, &other);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  snprintf(expected, sizeof expected, "{\"op\":\"writeStats\",\"path\":\"%s\"}\n", stats_path);
  append_text(control, expected);
  settle();
  p_nvmlDeviceGetCount_v2(&count);
  stats = read_file(stats_path);
  CHECKF(stats != NULL, "no stats file at %s", stats_path);
  EXPECT_CONTAINS(stats, "\"vg-sampler\":{\"nvmlDeviceGetHandleByIndex_v2\":5,\"nvmlDeviceGetMemoryInfo_v2\":5}");
  EXPECT_CONTAINS(stats, "\"vg-other\":{\"nvmlDeviceGetCount_v2\":3}");
  EXPECT_CONTAINS(stats, "\"calls\":{\"nvmlInit_v2\":1,\"nvmlDeviceGetCount_v2\":4,");
  pthread_getname_np(pthread_self(), main_name, sizeof main_name);
  snprintf(expected, sizeof expected, "\"%s\":{\"nvmlInit_v2\":1,\"nvmlDeviceGetCount_v2\":1}", main_name);
  EXPECT_CONTAINS(stats, expected);
  free(stats);
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
}

/* Scenario texts and what nvmlInit_v2 must say about them (NULL: it must succeed). */
static void test_validation_edges(void) {
  static const struct {
    const char *text;
    const char *expected;
  } cases[] = {
      {"{\"devices\":[{\"memory\":{\"total\":18446744073709551615}}]}", NULL},
      {"\xEF\xBB\xBF{\"devices\":[]}", NULL},
      {"{\"devices\":[{\"memory\":{\"total\":18446744073709551616}}]}",
       "$.devices[0].memory.total: expected a non-negative integer of at most 18446744073709551615, got 18446744073709551616"},
      {"{\"devices\":[{\"memory\":{\"total\":1.5}}]}", "$.devices[0].memory.total: expected a non-negative integer, got 1.5"},
      {"{\"devices\":[{\"memory\":{\"total\":1e3}}]}", "got 1e3"},
      {"{\"devices\":[{\"memory\":{\"total\":-1}}]}", "got -1"},
      {"{\"devices\":[{\"memory\":{\"total\":01}}]}", ":1:32: invalid JSON: numbers must not have leading zeros"},
      {"{\"devices\":[],}", ":1:15: invalid JSON: trailing comma before '}'"},
      {"{\"devices\":[1,]}", "trailing comma before ']'"},
      {"{\"devices\":[],\n  \"devices\":[]}", ":2:3: invalid JSON: duplicate key \"devices\""},
      {"// comment\n{\"devices\":[]}", ":1:1: invalid JSON: unexpected '/', expected a value"},
      {"{'devices':[]}", ":1:2: invalid JSON: expected a member name in double quotes"},
      {"", ":1:1: invalid JSON: unexpected end of input, expected a value"},
      {"{\"devices\":[]} x", ":1:16: invalid JSON: unexpected 'x' after the JSON value"},
      {"{\"devices\":[{\"name\":\"\xC3\xA9\xC3\xA9\"x", ":1:25: invalid JSON: expected ',' or '}'"},
      {"{\"devices\":[{\"name\":\"a\tb\",\"memory\":{\"total\":1}}]}", "raw control character in string"},
      {"{\"devices\":[{\"name\":\"a\xFF\",\"memory\":{\"total\":1}}]}", "invalid UTF-8 in string"},
      {"{\"devices\":[{\"name\":\"\\ud800x\",\"memory\":{\"total\":1}}]}", "unpaired high surrogate"},
      {"{\"devices\":[{\"name\":\"\\q\",\"memory\":{\"total\":1}}]}", "invalid escape sequence"},
      {"{\"devices\":[tru]}", "invalid literal (expected true)"},
      {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
       "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
       "nesting deeper than 128 levels"},
      {"{}", "scenario /"},
      {"{}", ": $: missing required key \"devices\""},
      {"[]", ": $: expected an object, got an array"},
      {"{\"devices\":[{}]}", "$.devices[0]: missing required key \"memory\""},
      {"{\"devices\":[{\"memory\":{}}]}", "$.devices[0].memory: missing required key \"total\""},
      {"{\"era\":\"v9\",\"devices\":[]}", "$.era: expected a driver era (\"418\", \"470\", \"510\", \"535.54\", \"535.98\", \"535.104\", \"550\" or \"580\"), got \"v9\""},
      {"{\"processUtilizationPeriodMs\":0,\"devices\":[]}", "$.processUtilizationPeriodMs: expected an integer from 1 to 3600000, got 0"},
      {"{\"cudaDriverVersion\":\"12.4\",\"devices\":[]}", "$.cudaDriverVersion: expected an integer from 0 to 2147483647, got \"12.4\""},
      {"{\"devices\":[{\"memory\":{\"total\":1},\"processes\":[{\"pid\":1,\"usedbytes\":1}]}]}",
       "$.devices[0].processes[0].usedbytes: unknown key (expected one of: pid, usedBytes,"},
      {"{\"devices\":[{\"memory\":{\"total\":1},\"processes\":[{\"pid\":0}]}]}",
       "$.devices[0].processes[0].pid: expected an integer from 1 to 2147483647, got 0"},
      {"{\"devices\":[{\"memory\":{\"total\":1},\"processes\":[{\"usedBytes\":0}]}]}",
       "$.devices[0].processes[0]: missing required key \"pid\""},
      {"{\"devices\":[{\"memory\":{\"total\":1},\"processes\":[{\"pid\":1,\"type\":\"cuda\"}]}]}",
       "$.devices[0].processes[0].type: expected \"compute\", \"graphics\", \"mps\" or \"compute+graphics\", got \"cuda\""},
      {"{\"devices\":[{\"memory\":{\"total\":1},\"utilization\":{\"gpuPercent\":101}}]}",
       "$.devices[0].utilization.gpuPercent: expected an integer from 0 to 100, got 101"},
      {"{\"devices\":[{\"memory\":{\"total\":1},\"pciBusId\":\"0:1:2\"}]}",
       "$.devices[0].pciBusId: expected a PCI bus id like \"00000000:18:00.0\""},
      {"{\"devices\":[{\"memory\":{\"total\":1},\"name\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}]}",
       "$.devices[0].name: is 100 bytes long; NVML's buffer holds at most 95"},
      {"{\"devices\":[{\"memory\":{\"total\":1},\"weird key\":1}]}", "$.devices[0][\"weird key\"]: unknown key"},
      {"{\"devices\":[],\"errors\":[{\"function\":\"nvmlSystemGetDriverVersion\",\"device\":0,\"return\":\"UNKNOWN\"}]}",
       "$.errors[0].device: nvmlSystemGetDriverVersion does not act on a device"},
      {"{\"devices\":[],\"errors\":[{\"function\":\"nvmlShutdown\",\"return\":\"SUCCESS\"}]}",
       "$.errors[0].return: an injected error cannot be SUCCESS"},
      {"{\"devices\":[],\"errors\":[{\"function\":\"nvmlShutdown\",\"return\":\"NOT_A_CODE\"}]}",
       "$.errors[0].return: unknown NVML error \"NOT_A_CODE\""},
      {"{\"devices\":[],\"errors\":[{\"function\":\"nvmlShutdown\",\"return\":0}]}",
       "$.errors[0].return: expected an NVML error name or a non-zero integer code, got 0"},
      {"{\"devices\":[],\"errors\":[{\"function\":\"nvmlShutdown\",\"return\":\"UNKNOWN\",\"count\":0}]}",
       "$.errors[0].count: expected an integer from 1 to 18446744073709551615, got 0"},
      {"{\"devices\":[{\"memory\":{\"total\":1}}],\"timeline\":[{\"atMs\":0,\"ops\":[{\"op\":\"setProcess\",\"device\":0}]}]}",
       "$.timeline[0].ops[0]: missing required key \"pid\""},
      {"{\"devices\":[{\"memory\":{\"total\":1}}],\"timeline\":[{\"atMs\":0,\"ops\":[{\"op\":\"setDevice\",\"device\":0,"
       "\"processes\":[]}]}]}",
       "$.timeline[0].ops[0].processes: setDevice cannot replace processes"},
      {"{\"devices\":[{\"memory\":{\"total\":1}}],\"timeline\":[{\"atMs\":0,\"ops\":[{\"op\":\"loseDevice\",\"device\":3}]}]}",
       "$.timeline[0].ops[0].device: device index 3 is out of range (the scenario has 1 device)"},
      {"{\"devices\":[{\"memory\":{\"total\":10},\"migInstances\":[{\"uuid\":\"GPU-1\",\"gpuInstanceId\":1,\"memory\":{\"total\":1}}]}]}",
       "$.devices[0].migInstances[0].uuid: a MIG device's uuid starts with \"MIG-\", got \"GPU-1\""},
      {"{\"devices\":[{\"memory\":{\"total\":10},\"migInstances\":[{\"gpuInstanceId\":1,\"memory\":{\"total\":1}},"
       "{\"gpuInstanceId\":1,\"memory\":{\"total\":1}}]}]}",
       "$.devices[0].migInstances[1]: duplicate MIG instance 1/0 on device 0"},
      {"{\"devices\":[{\"memory\":{\"total\":10},\"migInstances\":[{\"gpuInstanceId\":1,\"memory\":{\"total\":4}},"
       "{\"gpuInstanceId\":2,\"memory\":{\"total\":7}}]}]}",
       "$.devices[0].migInstances[1].memory.total: the MIG instances' totals exceed device 0 (\"Mock GPU 0\")'s total 10 bytes"},
      {"{\"devices\":[{\"memory\":{\"total\":10},\"migInstances\":[{\"gpuInstanceId\":1,\"memory\":{\"total\":4}}],"
       "\"processes\":[{\"pid\":5,\"usedBytes\":5,\"gpuInstanceId\":1,\"computeInstanceId\":0}]}]}",
       "$.devices[0].migInstances[0].memory: MIG instance 1/0 on device 0 (\"Mock GPU 0\") is over-committed"},
      {"{\"devices\":[{\"memory\":{\"total\":10},\"migInstances\":[{\"gpuInstanceId\":1,\"memory\":{\"total\":4}}],"
       "\"processes\":[{\"pid\":5,\"gpuInstanceId\":9,\"computeInstanceId\":0}]}]}",
       "$.devices[0].processes[0]: pid 5 is in MIG instance 9/0, which device 0 (\"Mock GPU 0\") lacks"},
      {"{\"devices\":[{\"memory\":{\"total\":10},\"migInstances\":[null,null,null,null,null,null,null,null]}]}",
       "$.devices[0].migInstances: at most 7 MIG devices, got 8"},
      {"{\"devices\":[{\"memory\":{\"total\":10},\"migInstances\":[{\"memory\":{\"total\":4}}]}]}",
       "$.devices[0].migInstances[0]: missing required key \"gpuInstanceId\""},
      {"{\"devices\":[{\"memory\":{\"total\":1}}],\"timeline\":[{\"at\":0,\"ops\":[]}]}",
       "$.timeline[0].at: unknown key (expected one of: atMs, ops)"},
  };
  size_t i;
  unsigned int count;
  TMP_PATH(path, "edge.json");
  current_test = "validation edges";
  for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    nvmlReturn_t rc;
    write_file(path, cases[i].text);
    use_scenario(path, NULL);
    rc = p_nvmlInit_v2();
    if (!cases[i].expected) {
      CHECKF(rc == NVML_SUCCESS, "case %zu: nvmlInit_v2 returned %d: %s", i, rc, p_initError());
      if (rc == NVML_SUCCESS) p_nvmlShutdown();
      continue;
    }
    CHECKF(rc == NVML_ERROR(UNKNOWN), "case %zu: nvmlInit_v2 returned %d", i, rc);
    CHECKF(strstr(p_initError(), cases[i].expected) != NULL, "case %zu: expected \"%s\" in:\n    %s", i,
           cases[i].expected, p_initError());
    CHECKF(strchr(p_initError(), '\n') == NULL, "case %zu: init error is not one line", i);
    if (rc == NVML_SUCCESS) p_nvmlShutdown();
  }
  EXPECT_RC(p_nvmlDeviceGetCount_v2(&count), NVML_ERROR(UNINITIALIZED));

  /* Exact 64-bit integers, and escapes decoded to UTF-8. */
  write_file(path, "{\"devices\":[{\"name\":\"caf\\u00e9 \\ud83d\\ude80 \\\"q\\\"\",\"memory\":{\"total\":18446744073709551615,"
                   "\"reserved\":18446744073709551614}}]}");
  if (INIT_OK()) {
    nvmlMemory_v2_t memory2;
    char name[96];
    memset(&memory2, 0, sizeof memory2);
    memory2.version = nvmlMemory_v2;
    EXPECT_RC(p_nvmlDeviceGetMemoryInfo_v2(handle(0), &memory2), NVML_SUCCESS);
    EXPECT_U64(memory2.total, 18446744073709551615ULL);
    EXPECT_U64(memory2.reserved, 18446744073709551614ULL);
    EXPECT_U64(memory2.free, 1);
    EXPECT_RC(p_nvmlDeviceGetName(handle(0), name, sizeof name), NVML_SUCCESS);
    EXPECT_STR(name, "caf\xC3\xA9 \xF0\x9F\x9A\x80 \"q\"");
    EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
  }
}

/* Several threads calling at once while another appends ops: no crash, no torn state (run under TSan too). */
#define CALLERS 4
static atomic_int stop_callers;

static void *busy_caller(void *arg) {
  unsigned int count, i;
  (void)arg;
  while (!atomic_load(&stop_callers)) {
    if (p_nvmlDeviceGetCount_v2(&count) != NVML_SUCCESS) continue;
    for (i = 0; i < count; ++i) {
      nvmlDevice_t d;
      nvmlMemory_v2_t memory;
      unsigned int n = 0;
      nvmlProcessInfo_v2_t infos[64];
      if (p_nvmlDeviceGetHandleByIndex_v2(i, &d) != NVML_SUCCESS) continue;
      memory.version = nvmlMemory_v2;
      if (p_nvmlDeviceGetMemoryInfo_v2(d, &memory) == NVML_SUCCESS && memory.free + memory.used + memory.reserved != memory.total) {
        CHECKF(0, "free %llu + used %llu + reserved %llu != total %llu", memory.free, memory.used, memory.reserved,
               memory.total);
      }
      n = 64;
      p_nvmlDeviceGetComputeRunningProcesses_v2(d, &n, infos);
    }
  }
  return NULL;
}

static void test_concurrent_calls(void) {
  TMP_PATH(path, "busy.json");
  TMP_PATH(control, "busy.control");
  pthread_t threads[CALLERS];
  char line[200];
  int i;
  current_test = "concurrent calls";
  write_file(path, "{\"devices\":[{\"memory\":{\"total\":100000000}},{\"memory\":{\"total\":100000000}}]}");
  unlink(control);
  use_scenario(path, control);
  if (!INIT_OK()) return;
  atomic_store(&stop_callers, 0);
  for (i = 0; i < CALLERS; ++i) pthread_create(&threads[i], NULL, busy_caller, NULL);
  for (i = 0; i < 300; ++i) {
    snprintf(line, sizeof line, "{\"op\":\"setProcess\",\"device\":%d,\"pid\":%d,\"usedBytes\":%d}\n", i % 2, 100 + i % 40,
             1000 * (i % 7));
    append_text(control, line);
    if (i % 50 == 0) append_text(control, "{\"op\":\"loseDevice\",\"device\":1}\n{\"op\":\"recoverDevice\",\"device\":1}\n");
    if (i % 30 == 0) { /* nested init and shutdown from another thread while the callers run */
      EXPECT_RC(p_nvmlInit_v2(), NVML_SUCCESS);
      EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
    }
    if (i % 10 == 0) sleep_ms(1);
  }
  sleep_ms(20);
  atomic_store(&stop_callers, 1);
  for (i = 0; i < CALLERS; ++i) pthread_join(threads[i], NULL);
  EXPECT_STR(p_warnings(), "");
  EXPECT_RC(p_nvmlShutdown(), NVML_SUCCESS);
}

/* ---- Main --------------------------------------------------------------------------------------------- */

static void remove_tree(const char *dir) {
  char command[4200];
  snprintf(command, sizeof command, "rm -rf '%s'", dir);
  if (system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static const struct {
  const char *name;
  int number;
  const char *driver;
  int cuda;
  size_t v3stride;
} kEras[] = {
    {"418", 418000, "418.226.00", 10010, 24},       {"470", 470000, "470.256.02", 11040, 24},
    {"510", 510000, "510.108.03", 11060, 24},       {"535.54", 535054, "535.54.03", 12020, 32},
    {"535.98", 535098, "535.98", 12020, 24},        {"535.104", 535104, "535.104.05", 12020, 24},
    {"550", 550000, "550.54.15", 12040, 24},        {"580", 580000, "580.65.06", 13000, 24},
};

int main(int argc, char **argv) {
  const char *eraName = argc > 4 && strcmp(argv[3], "--era") == 0 ? argv[4] : "580";
  size_t e, eraIndex = sizeof kEras / sizeof kEras[0];
  if (argc < 3) {
    fprintf(stderr, "usage: %s <libnvidia-ml.so.1> <scenarios dir> [--era <era>]\n", argv[0]);
    return 2;
  }
  for (e = 0; e < sizeof kEras / sizeof kEras[0]; ++e) {
    if (strcmp(kEras[e].name, eraName) == 0) eraIndex = e;
  }
  if (eraIndex == sizeof kEras / sizeof kEras[0]) {
    fprintf(stderr, "unknown era %s\n", eraName);
    return 2;
  }
  scenario_dir = argv[2];
  lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
    return 2;
  }
  /* dlsym returns an object pointer; copy its bits into the function pointer (ISO C has no cast). */
#define LOAD_SYMBOL(pointer, name)            \
  do {                                        \
    void *symbol_ = dlsym(lib, name);         \
    memcpy(&(pointer), &symbol_, sizeof symbol_); \
  } while (0)
#define VG_TEST_LOAD(requirement, name, params, args) LOAD_SYMBOL(p_##name, #name);
  VG_NVML_FUNCTIONS(VG_TEST_LOAD)
  VG_NVML_CLIENT_FUNCTIONS(VG_TEST_LOAD)
#undef VG_TEST_LOAD
  LOAD_SYMBOL(p_nvmlErrorString, "nvmlErrorString");
  LOAD_SYMBOL(p_initError, "vramguardMockInitError");
  LOAD_SYMBOL(p_warnings, "vramguardMockWarnings");
  LOAD_SYMBOL(p_isMock, "vramguardMockIsMock");
  LOAD_SYMBOL(p_mockEra, "vramguardMockEra");
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 2;
  }

  test_symbols(kEras[eraIndex].number);
  if (failures == 0 && p_mockEra) {
    current_test = "era name";
    EXPECT_STR(p_mockEra(), eraName);
  }
  if (failures == 0) {
    test_uninitialized();
    test_era(kEras[eraIndex].driver, kEras[eraIndex].cuda, kEras[eraIndex].v3stride);
    test_era_mismatch(eraName);
    if (kEras[eraIndex].number >= 470000) test_mig();
    if (kEras[eraIndex].number == 580000) {
      test_init_failures();
      test_refcount_and_reread();
      test_current_era();
      test_client_api();
      test_error_injection();
      test_lose_recover();
      test_control_file();
      test_control_paths();
      test_timeline();
      test_follow_pid();
      test_stats_by_thread();
      test_validation_edges();
      test_concurrent_calls();
    }
  }

  remove_tree(tmp_dir);
  dlclose(lib);
  printf("mock_selftest (era %s): %d checks, %d failed\n", eraName, checks, failures);
  return failures == 0 ? 0 : 1;
}

/*
 * The subset of NVIDIA's Management Library (NVML) that vramguard uses, declared from the public NVML
 * API reference. vramguard never includes NVIDIA's own header and never links libnvidia-ml: it opens
 * libnvidia-ml.so.1 at run time and looks every function up by name (see nvml_loader.h).
 *
 * Plain C so that the mock library and the benchmark's raw C loop share exactly these declarations.
 * Struct layouts matter (the ABI is the contract); sizes are checked by static assertions at the end.
 */
#ifndef VRAMGUARD_NVML_API_H
#define VRAMGUARD_NVML_API_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int nvmlReturn_t;
typedef struct nvmlDevice_opaque *nvmlDevice_t;

/* Return codes (nvmlReturn_t). */
#define VG_NVML_RETURN_CODES(X)            \
  X(SUCCESS, 0)                            \
  X(UNINITIALIZED, 1)                      \
  X(INVALID_ARGUMENT, 2)                   \
  X(NOT_SUPPORTED, 3)                      \
  X(NO_PERMISSION, 4)                      \
  X(ALREADY_INITIALIZED, 5)                \
  X(NOT_FOUND, 6)                          \
  X(INSUFFICIENT_SIZE, 7)                  \
  X(INSUFFICIENT_POWER, 8)                 \
  X(DRIVER_NOT_LOADED, 9)                  \
  X(TIMEOUT, 10)                           \
  X(IRQ_ISSUE, 11)                         \
  X(LIBRARY_NOT_FOUND, 12)                 \
  X(FUNCTION_NOT_FOUND, 13)                \
  X(CORRUPTED_INFOROM, 14)                 \
  X(GPU_IS_LOST, 15)                       \
  X(RESET_REQUIRED, 16)                    \
  X(OPERATING_SYSTEM, 17)                  \
  X(LIB_RM_VERSION_MISMATCH, 18)           \
  X(IN_USE, 19)                            \
  X(MEMORY, 20)                            \
  X(NO_DATA, 21)                           \
  X(VGPU_ECC_NOT_ENABLED, 22)              \
  X(INSUFFICIENT_RESOURCES, 23)            \
  X(FREQ_NOT_SUPPORTED, 24)                \
  X(ARGUMENT_VERSION_MISMATCH, 25)         \
  X(DEPRECATED, 26)                        \
  X(NOT_READY, 27)                         \
  X(GPU_NOT_FOUND, 28)                     \
  X(INVALID_STATE, 29)                     \
  X(UNKNOWN, 999)

#define VG_NVML_DECLARE_RETURN(name, value) NVML_##name = value,
enum { VG_NVML_RETURN_CODES(VG_NVML_DECLARE_RETURN) };
#undef VG_NVML_DECLARE_RETURN
/* NVML names success NVML_SUCCESS and the failures NVML_ERROR_*; keep both spellings usable. */
#define NVML_ERROR(name) NVML_##name

/* Buffer sizes from the reference (the _V2 sizes are the larger, current ones). */
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE 80
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16

/* usedGpuMemory reads all ones when the driver cannot attribute memory (e.g. Windows WDDM, some vGPU). */
#define NVML_VALUE_NOT_AVAILABLE (~0ULL)

/* nvmlTemperatureSensors_t */
#define NVML_TEMPERATURE_GPU 0

/* nvmlClockType_t */
#define NVML_CLOCK_GRAPHICS 0
#define NVML_CLOCK_SM 1
#define NVML_CLOCK_MEM 2
#define NVML_CLOCK_VIDEO 3

typedef struct {
  char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;    /* 16-bit device id << 16 | 16-bit vendor id */
  unsigned int pciSubSystemId;
  char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

/* nvmlDeviceGetMemoryInfo: used includes the memory the driver reserves. */
typedef struct {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t;

/* nvmlDeviceGetMemoryInfo_v2: the caller sets version; reserved is reported apart from used. */
typedef struct {
  unsigned int version;
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_v2_t;

/* Struct version words are sizeof(struct) | (version << 24). */
#define VG_NVML_STRUCT_VERSION(type, ver) ((unsigned int)(sizeof(type) | ((ver) << 24U)))
#define nvmlMemory_v2 VG_NVML_STRUCT_VERSION(nvmlMemory_v2_t, 2)

typedef struct {
  unsigned int gpu;    /* percent of the sample period a kernel ran */
  unsigned int memory; /* percent of the sample period device memory was read or written */
} nvmlUtilization_t;

/* Records written by nvmlDevice{Compute,Graphics,MPSCompute}RunningProcesses (no suffix): 16 bytes. */
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

/* Records written by the _v2 and _v3 entry points: 24 bytes. */
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;     /* 0xFFFFFFFF when not in MIG mode */
  unsigned int computeInstanceId; /* 0xFFFFFFFF when not in MIG mode */
} nvmlProcessInfo_v2_t;

/* What drivers 535.43 to 535.86 wrote from the _v3 entry points: 32 bytes, an extra 8-byte field
 * (confidential-compute protected memory) at the end. Readers must step by this size on those drivers. */
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
  unsigned long long usedGpuCcProtectedMemory;
} vgNvmlProcessInfo_535_t;

typedef struct {
  unsigned int pid;
  unsigned long long timeStamp; /* CPU timestamp, microseconds */
  unsigned int smUtil;
  unsigned int memUtil;
  unsigned int encUtil;
  unsigned int decUtil;
} nvmlProcessUtilizationSample_t;

/*
 * Every function vramguard calls. X(requirement, name, parameter list, argument names)
 *   requirement: REQUIRED (the load fails without it) or OPTIONAL (absent becomes a capability flag).
 */
#define VG_NVML_FUNCTIONS(X)                                                                              \
  X(REQUIRED, nvmlInit_v2, (void), ())                                                                    \
  X(REQUIRED, nvmlShutdown, (void), ())                                                                   \
  X(REQUIRED, nvmlSystemGetDriverVersion, (char *version, unsigned int length), (version, length))        \
  X(OPTIONAL, nvmlSystemGetNVMLVersion, (char *version, unsigned int length), (version, length))          \
  X(OPTIONAL, nvmlSystemGetCudaDriverVersion_v2, (int *cudaDriverVersion), (cudaDriverVersion))           \
  X(OPTIONAL, nvmlSystemGetCudaDriverVersion, (int *cudaDriverVersion), (cudaDriverVersion))              \
  X(REQUIRED, nvmlDeviceGetCount_v2, (unsigned int *deviceCount), (deviceCount))                          \
  X(REQUIRED, nvmlDeviceGetHandleByIndex_v2, (unsigned int index, nvmlDevice_t *device), (index, device)) \
  X(OPTIONAL, nvmlDeviceGetUUID, (nvmlDevice_t device, char *uuid, unsigned int length),                  \
    (device, uuid, length))                                                                               \
  X(OPTIONAL, nvmlDeviceGetName, (nvmlDevice_t device, char *name, unsigned int length),                  \
    (device, name, length))                                                                               \
  X(OPTIONAL, nvmlDeviceGetPciInfo_v3, (nvmlDevice_t device, nvmlPciInfo_t *pci), (device, pci))          \
  X(REQUIRED, nvmlDeviceGetMemoryInfo, (nvmlDevice_t device, nvmlMemory_t *memory), (device, memory))     \
  X(OPTIONAL, nvmlDeviceGetMemoryInfo_v2, (nvmlDevice_t device, nvmlMemory_v2_t *memory), (device, memory)) \
  X(OPTIONAL, nvmlDeviceGetUtilizationRates, (nvmlDevice_t device, nvmlUtilization_t *utilization),       \
    (device, utilization))                                                                                \
  X(OPTIONAL, nvmlDeviceGetTemperature, (nvmlDevice_t device, int sensorType, unsigned int *temp),        \
    (device, sensorType, temp))                                                                           \
  X(OPTIONAL, nvmlDeviceGetPowerUsage, (nvmlDevice_t device, unsigned int *milliwatts), (device, milliwatts)) \
  X(OPTIONAL, nvmlDeviceGetEnforcedPowerLimit, (nvmlDevice_t device, unsigned int *milliwatts),           \
    (device, milliwatts))                                                                                 \
  X(OPTIONAL, nvmlDeviceGetClockInfo, (nvmlDevice_t device, int clockType, unsigned int *mhz),            \
    (device, clockType, mhz))                                                                             \
  X(OPTIONAL, nvmlDeviceGetComputeRunningProcesses_v3,                                                    \
    (nvmlDevice_t device, unsigned int *infoCount, void *infos), (device, infoCount, infos))              \
  X(OPTIONAL, nvmlDeviceGetComputeRunningProcesses_v2,                                                    \
    (nvmlDevice_t device, unsigned int *infoCount, void *infos), (device, infoCount, infos))              \
  X(OPTIONAL, nvmlDeviceGetComputeRunningProcesses,                                                       \
    (nvmlDevice_t device, unsigned int *infoCount, void *infos), (device, infoCount, infos))              \
  X(OPTIONAL, nvmlDeviceGetGraphicsRunningProcesses_v3,                                                   \
    (nvmlDevice_t device, unsigned int *infoCount, void *infos), (device, infoCount, infos))              \
  X(OPTIONAL, nvmlDeviceGetGraphicsRunningProcesses_v2,                                                   \
    (nvmlDevice_t device, unsigned int *infoCount, void *infos), (device, infoCount, infos))              \
  X(OPTIONAL, nvmlDeviceGetGraphicsRunningProcesses,                                                      \
    (nvmlDevice_t device, unsigned int *infoCount, void *infos), (device, infoCount, infos))              \
  X(OPTIONAL, nvmlDeviceGetMPSComputeRunningProcesses_v3,                                                 \
    (nvmlDevice_t device, unsigned int *infoCount, void *infos), (device, infoCount, infos))              \
  X(OPTIONAL, nvmlDeviceGetMPSComputeRunningProcesses_v2,                                                 \
    (nvmlDevice_t device, unsigned int *infoCount, void *infos), (device, infoCount, infos))              \
  X(OPTIONAL, nvmlDeviceGetMPSComputeRunningProcesses,                                                    \
    (nvmlDevice_t device, unsigned int *infoCount, void *infos), (device, infoCount, infos))              \
  X(OPTIONAL, nvmlDeviceGetProcessUtilization,                                                            \
    (nvmlDevice_t device, nvmlProcessUtilizationSample_t *utilization, unsigned int *processSamplesCount, \
     unsigned long long lastSeenTimeStamp),                                                               \
    (device, utilization, processSamplesCount, lastSeenTimeStamp))

/* The process-list entry points take void * above because one name serves several record layouts
 * (v1, v2/v3, 535's 32-byte v3): the caller picks the stride. Each points at an array of records. */

/* Function pointer types: vg_fn_<name>. */
#define VG_NVML_DECLARE_FN_TYPE(req, name, params, args) typedef nvmlReturn_t (*vg_fn_##name) params;
VG_NVML_FUNCTIONS(VG_NVML_DECLARE_FN_TYPE)
#undef VG_NVML_DECLARE_FN_TYPE

/* nvmlErrorString returns a string, not a code, so it stands outside the list (optional). */
typedef const char *(*vg_fn_nvmlErrorString)(nvmlReturn_t result);

#ifdef __cplusplus
} /* extern "C" */
#endif

/* ABI checks: these sizes are what the driver reads and writes. */
#ifdef __cplusplus
#define VG_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define VG_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif
VG_STATIC_ASSERT(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t is 68 bytes");
VG_STATIC_ASSERT(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t is 24 bytes");
VG_STATIC_ASSERT(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t is 40 bytes");
VG_STATIC_ASSERT(nvmlMemory_v2 == 0x02000028U, "nvmlMemory_v2 version word is 0x02000028");
VG_STATIC_ASSERT(sizeof(nvmlProcessInfo_v1_t) == 16, "v1 process records are 16 bytes");
VG_STATIC_ASSERT(sizeof(nvmlProcessInfo_v2_t) == 24, "v2/v3 process records are 24 bytes");
VG_STATIC_ASSERT(sizeof(vgNvmlProcessInfo_535_t) == 32, "535.43-535.86 _v3 records are 32 bytes");
VG_STATIC_ASSERT(sizeof(nvmlProcessUtilizationSample_t) == 32, "process utilization samples are 32 bytes");
VG_STATIC_ASSERT(offsetof(nvmlMemory_v2_t, total) == 8, "nvmlMemory_v2_t.total follows the padded version");
VG_STATIC_ASSERT(offsetof(nvmlProcessUtilizationSample_t, timeStamp) == 8, "timeStamp is 8-aligned");

#endif /* VRAMGUARD_NVML_API_H */

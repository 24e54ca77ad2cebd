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
  X(VGPU_ECC_NOT_SUPPORTED, 22)            \
  X(INSUFFICIENT_RESOURCES, 23)            \
  X(FREQ_NOT_SUPPORTED, 24)                \
  X(ARGUMENT_VERSION_MISMATCH, 25)         \
  X(DEPRECATED, 26)                        \
  X(NOT_READY, 27)                         \
  X(GPU_NOT_FOUND, 28)                     \
  X(INVALID_STATE, 29)                     \
  X(RESET_TYPE_NOT_SUPPORTED, 30)          \
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

/* nvmlDeviceGetRunningProcessDetailList (drivers 535.104.05 on): one versioned list struct, the caller's
 * array of 32-byte detail records, and a mode choosing the list (compute, graphics, MPS). */
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
  unsigned long long usedGpuCcProtectedMemory;
} nvmlProcessDetail_v1_t;

typedef struct {
  unsigned int version;             /* nvmlProcessDetailList_v1 */
  unsigned int mode;                /* NVML_PROCESS_MODE_* */
  unsigned int numProcArrayEntries; /* in: room in procArray; out: entries written (or needed) */
  nvmlProcessDetail_v1_t *procArray;
} nvmlProcessDetailList_v1_t;
#define nvmlProcessDetailList_v1 VG_NVML_STRUCT_VERSION(nvmlProcessDetailList_v1_t, 1)
#define NVML_PROCESS_MODE_COMPUTE 0
#define NVML_PROCESS_MODE_GRAPHICS 1
#define NVML_PROCESS_MODE_MPS 2

/* nvmlDeviceGetProcessesUtilizationInfo (drivers 550.40.07 on): the element struct puts the timestamp first
 * and adds JPEG and OFA utilization; it is not the old nvmlProcessUtilizationSample_t. */
typedef struct {
  unsigned long long timeStamp; /* CPU timestamp, microseconds */
  unsigned int pid;
  unsigned int smUtil;
  unsigned int memUtil;
  unsigned int encUtil;
  unsigned int decUtil;
  unsigned int jpgUtil;
  unsigned int ofaUtil;
} nvmlProcessUtilizationInfo_v1_t;

typedef struct {
  unsigned int version;             /* nvmlProcessesUtilizationInfo_v1 */
  unsigned int processSamplesCount; /* in: room in procUtilArray; out: samples written (or needed) */
  unsigned long long lastSeenTimeStamp;
  nvmlProcessUtilizationInfo_v1_t *procUtilArray;
} nvmlProcessesUtilizationInfo_v1_t;
#define nvmlProcessesUtilizationInfo_v1 VG_NVML_STRUCT_VERSION(nvmlProcessesUtilizationInfo_v1_t, 1)

/* nvmlDeviceGetBAR1MemoryInfo */
typedef struct {
  unsigned long long bar1Total;
  unsigned long long bar1Free;
  unsigned long long bar1Used;
} nvmlBAR1Memory_t;

/* nvmlDeviceGetConfComputeMemSizeInfo (drivers 535 on) */
typedef struct {
  unsigned long long protectedMemSizeKib;
  unsigned long long unprotectedMemSizeKib;
} nvmlConfComputeMemSizeInfo_t;

/* nvmlDeviceGetFieldValues: one request/answer per field (the value is a union of 8 bytes). */
typedef struct {
  unsigned int fieldId;
  unsigned int scopeId;
  long long timestamp;
  long long latencyUsec;
  unsigned int valueType;
  nvmlReturn_t nvmlReturn;
  unsigned long long value;
} nvmlFieldValue_t;

/* Events (nvmlEventSetCreate, nvmlDeviceRegisterEvents, nvmlEventSetWait_v2). */
typedef struct nvmlEventSet_opaque *nvmlEventSet_t;
typedef struct {
  nvmlDevice_t device;
  unsigned long long eventType;
  unsigned long long eventData; /* the XID for nvmlEventTypeXidCriticalError */
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlEventData_t;
#define nvmlEventTypeSingleBitEccError 0x0000000000000001ULL
#define nvmlEventTypeDoubleBitEccError 0x0000000000000002ULL
#define nvmlEventTypePState 0x0000000000000004ULL
#define nvmlEventTypeXidCriticalError 0x0000000000000008ULL
#define nvmlEventTypeClock 0x0000000000000010ULL
#define nvmlEventTypeNone 0x0000000000000000ULL

/* nvmlDeviceGetMigMode. A MIG device handle (nvmlDeviceGetMigDeviceHandleByIndex on an enabled parent)
 * stands for one compute instance: memory, processes and its UUID ("MIG-...") are read through it. */
#define NVML_DEVICE_MIG_DISABLE 0
#define NVML_DEVICE_MIG_ENABLE 1

/* nvmlInitWithFlags */
#define NVML_INIT_FLAG_NO_GPUS 1
#define NVML_INIT_FLAG_NO_ATTACH 2

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
    (device, utilization, processSamplesCount, lastSeenTimeStamp))                                       \
  X(OPTIONAL, nvmlDeviceGetRunningProcessDetailList, (nvmlDevice_t device, nvmlProcessDetailList_v1_t *plist), \
    (device, plist))                                                                                      \
  X(OPTIONAL, nvmlDeviceGetProcessesUtilizationInfo,                                                      \
    (nvmlDevice_t device, nvmlProcessesUtilizationInfo_v1_t *procesesUtilInfo), (device, procesesUtilInfo)) \
  X(OPTIONAL, nvmlDeviceGetConfComputeMemSizeInfo, (nvmlDevice_t device, nvmlConfComputeMemSizeInfo_t *info), \
    (device, info))                                                                                       \
  X(OPTIONAL, nvmlDeviceGetSupportedEventTypes, (nvmlDevice_t device, unsigned long long *eventTypes),         \
    (device, eventTypes))                                                                                     \
  X(OPTIONAL, nvmlEventSetCreate, (nvmlEventSet_t *set), (set))                                                \
  X(OPTIONAL, nvmlDeviceRegisterEvents, (nvmlDevice_t device, unsigned long long eventTypes, nvmlEventSet_t set), \
    (device, eventTypes, set))                                                                                \
  X(OPTIONAL, nvmlEventSetWait_v2, (nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms),        \
    (set, data, timeoutms))                                                                                   \
  X(OPTIONAL, nvmlEventSetFree, (nvmlEventSet_t set), (set))                                                 \
  X(OPTIONAL, nvmlDeviceGetMigMode, (nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode), \
    (device, currentMode, pendingMode))                                                                       \
  X(OPTIONAL, nvmlDeviceGetMaxMigDeviceCount, (nvmlDevice_t device, unsigned int *count), (device, count))   \
  X(OPTIONAL, nvmlDeviceGetMigDeviceHandleByIndex,                                                          \
    (nvmlDevice_t device, unsigned int index, nvmlDevice_t *migDevice), (device, index, migDevice))          \
  X(OPTIONAL, nvmlDeviceGetGpuInstanceId, (nvmlDevice_t device, unsigned int *id), (device, id))             \
  X(OPTIONAL, nvmlDeviceGetComputeInstanceId, (nvmlDevice_t device, unsigned int *id), (device, id))

/*
 * Functions vramguard itself never calls but the mock library serves, so that other NVML clients
 * (NVIDIA's Python binding and the tools built on it, nvtop) run on it too. Same columns as above.
 */
#define VG_NVML_CLIENT_FUNCTIONS(X)                                                                          \
  X(CLIENT, nvmlInit, (void), ())                                                                            \
  X(CLIENT, nvmlInitWithFlags, (unsigned int flags), (flags))                                                \
  X(CLIENT, nvmlDeviceGetCount, (unsigned int *deviceCount), (deviceCount))                                  \
  X(CLIENT, nvmlDeviceGetHandleByIndex, (unsigned int index, nvmlDevice_t *device), (index, device))         \
  X(CLIENT, nvmlDeviceGetHandleByUUID, (const char *uuid, nvmlDevice_t *device), (uuid, device))             \
  X(CLIENT, nvmlDeviceGetHandleByPciBusId_v2, (const char *pciBusId, nvmlDevice_t *device), (pciBusId, device)) \
  X(CLIENT, nvmlDeviceGetHandleByPciBusId, (const char *pciBusId, nvmlDevice_t *device), (pciBusId, device)) \
  X(CLIENT, nvmlDeviceGetIndex, (nvmlDevice_t device, unsigned int *index), (device, index))                 \
  X(CLIENT, nvmlDeviceGetMinorNumber, (nvmlDevice_t device, unsigned int *minorNumber), (device, minorNumber)) \
  X(CLIENT, nvmlDeviceGetSerial, (nvmlDevice_t device, char *serial, unsigned int length), (device, serial, length)) \
  X(CLIENT, nvmlDeviceGetArchitecture, (nvmlDevice_t device, unsigned int *arch), (device, arch))            \
  X(CLIENT, nvmlDeviceGetCudaComputeCapability, (nvmlDevice_t device, int *major, int *minor),               \
    (device, major, minor))                                                                                   \
  X(CLIENT, nvmlDeviceGetFanSpeed, (nvmlDevice_t device, unsigned int *speed), (device, speed))              \
  X(CLIENT, nvmlDeviceGetFanSpeed_v2, (nvmlDevice_t device, unsigned int fan, unsigned int *speed),          \
    (device, fan, speed))                                                                                     \
  X(CLIENT, nvmlDeviceGetNumFans, (nvmlDevice_t device, unsigned int *numFans), (device, numFans))           \
  X(CLIENT, nvmlDeviceGetPerformanceState, (nvmlDevice_t device, int *pState), (device, pState))             \
  X(CLIENT, nvmlDeviceGetPowerState, (nvmlDevice_t device, int *pState), (device, pState))                   \
  X(CLIENT, nvmlDeviceGetPowerManagementLimit, (nvmlDevice_t device, unsigned int *limit), (device, limit))  \
  X(CLIENT, nvmlDeviceGetBAR1MemoryInfo, (nvmlDevice_t device, nvmlBAR1Memory_t *bar1Memory), (device, bar1Memory)) \
  X(CLIENT, nvmlDeviceGetComputeMode, (nvmlDevice_t device, int *mode), (device, mode))                      \
  X(CLIENT, nvmlDeviceGetPersistenceMode, (nvmlDevice_t device, int *mode), (device, mode))                  \
  X(CLIENT, nvmlDeviceGetDisplayActive, (nvmlDevice_t device, int *isActive), (device, isActive))            \
  X(CLIENT, nvmlDeviceGetDisplayMode, (nvmlDevice_t device, int *display), (device, display))                \
  X(CLIENT, nvmlDeviceGetEncoderUtilization,                                                                 \
    (nvmlDevice_t device, unsigned int *utilization, unsigned int *samplingPeriodUs),                        \
    (device, utilization, samplingPeriodUs))                                                                  \
  X(CLIENT, nvmlDeviceGetDecoderUtilization,                                                                 \
    (nvmlDevice_t device, unsigned int *utilization, unsigned int *samplingPeriodUs),                        \
    (device, utilization, samplingPeriodUs))                                                                  \
  X(CLIENT, nvmlDeviceGetMaxClockInfo, (nvmlDevice_t device, int clockType, unsigned int *mhz),              \
    (device, clockType, mhz))                                                                                 \
  X(CLIENT, nvmlDeviceGetTemperatureThreshold, (nvmlDevice_t device, int thresholdType, unsigned int *temp),  \
    (device, thresholdType, temp))                                                                            \
  X(CLIENT, nvmlDeviceGetMaxPcieLinkGeneration, (nvmlDevice_t device, unsigned int *gen), (device, gen))     \
  X(CLIENT, nvmlDeviceGetMaxPcieLinkWidth, (nvmlDevice_t device, unsigned int *width), (device, width))      \
  X(CLIENT, nvmlDeviceGetCurrPcieLinkGeneration, (nvmlDevice_t device, unsigned int *gen), (device, gen))    \
  X(CLIENT, nvmlDeviceGetCurrPcieLinkWidth, (nvmlDevice_t device, unsigned int *width), (device, width))     \
  X(CLIENT, nvmlDeviceGetPcieThroughput, (nvmlDevice_t device, int counter, unsigned int *value),            \
    (device, counter, value))                                                                                 \
  X(CLIENT, nvmlDeviceGetTotalEccErrors,                                                                     \
    (nvmlDevice_t device, int errorType, int counterType, unsigned long long *eccCounts),                   \
    (device, errorType, counterType, eccCounts))                                                              \
  X(CLIENT, nvmlDeviceGetDriverModel, (nvmlDevice_t device, int *current, int *pending),                     \
    (device, current, pending))                                                                               \
  X(CLIENT, nvmlDeviceGetFieldValues, (nvmlDevice_t device, int valuesCount, nvmlFieldValue_t *values),      \
    (device, valuesCount, values))                                                                            \
  X(CLIENT, nvmlDeviceIsMigDeviceHandle, (nvmlDevice_t device, unsigned int *isMigDevice), (device, isMigDevice)) \
  X(CLIENT, nvmlDeviceGetDeviceHandleFromMigDeviceHandle, (nvmlDevice_t migDevice, nvmlDevice_t *device),    \
    (migDevice, device))                                                                                      \
  X(CLIENT, nvmlSystemGetProcessName, (unsigned int pid, char *name, unsigned int length), (pid, name, length))

/* The process-list entry points take void * above because one name serves several record layouts
 * (v1, v2/v3, 535's 32-byte v3): the caller picks the stride. Each points at an array of records. */

/* Function pointer types: vg_fn_<name>. */
#define VG_NVML_DECLARE_FN_TYPE(req, name, params, args) typedef nvmlReturn_t (*vg_fn_##name) params;
VG_NVML_FUNCTIONS(VG_NVML_DECLARE_FN_TYPE)
VG_NVML_CLIENT_FUNCTIONS(VG_NVML_DECLARE_FN_TYPE)
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
VG_STATIC_ASSERT(sizeof(nvmlProcessDetail_v1_t) == 32, "process detail records are 32 bytes");
VG_STATIC_ASSERT(nvmlProcessDetailList_v1 == 0x01000018U, "nvmlProcessDetailList_v1 version word is 0x01000018");
VG_STATIC_ASSERT(sizeof(nvmlProcessUtilizationInfo_v1_t) == 40, "process utilization info records are 40 bytes");
VG_STATIC_ASSERT(nvmlProcessesUtilizationInfo_v1 == 0x01000018U, "nvmlProcessesUtilizationInfo_v1 is 0x01000018");
VG_STATIC_ASSERT(offsetof(nvmlProcessUtilizationInfo_v1_t, pid) == 8, "the timestamp comes first in the v1 info");
VG_STATIC_ASSERT(sizeof(nvmlBAR1Memory_t) == 24, "nvmlBAR1Memory_t is 24 bytes");
VG_STATIC_ASSERT(sizeof(nvmlFieldValue_t) == 40, "nvmlFieldValue_t is 40 bytes");
VG_STATIC_ASSERT(offsetof(nvmlFieldValue_t, nvmlReturn) == 28, "nvmlFieldValue_t.nvmlReturn at 28");
VG_STATIC_ASSERT(sizeof(nvmlEventData_t) == 32, "nvmlEventData_t is 32 bytes");

#endif /* VRAMGUARD_NVML_API_H */

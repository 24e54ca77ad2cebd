"""What NVIDIA's Python binding (nvidia-ml-py) reads, for bench/gpu/check.mjs to compare with vramguard.

    python3 bench/gpu/pynvml_read.py [timing passes]
    python3 bench/gpu/pynvml_read.py --process-utilization PID

Prints one JSON object: the devices' fields (the same set vramguard reads), their compute processes,
and the median time of one full pass over every device (seconds), measured in this process; or, with
--process-utilization, the highest SM share among the driver's samples for PID on GPU 0.
"""
import json
import statistics
import sys
import time

import pynvml


def read_device(index):
    errors = {}

    def guarded(fn, *args):
        try:
            return fn(*args)
        except pynvml.NVMLError as error:  # a reading the GPU cannot give: null, as vramguard reports it
            errors[fn.__name__] = str(error)
            return None

    h = pynvml.nvmlDeviceGetHandleByIndex(index)
    memory = guarded(pynvml.nvmlDeviceGetMemoryInfo, h, pynvml.nvmlMemory_v2)
    util = guarded(pynvml.nvmlDeviceGetUtilizationRates, h)
    pci = guarded(pynvml.nvmlDeviceGetPciInfo_v3, h)
    procs = guarded(pynvml.nvmlDeviceGetComputeRunningProcesses, h)
    value = lambda v, attr: getattr(v, attr) if v is not None else None
    text = lambda v: v.decode() if isinstance(v, bytes) else (v if isinstance(v, str) else None)
    return {
        "index": index,
        "uuid": text(guarded(pynvml.nvmlDeviceGetUUID, h)),
        "name": text(guarded(pynvml.nvmlDeviceGetName, h)),
        "pciBusId": text(value(pci, "busId")),
        "memoryTotalBytes": value(memory, "total"),
        "memoryUsedBytes": value(memory, "used"),
        "memoryFreeBytes": value(memory, "free"),
        "memoryReservedBytes": value(memory, "reserved"),
        "gpuUtilizationPercent": value(util, "gpu"),
        "memoryUtilizationPercent": value(util, "memory"),
        "temperatureCelsius": guarded(pynvml.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU),
        "powerUsageMilliwatts": guarded(pynvml.nvmlDeviceGetPowerUsage, h),
        "powerLimitMilliwatts": guarded(pynvml.nvmlDeviceGetEnforcedPowerLimit, h),
        "smClockMhz": guarded(pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_SM),
        "memoryClockMhz": guarded(pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_MEM),
        "processes": [{"pid": p.pid, "usedBytes": p.usedGpuMemory} for p in procs or []],
        "errors": errors,
    }


def process_utilization(pid):
    """The highest SM share the driver's samples give `pid` on GPU 0 (lastSeen 0: every sample it keeps)."""
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    try:
        samples = [s for s in pynvml.nvmlDeviceGetProcessUtilization(h, 0) if s.pid == pid]
    except pynvml.NVMLError as error:
        return {"error": str(error)}
    if not samples:
        return {"error": "no sample for pid %d" % pid}
    return {"smPercent": max(s.smUtil for s in samples), "samples": len(samples)}


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--process-utilization":
        pynvml.nvmlInit()
        try:
            print(json.dumps(process_utilization(int(sys.argv[2]))))
        finally:
            pynvml.nvmlShutdown()
        return
    passes = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    pynvml.nvmlInit()
    try:
        count = pynvml.nvmlDeviceGetCount()
        devices = [read_device(i) for i in range(count)]
        durations = []
        for _ in range(passes):
            started = time.perf_counter()
            for i in range(count):
                read_device(i)
            durations.append(time.perf_counter() - started)
        driver = pynvml.nvmlSystemGetDriverVersion()
        try:
            cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        except pynvml.NVMLError:
            cuda = None
        print(json.dumps({
            "driverVersion": driver.decode() if isinstance(driver, bytes) else driver,
            "cudaDriverVersion": cuda,
            "devices": devices,
            "passMedianSeconds": statistics.median(durations),
            "passes": passes,
        }))
    finally:
        pynvml.nvmlShutdown()


if __name__ == "__main__":
    main()

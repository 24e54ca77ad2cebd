import { checkEra } from './era-check';

checkEra('470', { driverVersion: '470.256.02', cudaDriverVersion: '11.4', processRecordLayout: 'v2', memoryInfoVersion: 1, instanceIds: true, absent: ['nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetMemoryInfo_v2', 'nvmlDeviceGetConfComputeMemSizeInfo', 'nvmlDeviceGetRunningProcessDetailList', 'nvmlDeviceGetProcessesUtilizationInfo'], present: ['nvmlDeviceGetMigMode', 'nvmlDeviceGetMigDeviceHandleByIndex', 'nvmlDeviceGetComputeRunningProcesses_v2', 'nvmlSystemGetCudaDriverVersion_v2'] });

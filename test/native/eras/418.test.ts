import { checkEra } from './era-check';

checkEra('418', { driverVersion: '418.226.00', cudaDriverVersion: '10.1', processRecordLayout: 'v1', memoryInfoVersion: 1, instanceIds: false, absent: ['nvmlDeviceGetComputeRunningProcesses_v2', 'nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetMemoryInfo_v2', 'nvmlSystemGetCudaDriverVersion_v2', 'nvmlDeviceGetConfComputeMemSizeInfo', 'nvmlDeviceGetRunningProcessDetailList', 'nvmlDeviceGetProcessesUtilizationInfo', 'nvmlDeviceGetMigMode', 'nvmlDeviceGetMigDeviceHandleByIndex'], present: ['nvmlDeviceGetComputeRunningProcesses'] });

import { checkEra } from './era-check';

checkEra('535.98', { driverVersion: '535.98', cudaDriverVersion: '12.2', processRecordLayout: 'v2', memoryInfoVersion: 2, instanceIds: true, absent: ['nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetRunningProcessDetailList', 'nvmlDeviceGetProcessesUtilizationInfo'], present: ['nvmlDeviceGetMigMode', 'nvmlDeviceGetMigDeviceHandleByIndex', 'nvmlDeviceGetComputeRunningProcesses_v2', 'nvmlDeviceGetConfComputeMemSizeInfo'] });

import { checkEra } from './era-check';

checkEra('510', { driverVersion: '510.108.03', cudaDriverVersion: '11.6', processRecordLayout: 'v3', memoryInfoVersion: 2, instanceIds: true, absent: ['nvmlDeviceGetConfComputeMemSizeInfo', 'nvmlDeviceGetRunningProcessDetailList', 'nvmlDeviceGetProcessesUtilizationInfo'], present: ['nvmlDeviceGetMigMode', 'nvmlDeviceGetMigDeviceHandleByIndex', 'nvmlDeviceGetComputeRunningProcesses_v2', 'nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetMemoryInfo_v2'] });

import { checkEra } from './era-check';

checkEra('535.54', { driverVersion: '535.54.03', cudaDriverVersion: '12.2', processRecordLayout: 'v3-535-32byte', memoryInfoVersion: 2, instanceIds: true, absent: ['nvmlDeviceGetRunningProcessDetailList', 'nvmlDeviceGetProcessesUtilizationInfo'], present: ['nvmlDeviceGetMigMode', 'nvmlDeviceGetMigDeviceHandleByIndex', 'nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetConfComputeMemSizeInfo'] });

import { checkEra } from './era-check';

checkEra('535.104', { driverVersion: '535.104.05', cudaDriverVersion: '12.2', processRecordLayout: 'detail-list-v1', memoryInfoVersion: 2, instanceIds: true, absent: ['nvmlDeviceGetProcessesUtilizationInfo'], present: ['nvmlDeviceGetMigMode', 'nvmlDeviceGetMigDeviceHandleByIndex', 'nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetConfComputeMemSizeInfo', 'nvmlDeviceGetRunningProcessDetailList'] });

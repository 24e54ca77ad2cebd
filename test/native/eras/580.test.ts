import { checkEra } from './era-check';

checkEra('580', { driverVersion: '580.65.06', cudaDriverVersion: '13.0', processRecordLayout: 'detail-list-v1', memoryInfoVersion: 2, instanceIds: true, absent: [], present: ['nvmlDeviceGetMigMode', 'nvmlDeviceGetMigDeviceHandleByIndex', 'nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetConfComputeMemSizeInfo', 'nvmlDeviceGetRunningProcessDetailList', 'nvmlDeviceGetProcessesUtilizationInfo'] });

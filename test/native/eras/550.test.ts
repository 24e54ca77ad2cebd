import { checkEra } from './era-check';

checkEra('550', { driverVersion: '550.54.15', cudaDriverVersion: '12.4', processRecordLayout: 'detail-list-v1', memoryInfoVersion: 2, instanceIds: true, absent: [], present: ['nvmlDeviceGetMigMode', 'nvmlDeviceGetMigDeviceHandleByIndex', 'nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetConfComputeMemSizeInfo', 'nvmlDeviceGetRunningProcessDetailList', 'nvmlDeviceGetProcessesUtilizationInfo'] });

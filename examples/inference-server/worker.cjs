// A "model" worker: loads slowly, holds VRAM while loaded, answers generate requests over IPC.
//
// On the mock NVML (VRAMGUARD_MOCK_CONTROL set) it holds VRAM the way a real model process shows up in
// NVML: its own pid in the GPU's process list with its bytes, added through the mock's live control
// and removed when it unloads (the mock also drops it if the process dies). On a real GPU this is where
// a model runner (node-llama-cpp, onnxruntime-node, a Python worker) would allocate its weights.
const { appendFileSync } = require('node:fs');

const { MODEL_ID, MODEL_BYTES, LOAD_MS, TOKEN_MS, GPU_INDEX } = process.env;
const control = process.env.VRAMGUARD_MOCK_CONTROL;
function op(o) {
  if (!control) return;
  try {
    appendFileSync(control, `${JSON.stringify(o)}\n`);
  } catch (error) {
    // The mock's files are gone (its test ended): there is nothing left to hold memory on.
    if (error.code !== 'ENOENT') throw error;
  }
}

function hold() {
  op({ op: 'setProcess', device: Number(GPU_INDEX ?? 0), pid: process.pid, usedBytes: Number(MODEL_BYTES), type: 'compute', followPid: true });
}

function release() {
  op({ op: 'removeProcess', device: Number(GPU_INDEX ?? 0), pid: process.pid });
}

setTimeout(() => {
  hold();
  process.send({ type: 'ready', pid: process.pid });
}, Number(LOAD_MS ?? 200));

process.on('message', (message) => {
  if (message.type === 'generate') {
    const tokens = Math.max(1, Math.min(1000, String(message.prompt ?? '').length));
    setTimeout(() => {
      process.send({ type: 'result', id: message.id, text: `${MODEL_ID}: ${tokens} tokens` });
    }, Number(TOKEN_MS ?? 2) * tokens);
  } else if (message.type === 'unload') {
    release();
    process.exit(0);
  }
});
process.on('disconnect', () => {
  release();
  process.exit(0);
});

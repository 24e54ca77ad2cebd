// Writes a tiny, deterministic GGUF v3 model of the llama architecture (about 500 KB, f32 weights from a
// seeded generator) with a sentencepiece-style 'llama' vocabulary: byte tokens for every UTF-8 byte plus
// the ASCII letters, digits and punctuation. llama.cpp (and so node-llama-cpp) loads it, creates
// contexts on it and generates tokens with it on the CPU; its output is noise, which is all tests need.
// No network, no model hub: the same bytes on every machine.
//
//   node scripts/tiny-gguf.mjs out.gguf     (or import { writeTinyGguf } from this file)
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const { seededRandom } = createRequire(import.meta.url)('./seeded-random.cjs');

export const TINY_GGUF = Object.freeze({
  embedding: 64,
  feedForward: 128,
  layers: 2,
  heads: 4,
  headsKv: 4,
  trainContext: 2048,
  seed: 0x5eed,
});

// GGUF metadata value types (the GGUF specification).
const T = { UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10 };
const GGML_F32 = 0;
const ALIGNMENT = 32;
// llama.cpp's token types.
const TOKEN = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 };

/** The vocabulary: <unk>, <s>, </s>, 256 byte tokens, then '▁' and printable ASCII pieces. */
function vocabulary() {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [TOKEN.UNKNOWN, TOKEN.CONTROL, TOKEN.CONTROL];
  const scores = [0, 0, 0];
  for (let b = 0; b < 256; b += 1) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN.BYTE);
    scores.push(0);
  }
  const pieces = ['▁'];
  for (let c = 0x21; c < 0x7f; c += 1) pieces.push(String.fromCharCode(c));
  for (const word of ['the', 'and', 'to', 'of', 'is', 'in', 'it', 'you', 'that', 'he']) pieces.push(`▁${word}`);
  pieces.forEach((piece, i) => {
    tokens.push(piece);
    types.push(TOKEN.NORMAL);
    scores.push(-i); // earlier pieces merge first
  });
  return { tokens, types, scores };
}

/** Deterministic weights in [-scale, scale] (mulberry32). */
function generator(seed) {
  const random = seededRandom(seed);
  return (scale) => (random() * 2 - 1) * scale;
}

class Writer {
  chunks = [];
  length = 0;
  push(buffer) {
    this.chunks.push(buffer);
    this.length += buffer.length;
  }
  u32(v) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  string(s) {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  pad(alignment) {
    const rest = this.length % alignment;
    if (rest) this.push(Buffer.alloc(alignment - rest));
  }
}

function writeValue(w, type, value) {
  switch (type) {
    case T.UINT32: return w.u32(value);
    case T.INT32: return w.i32(value);
    case T.FLOAT32: return w.f32(value);
    case T.BOOL: return w.push(Buffer.from([value ? 1 : 0]));
    case T.STRING: return w.string(value);
    case T.UINT64: return w.u64(value);
    default: throw new Error(`tiny-gguf: unsupported value type ${type}`);
  }
}

/** The GGUF file's bytes. */
export function tinyGguf(config = TINY_GGUF) {
  const { embedding: E, feedForward: F, layers, heads, headsKv, trainContext, seed } = config;
  const vocab = vocabulary();
  const V = vocab.tokens.length;
  const kv = [
    ['general.architecture', T.STRING, 'llama'],
    ['general.name', T.STRING, 'vramguard-tiny-llama'],
    ['general.alignment', T.UINT32, ALIGNMENT],
    ['general.file_type', T.UINT32, 0], // all f32
    ['llama.context_length', T.UINT32, trainContext],
    ['llama.embedding_length', T.UINT32, E],
    ['llama.block_count', T.UINT32, layers],
    ['llama.feed_forward_length', T.UINT32, F],
    ['llama.attention.head_count', T.UINT32, heads],
    ['llama.attention.head_count_kv', T.UINT32, headsKv],
    ['llama.attention.layer_norm_rms_epsilon', T.FLOAT32, 1e-5],
    ['llama.rope.dimension_count', T.UINT32, E / heads],
    ['llama.rope.freq_base', T.FLOAT32, 10000],
    ['llama.vocab_size', T.UINT32, V],
    ['tokenizer.ggml.model', T.STRING, 'llama'],
    ['tokenizer.ggml.tokens', T.ARRAY, [T.STRING, vocab.tokens]],
    ['tokenizer.ggml.scores', T.ARRAY, [T.FLOAT32, vocab.scores]],
    ['tokenizer.ggml.token_type', T.ARRAY, [T.INT32, vocab.types]],
    ['tokenizer.ggml.unknown_token_id', T.UINT32, 0],
    ['tokenizer.ggml.bos_token_id', T.UINT32, 1],
    ['tokenizer.ggml.eos_token_id', T.UINT32, 2],
    ['tokenizer.ggml.add_bos_token', T.BOOL, true],
    ['tokenizer.ggml.add_eos_token', T.BOOL, false],
  ];
  const kvDim = (E / heads) * headsKv;
  // [name, dims (ne0 first, as GGUF lists them), kind]: norms are ones, the rest small noise.
  const tensors = [['token_embd.weight', [E, V], 'weight']];
  for (let l = 0; l < layers; l += 1) {
    tensors.push(
      [`blk.${l}.attn_norm.weight`, [E], 'norm'],
      [`blk.${l}.attn_q.weight`, [E, E], 'weight'],
      [`blk.${l}.attn_k.weight`, [E, kvDim], 'weight'],
      [`blk.${l}.attn_v.weight`, [E, kvDim], 'weight'],
      [`blk.${l}.attn_output.weight`, [E, E], 'weight'],
      [`blk.${l}.ffn_norm.weight`, [E], 'norm'],
      [`blk.${l}.ffn_gate.weight`, [E, F], 'weight'],
      [`blk.${l}.ffn_up.weight`, [E, F], 'weight'],
      [`blk.${l}.ffn_down.weight`, [F, E], 'weight'],
    );
  }
  tensors.push(['output_norm.weight', [E], 'norm'], ['output.weight', [E, V], 'weight']);

  const head = new Writer();
  head.push(Buffer.from('GGUF', 'ascii'));
  head.u32(3);
  head.u64(tensors.length);
  head.u64(kv.length);
  for (const [key, type, value] of kv) {
    head.string(key);
    head.u32(type);
    if (type === T.ARRAY) {
      const [elementType, items] = value;
      head.u32(elementType);
      head.u64(items.length);
      for (const item of items) writeValue(head, elementType, item);
    } else {
      writeValue(head, type, value);
    }
  }
  const random = generator(seed);
  const data = new Writer();
  for (const [name, dims, kind] of tensors) {
    data.pad(ALIGNMENT);
    head.string(name);
    head.u32(dims.length);
    for (const d of dims) head.u64(d);
    head.u32(GGML_F32);
    head.u64(data.length);
    const count = dims.reduce((a, b) => a * b, 1);
    const values = Buffer.alloc(count * 4);
    const scale = 1 / Math.sqrt(dims[0]);
    for (let i = 0; i < count; i += 1) values.writeFloatLE(kind === 'norm' ? 1 : random(scale), i * 4);
    data.push(values);
  }
  head.pad(ALIGNMENT);
  return Buffer.concat([...head.chunks, ...data.chunks]);
}

/** Writes the model to path; returns its size in bytes. */
export function writeTinyGguf(path, config = TINY_GGUF) {
  const bytes = tinyGguf(config);
  writeFileSync(path, bytes);
  return bytes.length;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: node scripts/tiny-gguf.mjs OUT.gguf');
    process.exit(2);
  }
  console.log(`${out}: ${writeTinyGguf(out)} bytes`);
}

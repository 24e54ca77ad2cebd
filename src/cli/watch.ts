// `vramguard watch`: a live view of the GPUs on a terminal (alternate screen, redrawn each pass and on
// resize, q or Ctrl-C quits, the terminal restored however it ends), or one plain line per device per
// pass when stdout is not a terminal.
import { writeSync } from 'node:fs';
import { emitKeypressEvents } from 'node:readline';

import pc from 'picocolors';

import { Sampler } from '../sampler';
import type { Snapshot } from '../types';
import { type CommonOptions, EXIT_OK, onStopSignal, openNvml, passes } from './common';
import { loadTerminalLibraries } from './esm';
import { MockWarnings } from './mock-warnings';
import { ProcessDirectory } from '../proc';
import { checkNodeViewOptions, type NodeViewOptions, participantTable, type ParticipantRow, plainParticipantLine, readParticipants } from './participants';
import { type DeviceHistory, plainLine, pushHistory, renderFrame, type WatchState } from './render';
import { plainMigLines } from './render-mig';
import { attributedProcesses } from '../mig';

const ONE_COLUMN = /^[\u0020-\u007e\u00b0\u2026\u2580-\u259f]*$/;

export interface WatchOptions extends CommonOptions, NodeViewOptions {
  intervalMs: number;
  ascii: boolean;
}

/** Colours unless NO_COLOR is set (and not empty), FORCE_COLOR decides otherwise, else only on a terminal. */
export function colorEnabled(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined) return !['0', 'false'].includes(env.FORCE_COLOR.toLowerCase());
  return stream.isTTY === true && env.TERM !== 'dumb';
}

export async function runWatch(options: WatchOptions): Promise<number> {
  checkNodeViewOptions(options);
  const { probe, devices } = openNvml(options);
  const sampler = new Sampler({ interval: options.intervalMs, devices }).start();
  // On the full screen, the mock's warnings wait for the normal screen to come back.
  const held: string[] = [];
  const warnings = new MockWarnings('watch', undefined, process.stdout.isTTY ? (line) => held.push(line) : undefined);
  try {
    if (process.stdout.isTTY) await interactive(sampler, probe.system, probe.isMock, options, warnings);
    else await plain(sampler, options, warnings);
  } finally {
    sampler.close();
    if (held.length > 0) process.stderr.write(held.join(''));
  }
  return EXIT_OK;
}

async function plain(sampler: Sampler, options: NodeViewOptions, warnings: MockWarnings): Promise<void> {
  const removeSignals = onStopSignal(() => sampler.close());
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') sampler.close();
    else throw error;
  });
  try {
    for await (const snapshot of passes(sampler)) {
      warnings.report();
      const participants = readParticipants(snapshot, options).map((row) => plainParticipantLine(row, snapshot));
      process.stdout.write(snapshot.devices.map((d) => plainLine(d, snapshot) + plainMigLines(d, snapshot)).join('') + participants.join(''));
    }
  } finally {
    removeSignals();
  }
}

async function interactive(
  sampler: Sampler,
  system: WatchState['system'],
  isMock: boolean,
  options: WatchOptions,
  warnings: MockWarnings,
): Promise<void> {
  const { stringWidth: fullWidth, ansiEscapes: esc } = await loadTerminalLibraries();
  // Most of a frame is printable ASCII, block elements (bars, sparklines), '°' and '…', one column each:
  // measure those by length and leave the rest (process commands, GPU names) to string-width.
  const stringWidth = (text: string) => (ONE_COLUMN.test(text) ? text.length : fullWidth(text));
  const out = process.stdout;
  const stdin = process.stdin;
  const colors = pc.createColors(colorEnabled(out));
  const state: WatchState = {
    system,
    isMock,
    intervalMs: options.intervalMs,
    snapshot: null,
    history: new Map<number, DeviceHistory>(),
    directory: new ProcessDirectory(),
    now: new Date(),
  };
  let participants: ParticipantRow[] = [];
  state.sections = [(lines, ctx) => participantTable(participants, lines, ctx)];

  // Restore the terminal exactly once, however we leave: normal exit, error, or process exit.
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    if (stdin.isTTY) {
      try {
        stdin.setRawMode(false);
      } catch {
        // stdin already gone
      }
    }
    stdin.pause();
    try {
      writeSync(out.fd, esc.cursorShow + esc.exitAlternativeScreen);
    } catch {
      // the terminal went away
    }
  };
  process.once('exit', restore);

  const stop = () => sampler.close();
  const removeSignals = onStopSignal(stop);
  const onKey = (text: string | undefined, key: { name?: string; ctrl?: boolean } | undefined) => {
    if (key?.ctrl && key.name === 'c') stop();
    else if (text === 'q' || text === 'Q') stop();
  };

  let previous: string[] = [];
  let clear = true;
  const draw = () => {
    state.now = new Date();
    const width = Math.max(1, out.columns || 80);
    const height = Math.max(1, out.rows || 24);
    const lines = renderFrame(state, { width, height, colors, ascii: options.ascii, stringWidth });
    let frame = esc.beginSynchronizedOutput;
    if (clear) {
      frame += esc.eraseScreen;
      previous = [];
      clear = false;
    }
    for (let i = 0; i < lines.length; i++) {
      if (lines[i] !== previous[i]) frame += esc.cursorTo(0, i) + esc.eraseLine + lines[i];
    }
    if (lines.length < previous.length) frame += esc.cursorTo(0, lines.length) + esc.eraseDown;
    frame += esc.endSynchronizedOutput;
    previous = lines;
    out.write(frame);
  };
  const onResize = () => {
    clear = true;
    draw();
  };

  try {
    out.write(esc.enterAlternativeScreen + esc.cursorHide + esc.eraseScreen);
    if (stdin.isTTY) {
      emitKeypressEvents(stdin);
      stdin.setRawMode(true);
      stdin.on('keypress', onKey);
      stdin.resume();
    }
    out.on('resize', onResize);
    draw();
    for await (const snapshot of passes(sampler)) {
      warnings.report();
      update(state, snapshot);
      participants = readParticipants(snapshot, options);
      draw();
    }
  } finally {
    removeSignals();
    out.off('resize', onResize);
    stdin.off('keypress', onKey);
    restore();
    process.off('exit', restore);
  }
}

function update(state: WatchState, snapshot: Snapshot): void {
  state.snapshot = snapshot;
  pushHistory(state.history, snapshot);
  const pids: number[] = [];
  for (const device of snapshot.devices) for (const { process } of attributedProcesses(device)) pids.push(process.pid);
  state.directory.refresh(pids);
}

#!/usr/bin/env node
// The vramguard command line: info, watch, sample, serve. Argument parsing with commander; each command
// lives in its own module. Errors are one line on stderr; exit codes: 0 done, 1 failure, 2 NVML
// unavailable (no driver, library or GPU), 64 usage error.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Command, CommanderError, Option } from 'commander';

import {
  collectDevices,
  CliError,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  parseInterval,
  parseListen,
  parsePositiveInteger,
  toCliError,
} from './common';
import { FIELD_NAMES } from './schema';
import { parseFields, type SampleFormat } from './sample';

// Each command's module is loaded when that command runs, so `info` does not load prom-client, etc.
/* eslint-disable @typescript-eslint/no-require-imports */
const commands = {
  info: () => require('./info') as typeof import('./info'),
  watch: () => require('./watch') as typeof import('./watch'),
  sample: () => require('./sample') as typeof import('./sample'),
  serve: () => require('./serve') as typeof import('./serve'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

const COMMANDS = ['info', 'watch', 'sample', 'serve'] as const;

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function withCommonOptions(command: Command): Command {
  return command
    .option('-d, --device <gpu>', 'GPU to read: index, UUID or PCI bus id; repeat or comma-separate (default: all)', collectDevices)
    .option('--nvml-library <path>', 'NVML library to load, like VRAMGUARD_NVML_LIBRARY (default: the driver\'s libnvidia-ml.so.1)')
    .option('--mock <scenario.json>', "use vramguard's bundled mock NVML, driven by this scenario (see examples/scenarios/)");
}

function intervalOption(): Option {
  return new Option('-i, --interval <duration>', 'sampling interval: 500ms, 1s, 2m, ...').argParser(parseInterval).default(1000, '1s');
}

const EXIT_CODES_HELP = `
Exit codes: 0 done (also after Ctrl-C or SIGTERM), 1 failure, 2 NVML unavailable (no driver, library or
GPU; one line says what is missing), 64 usage error (the message names the flag).`;

/** Builds the program; `setExit` receives each command's exit code. */
export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('vramguard')
    .description('GPU memory and utilization from NVML: inspect, watch, stream, export to Prometheus.')
    .version(version(), '-V, --version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    .addHelpText('after', EXIT_CODES_HELP);

  withCommonOptions(
    program
      .command('info')
      .description('driver, NVML and CUDA versions; each GPU: name, UUID, PCI id, memory, what it supports')
      .option('--json', 'print JSON (snake_case keys, bytes in bytes)', false),
  ).action((opts: { json: boolean; device?: string[]; nvmlLibrary?: string; mock?: string }) => {
    setExit(commands.info().runInfo(opts));
  });

  withCommonOptions(
    program
      .command('watch')
      .description('live view: per-GPU utilization and memory bars with history, a process table; q quits')
      .addOption(intervalOption())
      .option('--ascii', 'draw with ASCII characters only', false)
      .option('--node-dir <dir>', "node ledger directory to show participants from (default: VRAMGUARD_NODE_DIR, else /dev/shm)")
      .option('--node-policy <file>', "the node's policy file, for the participants' shares")
      .addHelpText(
        'after',
        '\nOn a terminal: an alternate screen redrawn every pass and on resize; q or Ctrl-C quits; NO_COLOR turns\ncolours off. Otherwise: one plain line per GPU per pass.',
      ),
  ).action(async (opts: { interval: number; ascii: boolean; nodeDir?: string; nodePolicy?: string; device?: string[]; nvmlLibrary?: string; mock?: string }) => {
    setExit(await commands.watch().runWatch({ ...opts, intervalMs: opts.interval }));
  });

  withCommonOptions(
    program
      .command('sample')
      .description('stream one record per GPU per pass on stdout (NDJSON or CSV)')
      .addOption(new Option('-f, --format <format>', 'output format').choices(['ndjson', 'csv']).default('ndjson'))
      .addOption(intervalOption())
      .addOption(new Option('-n, --count <passes>', 'stop after this many passes (default: until interrupted)').argParser((v) => parsePositiveInteger('--count', v)))
      .addOption(new Option('--fields <list>', 'comma-separated fields, in this order (default: all)').argParser(parseFields))
      .addHelpText('after', `\nFields: ${FIELD_NAMES.join(', ')}.\nBase units (bytes, ratios 0..1, watts, celsius, hertz); null when a reading is absent (empty in CSV).`),
  ).action(
    async (opts: {
      format: SampleFormat;
      interval: number;
      count?: number;
      fields?: ReturnType<typeof parseFields>;
      device?: string[];
      nvmlLibrary?: string;
      mock?: string;
    }) => {
      setExit(await commands.sample().runSample({ ...opts, intervalMs: opts.interval }));
    },
  );

  withCommonOptions(
    program
      .command('serve')
      .description('Prometheus exporter: /metrics (text or OpenMetrics) and /health')
      .addOption(new Option('-l, --listen <address>', 'HOST:PORT, [IPv6]:PORT, :PORT (all interfaces) or PORT').argParser(parseListen).default(parseListen('127.0.0.1:9400'), '127.0.0.1:9400'))
      .addOption(intervalOption())
      .option('--processes', "also export per-process series (vramguard_process_*) and the node's participants (vramguard_node_participant_*)", false)
      .option('--node-dir <dir>', 'node ledger directory to read participants from (default: VRAMGUARD_NODE_DIR, else /dev/shm)')
      .option('--node-policy <file>', "the node's policy file, for the participants' shares")
      .addOption(new Option('--stale-after <duration>', '/health answers 503 once the latest sample is older than this (default: 3 intervals)').argParser((v) => parseStaleAfter(v))),
  ).action(
    async (opts: {
      listen: ReturnType<typeof parseListen>;
      interval: number;
      processes: boolean;
      nodeDir?: string;
      nodePolicy?: string;
      staleAfter?: number;
      device?: string[];
      nvmlLibrary?: string;
      mock?: string;
    }) => {
      setExit(await commands.serve().runServe({ ...opts, intervalMs: opts.interval, staleAfterMs: opts.staleAfter }));
    },
  );

  return program;
}

function parseStaleAfter(value: string): number {
  try {
    return parseInterval(value);
  } catch (error) {
    throw new CliError((error as Error).message.replace('--interval', '--stale-after'), EXIT_USAGE);
  }
}

/** Runs the CLI on `argv` (process.argv layout); resolves with the exit code. */
export async function main(argv: string[] = process.argv): Promise<number> {
  const args = argv.slice(2);
  const commandName = args.find((a) => (COMMANDS as readonly string[]).includes(a));
  const prefix = commandName ? `vramguard ${commandName}` : 'vramguard';
  const fail = (message: string) => process.stderr.write(`${prefix}: ${message.trim().replace(/\s*\n\s*/g, '; ')}\n`);

  if (args.length === 0) {
    fail(`missing command: ${COMMANDS.join(', ')} (see 'vramguard --help')`);
    return EXIT_USAGE;
  }
  let exitCode = EXIT_OK;
  const program = buildProgram((code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') {
        return error.code === 'commander.help' ? EXIT_USAGE : EXIT_OK;
      }
      const message = error.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
      fail(`${message} (see '${prefix} --help')`);
      return EXIT_USAGE;
    }
    const cliError = toCliError(error);
    fail(cliError.message);
    if (process.env.VRAMGUARD_DEBUG && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return cliError.exitCode;
  }
}

if (require.main === module) {
  main().then(
    (code) => {
      // Exit once stdout has taken everything (a pipe reader may be slow), whatever handles are still open.
      process.exitCode = code;
      const exit = () => process.exit(code);
      if (process.stdout.writable && !process.stdout.destroyed) {
        process.stdout.write('', exit);
        setTimeout(exit, 5000).unref();
      } else {
        exit();
      }
    },
    (error: unknown) => {
      process.stderr.write(`vramguard: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(EXIT_FAILURE);
    },
  );
}

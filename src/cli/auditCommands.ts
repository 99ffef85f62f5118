import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { verifyChain, type ChainReport } from '../audit/chain';
import { auditChainKey } from '../audit/chainFile';
import { ConfigurationError } from '../errors';
import { nonNegativeInt } from './intArguments';

/** `audit verify`: exit code 0 when the chain is intact, 1 when it is not (or cannot be checked). */
export function registerAuditCommands(program: Command, env: NodeJS.ProcessEnv = process.env, write = (text: string) => process.stdout.write(text)): void {
  const audit = program.command('audit').description('Tamper-evident audit trail');
  audit
    .command('verify')
    .description('Check a chained audit file: reports deleted, inserted, reordered and edited records by line')
    .argument('<file>', 'audit file written through openAuditChain')
    .option('--key-env <name>', 'environment variable holding the chain key (base64 of 32 bytes)', 'PCE_AUDIT_KEY')
    .option('--expect-chain <id>', 'the chain identity kept when the file was started (its records\' "chain"): detects a file swapped for another chain', (v) => {
      if (!/^[0-9a-f]{32}$/.test(v)) throw new InvalidArgumentError('expected 32 lowercase hex digits (the chain `audit verify` prints)');
      return v;
    })
    .option('--expect-last-seq <n>', 'the last sequence number seen before (kept elsewhere): detects records cut from the end', nonNegativeInt)
    .option('--expect-last-mac <hex>', 'the MAC of that record, kept with it: detects a file cut back and written on', (v) => {
      if (!/^[0-9a-f]{64}$/.test(v)) throw new InvalidArgumentError('expected 64 lowercase hex digits (the mac `audit verify` prints)');
      return v;
    })
    .option('--json', 'print JSON instead of text')
    .action(async (file: string, opts: { keyEnv: string; expectChain?: string; expectLastSeq?: number; expectLastMac?: string; json?: boolean }) => {
      if (opts.expectLastMac !== undefined && opts.expectLastSeq === undefined) {
        throw new ConfigurationError(undefined, undefined, '--expect-last-mac needs --expect-last-seq (the record it belongs to)');
      }
      const key = auditChainKey(env[opts.keyEnv], {});
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        throw new ConfigurationError(undefined, undefined, `cannot read audit file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      const report = verifyChain(key, text, {
        ...(opts.expectChain !== undefined ? { expectChain: opts.expectChain } : {}),
        ...(opts.expectLastSeq !== undefined ? { expectLastSeq: opts.expectLastSeq } : {}),
        ...(opts.expectLastMac !== undefined ? { expectLastMac: opts.expectLastMac } : {}),
      });
      write(opts.json ? `${JSON.stringify({ file, ...report }, null, 2)}\n` : `${verifyLines(file, report).join('\n')}\n`);
      if (!report.ok) process.exitCode = 1;
    });
}

function verifyLines(file: string, r: ChainReport): string[] {
  const head = `chain ${r.chain ?? '(none)'}, last record ${r.head.seq}, mac ${r.head.mac}`;
  if (r.ok) return [`${file}: OK, ${r.lines} record${r.lines === 1 ? '' : 's'} verified; ${head}`];
  return [
    `${file}: TAMPERED: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} in ${r.lines} lines (${r.authentic} authentic)` +
      (r.authentic === 0 && r.lines > 0 ? '; no record verifies: is this the right key?' : ''),
    ...r.problems.map((p) => `  line ${p.line}: ${p.kind}: ${p.message}`),
    `  ${head}`,
  ];
}

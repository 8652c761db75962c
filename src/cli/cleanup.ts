/** freight cleanup [--dry-run]: the janitor, once, on the database and bucket the environment names. */
import Fastify from 'fastify';
import { openJanitorDeps } from '../janitor/wiring.js';
import { runJanitor } from '../janitor/janitor.js';
import { summary } from '../janitor/report.js';
import { configFrom, parse, usageError, type Command } from './command.js';

export const command: Command = {
  usage: `Usage: freight cleanup [--dry-run] [--json]

Runs the janitor once, as the server does every JANITOR_INTERVAL: expires unfinished uploads past
UPLOAD_EXPIRY (aborting their S3 multipart uploads), aborts multipart uploads in the bucket that no upload
knows, and finishes terminations whose S3 part failed. Skips the run if another instance's janitor is running.

Options:
  --dry-run   list what it would do, change nothing
  --json      print the report as JSON
`,
  async run(args, env) {
    const { values, positionals } = parse('cleanup', args, {
      'dry-run': { type: 'boolean' },
      json: { type: 'boolean' },
    });
    if (positionals.length > 0) throw usageError('cleanup', `unexpected argument "${positionals[0]}"`);
    const config = configFrom(env);
    // The janitor's own log lines go to stderr; the report to stdout.
    const { log } = Fastify({ logger: { level: config.logLevel, stream: process.stderr } });
    const { deps, close } = await openJanitorDeps(config, log);
    try {
      const report = await runJanitor(deps, { dryRun: values['dry-run'] === true });
      process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${summary(report)}\n`);
      return report.failures > 0 ? 1 : 0;
    } finally {
      await close();
    }
  },
};

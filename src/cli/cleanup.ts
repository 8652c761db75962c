/**
 * freight cleanup [--dry-run]: the janitor, once.
 *
 * STUB(janitor): the janitor (expiry, orphaned multipart uploads, unfinished terminations) is built on another
 * branch, which exports `runJanitor(deps, { dryRun })`. Until it is merged this command only says so. To wire it:
 * open the database and the S3 clients as serve does, call runJanitor(deps, { dryRun: values['dry-run'] }), print
 * its report (JSON with --json), and return 0.
 */
import { configFrom, parse, usageError, type Command } from './command.js';

export const command: Command = {
  usage: `Usage: freight cleanup [--dry-run] [--json]

Runs the janitor once, as the server does every JANITOR_INTERVAL: expires unfinished uploads past
UPLOAD_EXPIRY (aborting their S3 multipart uploads), aborts multipart uploads in the bucket that no upload
knows, and finishes terminations whose S3 part failed.

Options:
  --dry-run   list what it would do, change nothing
  --json      print the report as JSON
`,
  async run(args, env) {
    const { positionals } = parse('cleanup', args, { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } });
    if (positionals.length > 0) throw usageError('cleanup', `unexpected argument "${positionals[0]}"`);
    configFrom(env);
    process.stderr.write('freight cleanup: not yet wired (the janitor, runJanitor, is not part of this build)\n');
    return 1;
  },
};

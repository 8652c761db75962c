/**
 * freight token <user> [--ttl <duration>]: a bearer token for <user>, signed with AUTH_JWT_SECRET (or the
 * development secret the server keeps in DATA_DIR on embedded defaults), with AUTH_JWT_ISSUER and
 * AUTH_JWT_AUDIENCE as its iss and aud when they are set.
 */
import { Authenticator } from '../auth/authenticator.js';
import { parseDuration } from '../config/units.js';
import { CliError, configFrom, parse, usageError, type Command } from './command.js';

const DEFAULT_TTL = '24h';
const MAX_TTL_MS = 366 * 86_400_000;

export const command: Command = {
  usage: `Usage: freight token <user> [--ttl <duration>]

Prints a bearer token for <user> (its "sub"), signed as the server expects it: with AUTH_JWT_SECRET, or with
the development secret in DATA_DIR on the embedded defaults; AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE become
its "iss" and "aud".

Options:
  --ttl <duration>   how long it is valid: 90s, 15m, 24h, 30d (a plain number is seconds); default ${DEFAULT_TTL}
`,
  async run(args, env) {
    const { values, positionals } = parse('token', args, { ttl: { type: 'string' } });
    const [user, extra] = positionals;
    if (user === undefined || user === '') throw usageError('token', 'the user is missing');
    if (extra !== undefined) throw usageError('token', `unexpected argument "${extra}"`);
    const ttlText = values.ttl ?? DEFAULT_TTL;
    const ttlMs = parseDuration(ttlText);
    if (ttlMs === undefined || ttlMs < 1000 || ttlMs > MAX_TTL_MS) {
      throw usageError('token', `--ttl must be a duration from 1s to 366d, such as 15m or 24h, got "${ttlText}"`);
    }
    const config = configFrom(env);
    if (config.auth.mode === 'disabled') {
      throw new CliError(
        'freight token: AUTH_DISABLED=true: the server accepts no tokens, every request is "anonymous"',
      );
    }
    const authenticator = await Authenticator.create(config.auth, config.tokens);
    process.stdout.write(`${await authenticator.issue(user, Math.floor(ttlMs / 1000))}\n`);
    return 0;
  },
};

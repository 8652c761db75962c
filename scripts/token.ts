/**
 * npm run token -- <user> [ttl-seconds] – prints a bearer token for <user>, signed with AUTH_JWT_SECRET
 * (or with the development secret the server keeps in DATA_DIR when it runs on embedded defaults), carrying
 * AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE when they are set.
 */
import { Authenticator } from '../src/auth/authenticator.js';
import { loadConfig } from '../src/config/index.js';

const [user, ttl = '86400'] = process.argv.slice(2);
try {
  if (!user) throw new Error('usage: npm run token -- <user> [ttl-seconds]');
  if (!/^\d+$/.test(ttl)) throw new Error(`ttl-seconds must be a whole number, got "${ttl}"`);
  const config = loadConfig(process.env);
  if (config.auth.mode === 'disabled') throw new Error('AUTH_DISABLED=true: the server accepts no tokens, every request is "anonymous"');
  const authenticator = await Authenticator.create(config.auth, config.tokens);
  console.log(await authenticator.issue(user, Number(ttl)));
} catch (error) {
  console.error(`token: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

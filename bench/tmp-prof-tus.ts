import { spawn } from 'node:child_process';
import { ensurePostgres, runCleanups, type Cleanup } from '../scripts/services.js';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { s3Client, benchToken, tusContender, deleteObject } from './contenders.js';
import { cpuSeconds } from './proc.js';
const cleanups: Cleanup[] = [];
const db = await ensurePostgres(cleanups, 'freight_prof');
const s3 = { endpoint: 'http://127.0.0.1:7480', region: 'us-east-1', accessKeyId: 'test', secretAccessKey: 'testsecret', forcePathStyle: true };
const c = s3Client(s3); await c.send(new CreateBucketCommand({ Bucket: 'prof-bucket' })).catch(() => {});
const args = process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : [];
const child = spawn(process.execPath, [...args, '--max-semi-space-size=2', 'dist/src/server.js'], { env: { ...process.env, PORT: '1099', DATA_DIR: '/tmp/prof-data', DATABASE_URL: db, S3_BUCKET: 'prof-bucket', S3_ENDPOINT: s3.endpoint, S3_ACCESS_KEY_ID: 'test', S3_SECRET_ACCESS_KEY: 'testsecret', S3_FORCE_PATH_STYLE: 'true', AUTH_JWT_SECRET: 'freight-benchmark-secret-0123456789abcdef', LOG_LEVEL: 'warn' }, stdio: 'inherit' });
await new Promise((r) => setTimeout(r, 2500));
const contender = tusContender('f', { name: 'f', url: 'http://127.0.0.1:1099', pid: child.pid!, tempDir: '', stop: async () => {} }, await benchToken());
const runs = Number(process.argv[4] ?? 2);
for (let i = 0; i < runs; i++) {
  const cpu0 = cpuSeconds(child.pid!); const t = Date.now();
  let last = cpu0; let lastT = Date.now();
  const iv = setInterval(() => { const now = cpuSeconds(child.pid!); console.log('  t', ((Date.now() - t) / 1000).toFixed(0), 'cpu%', ((now - last) / ((Date.now() - lastT) / 1000) * 100).toFixed(0)); last = now; lastT = Date.now(); }, 2000);
  const { key } = await contender.upload(process.argv[2]!, Number(process.argv[3]));
  clearInterval(iv);
  console.log('cpu s/GiB', ((cpuSeconds(child.pid!) - cpu0) / (Number(process.argv[3]) / 2 ** 30)).toFixed(2), 'MB/s', (Number(process.argv[3]) / 1e6 / ((Date.now() - t) / 1000)).toFixed(1));
  await deleteObject(s3, 'prof-bucket', key);
}
child.kill('SIGINT'); await new Promise((r) => child.on('exit', r));
await runCleanups(cleanups); c.destroy();

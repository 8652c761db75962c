/**
 * The janitor's sweep of staged bytes: the objects under `<key>.staging/` (tus on S3: tails, and staging uploads
 * completed into objects) of uploads that no longer need them. A completion removes them right after it
 * assembles the upload, and a termination or an expiry right after it ends the upload, each without waiting for
 * S3; whatever S3 refused then is found here. An open upload keeps its staged bytes; those of an upload that
 * completed or ended are removed; those of an upload no row knows are removed once older than UPLOAD_EXPIRY, if
 * its key is named as Freight names its own (keys.ts). The objects are listed under S3_KEY_PREFIX (keys a hook
 * names may have "directories" of their own, so the staged ones are not all at the top level); an upload's own
 * object is never among the doomed: its key holds no `.staging/`.
 */
import type { ListedObject } from '../storage/inventory.js';
import { namedByFreight, stagedObjectOwner } from './keys.js';
import { stagedObjectsFate } from '../uploads/fates.js';
import { nowOf, type JanitorDeps, type S3Parts } from './deps.js';
import { recordAction, type JanitorReport } from './report.js';

export async function sweepStagedObjects(
  deps: JanitorDeps,
  s3: S3Parts,
  report: JanitorReport,
  signal?: AbortSignal,
): Promise<void> {
  const { uploads, log } = deps;
  const { prefix } = s3.inventory;
  const oldBefore = nowOf(deps).getTime() - deps.expiryMs;
  for await (const page of s3.inventory.objects()) {
    signal?.throwIfAborted();
    const staged = new Map<string, ListedObject[]>();
    for (const object of page) {
      const owner = object.key.startsWith(prefix) ? stagedObjectOwner(object.key) : undefined;
      if (owner !== undefined) staged.set(owner, [...(staged.get(owner) ?? []), object]);
    }
    if (staged.size === 0) continue;
    const rows = await uploads.access.findManyByStorageKey([...staged.keys()]);
    for (const [key, listed] of staged) {
      const upload = rows.get(key);
      if (!upload && !namedByFreight(key, prefix)) continue;
      const fate = stagedObjectsFate(upload);
      if (fate === 'keep') continue;
      const doomed =
        fate === 'remove'
          ? listed
          : listed.filter((object) => object.lastModified !== undefined && object.lastModified.getTime() < oldBefore);
      if (doomed.length === 0) continue;
      const stagingPrefix = `${key}.staging/`;
      try {
        if (!report.dryRun) await s3.objects.deleteObjects(doomed.map((object) => object.key));
        report.stagedObjectsRemoved += doomed.length;
        const reason = upload ? `the upload is ${upload.status}` : 'no upload records them';
        recordAction(report, { kind: 'remove-staged-objects', prefix: stagingPrefix, objects: doomed.length, reason });
      } catch (error) {
        report.failures++;
        log.warn({ err: error, prefix: stagingPrefix }, 'janitor: could not remove staged objects');
      }
    }
  }
}

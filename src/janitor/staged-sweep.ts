/**
 * The janitor's sweep of staged bytes: the objects under `<id>.staging/` (tus on S3: tails, and staging uploads
 * completed into objects) of uploads that no longer need them. A completion removes them right after it
 * assembles the upload, and a termination or an expiry right after it ends the upload, each without waiting for
 * S3; whatever S3 refused then is found here. An open upload keeps its staged bytes; those of an upload that
 * completed or ended are removed; those of an upload no row knows are removed once older than UPLOAD_EXPIRY.
 */
import { stagedObjectsFate } from '../uploads/fates.js';
import { stagingPrefixOwner } from '../tus/s3/layout.js';
import { nowOf, type JanitorDeps, type S3Parts } from './deps.js';
import { recordAction, type JanitorReport } from './report.js';

const STAGING_SUFFIX = '.staging/';

export async function sweepStagedObjects(
  deps: JanitorDeps,
  s3: S3Parts,
  report: JanitorReport,
  signal?: AbortSignal,
): Promise<void> {
  const { uploads, log } = deps;
  const oldBefore = nowOf(deps).getTime() - deps.expiryMs;
  for await (const page of s3.inventory.prefixesEndingWith(STAGING_SUFFIX)) {
    signal?.throwIfAborted();
    const owners = page.flatMap((prefix) => {
      const id = stagingPrefixOwner(prefix);
      return id ? [{ prefix, id }] : [];
    });
    const rows = await uploads.access.findManyForStorage(owners.map(({ id }) => id));
    for (const { prefix, id } of owners) {
      const upload = rows.get(id);
      const fate = stagedObjectsFate(upload);
      if (fate === 'keep') continue;
      try {
        const listed = await s3.inventory.objectsUnder(prefix);
        const doomed =
          fate === 'remove'
            ? listed
            : listed.filter((object) => object.lastModified !== undefined && object.lastModified.getTime() < oldBefore);
        if (doomed.length === 0) continue;
        if (!report.dryRun) await s3.objects.deleteObjects(doomed.map((object) => object.key));
        report.stagedObjectsRemoved += doomed.length;
        const reason = upload ? `the upload is ${upload.status}` : 'no upload records them';
        recordAction(report, { kind: 'remove-staged-objects', prefix, objects: doomed.length, reason });
      } catch (error) {
        report.failures++;
        log.warn({ err: error, prefix }, 'janitor: could not remove staged objects');
      }
    }
  }
}

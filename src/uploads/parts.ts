/**
 * The check that decides whether the parts S3 holds make up the whole upload. Both upload paths run it before
 * anything is assembled: tus (against the parts recorded as PATCHes were stored) and direct (against the plan
 * and the ETags the client reports).
 */
import { S3_LIMITS } from '../config/index.js';
import type { StoredPart } from '../storage/multipart.js';

/** What we expect of a part: its planned size and/or the ETag its uploader saw. */
export interface ExpectedPart {
  partNumber: number;
  size?: number | undefined;
  etag?: string | null | undefined;
}

export type PartProblem =
  | { partNumber: number; problem: 'missing' }
  | { partNumber: number; problem: 'wrong_etag'; expected: string; actual: string }
  | { partNumber: number; problem: 'wrong_size'; expected: number; actual: number }
  | { partNumber: number; problem: 'too_small'; actual: number }
  | { partNumber: number; problem: 'unexpected' }
  /** The parts are all there but do not add up to the upload's length (partNumber 0: the whole upload). */
  | { partNumber: 0; problem: 'wrong_total'; expected: number; actual: number };

export interface PartsReport {
  problems: PartProblem[];
  /** The parts 1..N in order, when there are no problems. */
  parts: StoredPart[];
  storedBytes: number;
}

/** S3 answers ETags quoted; clients often strip the quotes. Compare without them. */
export const normalizeEtag = (etag: string): string => etag.replace(/^W\//, '').replace(/"/g, '');

export function checkParts(input: {
  /** The upload's length, when known. */
  totalSize: number | null;
  stored: readonly StoredPart[];
  expected: readonly ExpectedPart[];
  /** The planned number of parts, when there is a plan; otherwise the parts present decide. */
  partCount?: number | undefined;
}): PartsReport {
  const stored = new Map(input.stored.map((part) => [part.partNumber, part]));
  const problems: PartProblem[] = [];
  const reported = new Set<number>();
  const report = (problem: PartProblem) => {
    if (reported.has(problem.partNumber)) return;
    reported.add(problem.partNumber);
    problems.push(problem);
  };

  for (const want of input.expected) {
    const have = stored.get(want.partNumber);
    if (!have) report({ partNumber: want.partNumber, problem: 'missing' });
    else if (want.size !== undefined && have.size !== want.size) {
      report({ partNumber: want.partNumber, problem: 'wrong_size', expected: want.size, actual: have.size });
    } else if (want.etag && normalizeEtag(want.etag) !== normalizeEtag(have.etag)) {
      report({ partNumber: want.partNumber, problem: 'wrong_etag', expected: want.etag, actual: have.etag });
    }
  }

  const highest = Math.max(0, ...stored.keys(), ...input.expected.map((part) => part.partNumber));
  const count = input.partCount ?? highest;
  const parts: StoredPart[] = [];
  for (let partNumber = 1; partNumber <= count; partNumber++) {
    const part = stored.get(partNumber);
    if (!part) {
      report({ partNumber, problem: 'missing' });
      continue;
    }
    // "Each part must be at least 5 MB in size, except the last part."
    if (partNumber < count && part.size < S3_LIMITS.minPartSize) {
      report({ partNumber, problem: 'too_small', actual: part.size });
    }
    parts.push(part);
  }
  for (const partNumber of stored.keys()) {
    if (partNumber > count) report({ partNumber, problem: 'unexpected' });
  }
  if (count === 0) report({ partNumber: 1, problem: 'missing' });

  const storedBytes = sumOfSizes(parts);
  if (problems.length === 0 && input.totalSize !== null && storedBytes !== input.totalSize) {
    report({ partNumber: 0, problem: 'wrong_total', expected: input.totalSize, actual: storedBytes });
  }
  problems.sort((a, b) => a.partNumber - b.partNumber);
  return { problems, parts: problems.length === 0 ? parts : [], storedBytes };
}

/** "missing parts 3, 7; part 5: ETag differs" – the message a 409 carries. */
export function describePartProblems(problems: readonly PartProblem[]): string {
  const missing = problems.filter((p) => p.problem === 'missing').map((p) => p.partNumber);
  const rest = problems
    .filter((p) => p.problem !== 'missing')
    .map((p) => {
      switch (p.problem) {
        case 'wrong_etag':
          return `part ${p.partNumber}: ETag ${p.actual} in storage, ${p.expected} expected`;
        case 'wrong_size':
          return `part ${p.partNumber}: ${p.actual} bytes in storage, ${p.expected} expected`;
        case 'too_small':
          return `part ${p.partNumber}: ${p.actual} bytes, below S3's 5 MiB minimum for all but the last part`;
        case 'unexpected':
          return `part ${p.partNumber}: beyond the planned parts`;
        case 'wrong_total':
          return `the parts hold ${p.actual} bytes but the upload is ${p.expected} bytes`;
        default:
          return '';
      }
    });
  return [missing.length > 0 ? `missing parts ${missing.join(', ')}` : '', ...rest].filter(Boolean).join('; ');
}

/** The bytes the parts hold together. */
export const sumOfSizes = (parts: ReadonlyArray<{ size: number }>): number =>
  parts.reduce((sum, part) => sum + part.size, 0);

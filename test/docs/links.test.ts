/**
 * The documentation holds together: every relative link in README.md, BENCHMARKS.md and docs/*.md names a file that
 * exists and, with a `#fragment`, a heading of that page (GitHub's anchors); the front page and the docs index link
 * every page of docs/. No network: links with a scheme (https:, mailto:) are not followed.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';

const root = path.resolve(import.meta.dirname, '..', '..');
const docsDir = path.join(root, 'docs');
const docPages = readdirSync(docsDir)
  .filter((name) => name.endsWith('.md'))
  .map((name) => path.join(docsDir, name));
const pages = [path.join(root, 'README.md'), path.join(root, 'BENCHMARKS.md'), ...docPages];

/** The page's prose: fenced code blocks and inline code hold examples, not links. */
function prose(markdown: string): string[] {
  let fenced = false;
  const lines: string[] = [];
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      lines.push('');
      continue;
    }
    lines.push(fenced ? '' : line.replace(/`[^`]*`/g, ''));
  }
  return lines;
}

/** Link targets of `[text](target)` and `![alt](target)`, with the line each is on. */
function linksOf(markdown: string): { target: string; line: number }[] {
  return prose(markdown).flatMap((text, index) =>
    [...text.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((match) => ({
      target: match[1]!,
      line: index + 1,
    })),
  );
}

/**
 * The anchors GitHub gives a page's headings: the heading's text lowercased, without markup and punctuation (letters,
 * digits, spaces, `-` and `_` stay), spaces made `-`; a repeated anchor gets `-1`, `-2` … appended.
 */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = heading[1]!.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** What is wrong with a relative link from `page`, or undefined when it resolves. */
function brokenLink(page: string, target: string): string | undefined {
  const [file = '', fragment] = target.split('#', 2);
  const resolved = file === '' ? page : path.resolve(path.dirname(page), decodeURIComponent(file));
  if (!existsSync(resolved)) return `no file ${path.relative(root, resolved)}`;
  if (fragment === undefined) return undefined;
  if (statSync(resolved).isDirectory() || !resolved.endsWith('.md')) return `a #fragment on a non-page`;
  const anchors = anchorsOf(readFileSync(resolved, 'utf8'));
  return anchors.has(decodeURIComponent(fragment))
    ? undefined
    : `no heading #${fragment} in ${path.relative(root, resolved)}`;
}

describe('the documentation links', () => {
  test('every relative link in README.md, BENCHMARKS.md and docs/ resolves to a file and a heading', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const page of pages) {
      for (const { target, line } of linksOf(readFileSync(page, 'utf8'))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        checked++;
        const problem = brokenLink(page, target);
        if (problem) broken.push(`${path.relative(root, page)}:${line}: (${target}) ${problem}`);
      }
    }
    expect(broken).toEqual([]);
    expect(checked).toBeGreaterThan(docPages.length);
  });

  test('the front page and the docs index link every page of docs/', () => {
    for (const index of [path.join(root, 'README.md'), path.join(docsDir, 'README.md')]) {
      const linked = new Set(
        linksOf(readFileSync(index, 'utf8')).map(({ target }) =>
          path.resolve(path.dirname(index), target.split('#')[0]!),
        ),
      );
      const missing = docPages.filter((page) => page !== index && !linked.has(page));
      expect(
        missing.map((page) => path.relative(root, page)),
        `pages ${path.relative(root, index)} misses`,
      ).toEqual([]);
    }
  });

  test('the anchors are the ones GitHub makes', () => {
    const anchors = anchorsOf('# The `freight` command\n## Why Freight has its own S3 DataStore\n## Tests\n## Tests\n');
    expect([...anchors]).toEqual(['the-freight-command', 'why-freight-has-its-own-s3-datastore', 'tests', 'tests-1']);
  });
});

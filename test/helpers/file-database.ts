/** Where test/e2e-setup.ts leaves the URL of the running file's own database (see testDatabaseUrl in harness.ts). */
export const FILE_DATABASE_ENV = 'FREIGHT_TEST_FILE_DATABASE_URL';

/** The database of the running e2e file: a migrated copy of the run's template, dropped after the file. */
export function testDatabaseUrl(): string {
  const url = process.env[FILE_DATABASE_ENV];
  if (!url) throw new Error(`no ${FILE_DATABASE_ENV}: test/e2e-setup.ts runs for *.e2e.test.ts files only`);
  return url;
}

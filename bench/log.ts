/** The benchmark's progress lines, on stdout with the time of day. */
export const log = (message: string): void =>
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);

/** The ground truth file: one LabHost per line (JSONL), in address order. */
import { writeFile } from 'node:fs/promises';
import type { LabHost } from './estate.js';

export function truthJsonl(hosts: readonly LabHost[]): string {
  let s = '';
  for (const h of hosts) s += `${JSON.stringify(h)}\n`;
  return s;
}

export async function writeTruthFile(path: string, hosts: readonly LabHost[]): Promise<void> {
  await writeFile(path, truthJsonl(hosts), 'utf8');
}

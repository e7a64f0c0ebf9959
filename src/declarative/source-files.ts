import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { DECLARATIVE_FILE, MAX_DECLARATIVE_FILE_BYTES, type SourceFile } from '../domain/declarative.js';

const codeOf = (error: unknown) => (error as { code?: string }).code;

/** A file listed a moment ago that is gone now: a ConfigMap update is swapping `..data` under us. */
class Vanished extends Error {}

async function readOnce(dir: string): Promise<SourceFile[]> {
  const names = (await readdir(dir)).filter((name) => DECLARATIVE_FILE.test(name)).sort();
  const files: SourceFile[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      // stat and readFile follow symbolic links: a ConfigMap mount's `name -> ..data/name` reads the current version.
      const info = await stat(file);
      if (!info.isFile()) continue;
      if (info.size > MAX_DECLARATIVE_FILE_BYTES) {
        files.push({ name, unreadable: `the file is larger than ${MAX_DECLARATIVE_FILE_BYTES} bytes` });
        continue;
      }
      files.push({ name, text: await readFile(file, 'utf8') });
    } catch (error) {
      if (codeOf(error) === 'ENOENT') throw new Vanished(name);
      files.push({ name, unreadable: `the file cannot be read (${codeOf(error) ?? String(error)})` });
    }
  }
  return files;
}

/**
 * The declarative files of a directory (`*.yaml`, `*.yml`, `*.json`; names
 * starting with a dot, such as a ConfigMap's `..data`, are not read), each
 * with its text or why it could not be read. Not recursive. A file that
 * disappears while the directory is read makes it be read again once; one
 * that stays a dangling link is reported as unreadable.
 *
 * @throws Error when the directory itself cannot be listed
 */
export async function readSourceFiles(dir: string): Promise<SourceFile[]> {
  try {
    return await readOnce(dir);
  } catch (error) {
    if (!(error instanceof Vanished)) throw error;
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  try {
    return await readOnce(dir);
  } catch (error) {
    if (!(error instanceof Vanished)) throw error;
    return [{ name: error.message, unreadable: 'the file cannot be read (it is a link to nothing)' }];
  }
}

/** A digest of every file's name and content: the files changed when it changes. */
export function contentHash(files: readonly SourceFile[]): string {
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(JSON.stringify([file.name, 'text' in file ? file.text : `unreadable: ${file.unreadable}`]));
  }
  return hash.digest('hex');
}

import { stringEnd } from './json-text.js';
import { isJsonObject, type JsonObject } from './problems.js';

export interface UnverifiedJws {
  readonly header: JsonObject;
  readonly payload: JsonObject;
  /**
   * The text `payload` was parsed from. Once the token is verified these are
   * the signed bytes, and they keep numbers as written where JSON.parse rounds.
   */
  readonly payloadText: string;
}

export class MalformedJwsError extends Error {
  override readonly name = 'MalformedJwsError';
}

const BASE64URL_SEGMENT = /^[A-Za-z0-9_-]*$/;

/**
 * Decodes a compact JWS (RFC 7515 §7.1) without verifying it, only to pick the
 * config by `iss`. A member name given twice in the header or payload is
 * refused (docs/reference.md §3.2): JSON.parse keeps the last one, and the issuer that
 * chose the config must be the bytes that are verified.
 *
 * @throws MalformedJwsError
 */
export function decodeUnverifiedJws(token: string): UnverifiedJws {
  const segments = token.split('.');
  if (
    segments.length !== 3 ||
    !segments.every((s) => BASE64URL_SEGMENT.test(s)) ||
    segments[0] === '' ||
    segments[1] === ''
  ) {
    throw new MalformedJwsError('not a compact JWS');
  }
  const payloadText = segmentText(segments[1]!);
  return {
    header: parseSegment(segmentText(segments[0]!), 'header'),
    payload: parseSegment(payloadText, 'payload'),
    payloadText,
  };
}

const segmentText = (segment: string) => Buffer.from(segment, 'base64url').toString('utf8');

function parseSegment(text: string, part: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MalformedJwsError(`the ${part} is not JSON`);
  }
  if (!isJsonObject(value)) throw new MalformedJwsError(`the ${part} is not a JSON object`);
  if (hasDuplicateMember(text)) throw new MalformedJwsError(`the ${part} has a duplicated member name`);
  return value;
}

/**
 * Whether any object in a valid JSON text names a member twice. Walks the
 * text once with a stack of the names seen per open object.
 */
export function hasDuplicateMember(json: string): boolean {
  const objects: Set<string>[] = [];
  const containers: ('{' | '[')[] = [];
  let expectingName = false;
  for (let i = 0; i < json.length; i++) {
    const char = json[i];
    if (char === '"') {
      const end = stringEnd(json, i);
      if (expectingName) {
        const raw = json.slice(i + 1, end);
        const name = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        const seen = objects[objects.length - 1]!;
        if (seen.has(name)) return true;
        seen.add(name);
        expectingName = false;
      }
      i = end;
    } else if (char === '{') {
      objects.push(new Set());
      containers.push('{');
      expectingName = true;
    } else if (char === '[') {
      containers.push('[');
    } else if (char === '}' || char === ']') {
      if (containers.pop() === '{') objects.pop();
      expectingName = false;
    } else if (char === ',') {
      expectingName = containers[containers.length - 1] === '{';
    }
  }
  return false;
}

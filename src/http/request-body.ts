import type { IncomingMessage } from 'node:http';
import express, { type Request, type RequestHandler } from 'express';
import { invalidArgument } from '../errors.js';
import { hasDuplicateMember } from '../domain/jws.js';
import { isJsonObject, type JsonObject } from '../domain/problems.js';
import type { PlainHandler } from './direct-route.js';

/**
 * Reads a body as JSON whatever its Content-Type, as grpc-gateway does (docs/reference.md
 * §2: curl -d sends application/x-www-form-urlencoded). An empty body is `{}`.
 */
export function jsonBody(limitBytes: number): RequestHandler[] {
  return [express.raw({ type: () => true, limit: limitBytes }), parseJsonBody];
}

/** The bytes express.raw left in `req.body`, as JSON: jsonBody's second half. */
export const parseJsonBody: PlainHandler = (req, _res, next) => {
  const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
  if (raw.trim() === '') {
    req.body = {};
    return next();
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalidArgument('request body is not valid JSON');
  }
  if (!isJsonObject(parsed)) throw invalidArgument('request body must be a JSON object');
  if (hasDuplicateMember(raw)) throw invalidArgument('request body names a field twice');
  if (hasUnstorableString(parsed)) {
    throw invalidArgument('request body has a string with a NUL character or an unpaired surrogate');
  }
  req.body = parsed;
  next();
};

/**
 * Whether a body can be read as plain bytes: a Content-Length within the
 * limit and no Content-Encoding, so that what express.raw would do with it is
 * to collect it. Any other body is left to express.raw, which applies the
 * limit (413) and the content codings.
 */
export const isPlainBodyWithin =
  (limitBytes: number) =>
  ({ headers }: IncomingMessage): boolean =>
    Number(headers['content-length']) <= limitBytes &&
    headers['content-encoding'] === undefined &&
    headers['transfer-encoding'] === undefined;

/**
 * express.raw for a body `isPlainBodyWithin` accepted: its bytes in
 * `req.body`. Node's parser ends the body at Content-Length; a client that
 * goes away before is not answered.
 */
export const readPlainBody: PlainHandler = (req, _res, next) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.once('end', () => {
    req.body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    next();
  });
  req.once('error', () => req.socket.destroy());
};

const isUnstorable = (text: string) => text.includes('\0') || !text.isWellFormed();

/**
 * PostgreSQL text holds neither NUL nor unpaired surrogates: such input is
 * refused here, not failed on in the database. Iterative, as bodies may nest
 * deeper than the stack allows.
 */
function hasUnstorableString(body: unknown): boolean {
  const pending = [body];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (isUnstorable(value)) return true;
    } else if (typeof value === 'object' && value !== null) {
      for (const [name, member] of Object.entries(value)) pending.push(name, member);
    }
  }
  return false;
}

const camelCase = (name: string) => name.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());

/** Fields whose values are free-form JSON, never message fields: their names are left as they are. */
const OPAQUE_FIELDS = new Set(['claims']);

/** No request message of the API nests deeper than this; deeper input is refused before any recursion. */
const MAX_BODY_DEPTH = 16;

/**
 * protojson accepts a field by its JSON name (`idToken`) or its proto name
 * (`id_token`), and refuses a message that gives both (docs/reference.md §2).
 *
 * @throws GatewayError INVALID_ARGUMENT when a field is given twice or the body nests too deeply
 */
export function withJsonFieldNames(value: unknown, depth = 0): unknown {
  if (depth > MAX_BODY_DEPTH) throw invalidArgument('request body is nested too deeply');
  if (Array.isArray(value)) return value.map((item) => withJsonFieldNames(item, depth + 1));
  if (!isJsonObject(value)) return value;
  const result: JsonObject = {};
  for (const [name, field] of Object.entries(value)) {
    const jsonName = camelCase(name);
    if (Object.hasOwn(result, jsonName)) throw invalidArgument(`field ${JSON.stringify(jsonName)} is given twice`);
    // A claim set is free-form JSON (google.protobuf.Struct in protojson terms): its keys are the issuer's.
    result[jsonName] = OPAQUE_FIELDS.has(jsonName) ? field : withJsonFieldNames(field, depth + 1);
  }
  return result;
}

/**
 * A named route parameter; the route guarantees it is there. Refused when
 * PostgreSQL text could not hold it, like a body's strings.
 *
 * @throws GatewayError INVALID_ARGUMENT on a NUL character or an unpaired surrogate
 */
export function pathParam(req: Request, name: string): string {
  const value: unknown = req.params[name];
  if (typeof value !== 'string') throw new TypeError(`route has no :${name} parameter`);
  if (isUnstorable(value)) throw invalidArgument('request path has a NUL character or an unpaired surrogate');
  return value;
}

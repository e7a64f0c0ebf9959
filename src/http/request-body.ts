import express, { type Request, type RequestHandler } from 'express';
import { invalidArgument } from '../errors.js';
import { hasDuplicateMember } from '../domain/jws.js';
import { isJsonObject, type JsonObject } from '../domain/problems.js';

/**
 * Reads a body as JSON whatever its Content-Type, as grpc-gateway does (SPEC
 * §2: curl -d sends application/x-www-form-urlencoded). An empty body is `{}`.
 */
export function jsonBody(limitBytes: number): RequestHandler[] {
  return [
    express.raw({ type: () => true, limit: limitBytes }),
    (req, _res, next) => {
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
      req.body = parsed;
      next();
    },
  ];
}

const camelCase = (name: string) => name.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());

/** No request message of the API nests deeper than this; deeper input is refused before any recursion. */
const MAX_BODY_DEPTH = 16;

/**
 * protojson accepts a field by its JSON name (`idToken`) or its proto name
 * (`id_token`), and refuses a message that gives both (SPEC §2).
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
    result[jsonName] = withJsonFieldNames(field, depth + 1);
  }
  return result;
}

/** A named route parameter; the route guarantees it is there. */
export function pathParam(req: Request, name: string): string {
  const value: unknown = req.params[name];
  if (typeof value !== 'string') throw new TypeError(`route has no :${name} parameter`);
  return value;
}

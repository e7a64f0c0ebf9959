import type { ServerResponse } from 'node:http';

/**
 * Answers 200 with a JSON body in one socket write: headers and body as one
 * string, Content-Length set by Node. Express's `res.json` turns a body of
 * 1 000 characters or more into a Buffer written beside the headers, and a
 * minted token's answer is just over that; this is the exchange hot path.
 */
export function sendJson(res: ServerResponse, body: unknown): void {
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(body));
}

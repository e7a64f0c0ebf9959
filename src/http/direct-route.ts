import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler, Express, Request, RequestHandler, Response } from 'express';

export interface DirectRoute {
  readonly method: string;
  /** The path exactly as sent: other spellings that Express routes alike (query, case, trailing slash) go through it. */
  readonly path: string;
  /** Whether this request may skip the router; the others go through Express, which applies every rule. */
  readonly qualifies: (req: IncomingMessage) => boolean;
  /** What Express runs for the route, in order, from the app's first middleware to the handler that answers. */
  readonly handlers: readonly RequestHandler[];
  /** The error handler Express would reach. */
  readonly onError: ErrorRequestHandler;
}

type Handle = (req: IncomingMessage, res: ServerResponse, done?: (error?: unknown) => void) => void;

/**
 * Runs one route's own middleware and handlers in order, as Express's router
 * would, without the router: on the exchange, matching every layer and the
 * bookkeeping around each took 10–20 % of the CPU per request
 * (docs/performance.md). `app` stays the one entry point, so tests that drive
 * it take the same way; every other request goes to Express.
 */
export function withDirectRoute(app: Express, route: DirectRoute): Express {
  const express = app as unknown as { handle: Handle };
  const handle = express.handle;
  express.handle = function (this: unknown, incoming, outgoing, done) {
    if (incoming.method !== route.method || incoming.url !== route.path || !route.qualifies(incoming)) {
      return handle.call(this, incoming, outgoing, done);
    }
    // What Express's app.handle does before routing: the handlers get Express's request and response.
    const req = Object.setPrototypeOf(incoming, app.request) as Request;
    const res = Object.setPrototypeOf(outgoing, app.response) as Response;
    req.res = res;
    res.req = req;
    res.locals ??= Object.create(null);
    // After Express's Layer: a thrown error or a rejected promise goes to the error handler.
    let index = 0;
    const next = (error?: unknown): void => {
      if (error) {
        route.onError(error, req, res, () => req.socket.destroy());
        return;
      }
      const handler = route.handlers[index++];
      if (!handler) throw new TypeError(`the direct route ${route.path} ended without an answer`);
      try {
        const result: unknown = handler(req, res, next);
        if (result instanceof Promise)
          result.catch((rejected: unknown) => next(rejected || new Error('Rejected promise')));
      } catch (thrown) {
        next(thrown);
      }
    };
    next();
  };
  return app;
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler, Express, Request, Response } from 'express';

/** A request as Node made it, with what our middleware adds: Express's Request is one too. */
export interface PlainRequest extends IncomingMessage {
  body?: unknown;
}

/**
 * Middleware that needs nothing of Express: it runs on the direct route with
 * Node's own request and response, and in Express's router like any other.
 */
export type PlainHandler = (req: PlainRequest, res: ServerResponse, next: (error?: unknown) => void) => unknown;

export interface DirectRoute {
  readonly method: string;
  /** The path exactly as sent: other spellings that Express routes alike (query, case, trailing slash) go through it. */
  readonly path: string;
  /** Whether this request may skip the router; the others go through Express, which applies every rule. */
  readonly qualifies: (req: IncomingMessage) => boolean;
  /** What Express runs for the route, in order, from the app's first middleware to the handler that answers. */
  readonly handlers: readonly PlainHandler[];
  /** The error handler Express would reach. */
  readonly onError: ErrorRequestHandler;
}

type Handle = (req: IncomingMessage, res: ServerResponse, done?: (error?: unknown) => void) => void;

/**
 * Runs one route's own middleware and handlers in order, as Express's router
 * would, without the router and without Express's request and response: on
 * the exchange, matching every layer took 10–20 % of the CPU per request, and
 * giving every request Express's prototypes (`Object.setPrototypeOf`, which
 * V8 makes every later property access on the object pay for) about as much
 * again (docs/performance.md). Only an error, answered by the app's own error
 * handler, gets them. `app` stays the one entry point, so tests that drive it
 * take the same way; every other request goes to Express.
 */
export function withDirectRoute(app: Express, route: DirectRoute): Express {
  const express = app as unknown as { handle: Handle };
  const handle = express.handle;
  express.handle = function (this: unknown, req: PlainRequest, res, done) {
    if (req.method !== route.method || req.url !== route.path || !route.qualifies(req)) {
      return handle.call(this, req, res, done);
    }
    const fail = (error: unknown) => {
      // What Express's app.handle does before routing, so that the error handler gets what it always gets.
      const request = Object.setPrototypeOf(req, app.request) as Request;
      const response = Object.setPrototypeOf(res, app.response) as Response;
      request.res = response;
      response.req = request;
      response.locals ??= Object.create(null);
      route.onError(error, request, response, () => req.socket.destroy());
    };
    // After Express's Layer: a thrown error or a rejected promise goes to the error handler.
    let index = 0;
    const next = (error?: unknown): void => {
      if (error) return fail(error);
      const handler = route.handlers[index++];
      if (!handler) throw new TypeError(`the direct route ${route.path} ended without an answer`);
      try {
        const result: unknown = handler(req, res, next);
        if (result instanceof Promise)
          result.catch((rejected: unknown) => fail(rejected || new Error('Rejected promise')));
      } catch (thrown) {
        fail(thrown);
      }
    };
    next();
  };
  return app;
}

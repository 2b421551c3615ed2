// A WebSocket where each message is one request: the key checked on upgrade and again, with the rate
// limits, on every message; JSON and schema checks; one request at a time per socket; a closed socket
// cancelling its request. The wire format (replies and how errors are framed) is the route's.
import type { Static, TSchema } from "@sinclair/typebox";
import type { TypeCheck } from "@sinclair/typebox/compiler";
import type { Authenticator } from "./auth.ts";
import { ApiError, toApiError } from "./errors.ts";
import { validationMessage, validationParam } from "./validation.ts";

/** The part of Elysia's socket object used here. */
interface Socket {
  id: string;
  data: unknown;
  send(frame: string): unknown;
}

/** One valid message, handed to the route. */
export interface SocketRequest<T, S, P> {
  body: T;
  /** The caller as of this message (null with --no-auth). */
  principal: P | null;
  /** Aborted when the socket closes: the request is cancelled and nothing more can be sent. */
  signal: AbortSignal;
  /** The route's state for this socket (made by `open`). */
  state: S;
  send(frame: string): void;
}

export interface RequestSocket<Schema extends TSchema, S, P> {
  /** Keys and rate limits; null with --no-auth. */
  auth: Authenticator<P> | null;
  validator: TypeCheck<Schema>;
  /** Runs on each parsed message before validation (e.g. drops unknown fields). */
  prepare?(body: unknown): void;
  /** What a message that is not JSON is told. */
  notJson: string;
  /** What a message sent while a request is still running is told. */
  busy: string;
  /** Frames an error as the client expects it. */
  error(err: ApiError): string;
  /** The route's state for a new socket (the upgrade request carries e.g. its query options). */
  open(request: Request | undefined): S;
  /** Runs one request; what it throws is sent through `error`. */
  handle(req: SocketRequest<Static<Schema>, S, P>): Promise<void>;
  /** A frame sent after each request ran (answered or failed), unless the socket closed. */
  after?: string;
}

interface SocketState<S, P> {
  busy: AbortController | null;
  principal: P | null;
  route: S;
}

/**
 * The GET handler of a WebSocket-only path, for a request without the upgrade: 426 in OpenAI's
 * shape (Elysia routes upgrades to the `.ws()` handler and anything else here).
 */
export function upgradeRequired(path: string) {
  return () => {
    throw new ApiError("upgrade_required", `GET ${path} is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket).`, null, { Upgrade: "websocket" });
  };
}

/** The handlers of an Elysia `.ws()` route (spread them in next to `detail`). */
export function requestSocket<Schema extends TSchema, S, P>(o: RequestSocket<Schema, S, P>) {
  const sockets = new Map<string, SocketState<S, P>>();
  const requestOf = (ws: Socket) => (ws.data as { request?: Request }).request;
  return {
    // Browsers cannot set headers on a WebSocket: the key may also come as ?api_key=.
    async beforeHandle({ request }: { request: Request }) {
      if (o.auth) await o.auth.authenticate(request);
    },
    async open(ws: Socket) {
      const request = requestOf(ws);
      // Registered before the key is looked up, so a message arriving meanwhile finds the socket.
      const state: SocketState<S, P> = { busy: null, principal: null, route: o.open(request) };
      sockets.set(ws.id, state);
      if (o.auth && request) state.principal = await o.auth.authenticate(request).catch(() => null);
    },
    close(ws: Socket) {
      // A closed socket cancels whatever it was generating.
      sockets.get(ws.id)?.busy?.abort();
      sockets.delete(ws.id);
    },
    async message(ws: Socket, raw: unknown) {
      const state = sockets.get(ws.id);
      if (!state) return;
      const send = (frame: string) => void ws.send(frame);
      const fail = (err: ApiError) => send(o.error(err));
      // A binary frame is never a request (whatever its bytes): say so rather than report a missing field.
      if (raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) {
        fail(new ApiError("invalid_request", "send the request as a JSON text frame"));
        return;
      }
      let body: unknown = raw;
      if (typeof raw === "string") {
        try {
          body = JSON.parse(raw);
        } catch {
          fail(new ApiError("invalid_json", o.notJson));
          return;
        }
      }
      o.prepare?.(body);
      if (!o.validator.Check(body)) {
        const first = o.validator.Errors(body).First();
        const param = first ? validationParam(first.path) : null;
        fail(new ApiError("invalid_request", validationMessage(param, first?.message ?? "invalid message", first?.value, first?.schema, first?.type), param));
        return;
      }
      if (state.busy) {
        fail(new ApiError("invalid_request", o.busy));
        return;
      }
      const ac = new AbortController();
      state.busy = ac;
      try {
        // Each message is a request: the key is checked again (it may have been revoked since the
        // socket opened) and counts against the rate limits.
        const request = requestOf(ws);
        if (o.auth && request) {
          state.principal = await o.auth.authenticate(request);
          await o.auth.admit(state.principal);
        }
        await o.handle({ body, principal: state.principal, signal: ac.signal, state: state.route, send });
      } catch (err) {
        if (!ac.signal.aborted) fail(toApiError(err));
      } finally {
        state.busy = null;
        if (o.after !== undefined && !ac.signal.aborted) send(o.after);
      }
    },
  };
}

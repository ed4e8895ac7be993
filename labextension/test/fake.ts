import { ServerConnection } from '@jupyterlab/services';

export interface ICall {
  url: string;
  method: string;
  body: string | null;
}

/** Settings whose fetch answers from `routes` ("METHOD path" → [status, body]) and records each call. */
export function fakeServer(routes: Record<string, [number, unknown] | ((call: ICall) => [number, unknown])>) {
  const calls: ICall[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = input instanceof Request ? input : new Request(String(input), init);
    const url = new URL(request.url);
    const call = {
      url: url.pathname + url.search,
      method: request.method,
      body: init?.body ? String(init.body) : null
    };
    if (!call.body && request.body) {
      call.body = await request.text();
    }
    calls.push(call);
    const key = `${call.method} ${url.pathname.replace('/lab-base/mlops/api/', '')}`;
    const route = routes[key];
    if (!route) {
      return new Response('<html>404: Not Found</html>', { status: 404, headers: { 'Content-Type': 'text/html' } });
    }
    const [status, body] = typeof route === 'function' ? route(call) : route;
    return new Response(body === null ? null : JSON.stringify(body), {
      status,
      headers: { 'Content-Type': 'application/json' }
    });
  };
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/lab-base/',
    wsUrl: 'ws://localhost:8888/lab-base/',
    token: 'secret',
    fetch: fetch as typeof globalThis.fetch,
    Request,
    Headers
  });
  return { settings, calls };
}

export function version(name: string, n: number, tags: Record<string, string> = {}) {
  return {
    name,
    version: n,
    tags,
    aliases: [],
    description: null,
    source: `file:///a/${n}`,
    run_id: null,
    created_by: 'tester',
    created_at: null,
    archived: false
  };
}

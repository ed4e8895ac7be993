import { describe, expect, it } from 'vitest';

import * as api from '../src/api';
import { fakeServer, version } from './fake';

describe('requestAPI', () => {
  it('joins the base URL, sends the token and parses JSON', async () => {
    const { settings, calls } = fakeServer({ 'GET models': [200, { versions: [version('churn', 1)] }] });
    const result = await api.listModelVersions({ filter: 'stage=prod,team=risk' }, settings);
    expect(result.versions[0].name).toBe('churn');
    // (ServerConnection adds a cache-busting number to GETs)
    expect(calls[0].url).toMatch(/^\/lab-base\/mlops\/api\/models\?filter=stage%3Dprod%2Cteam%3Drisk(&\d+)?$/);
  });

  it('turns an error body into an MlopsApiError with its message and class', async () => {
    const { settings } = fakeServer({
      'DELETE models/churn/versions/1': [
        409,
        {
          message: 'Cannot delete churn:1: used by scoring/blue',
          error: 'ModelInUseError',
          data: { deployments: ['scoring/blue'] }
        }
      ]
    });
    const error = await api.deleteModelVersion('churn', 1, {}, settings).catch(e => e);
    expect(error).toBeInstanceOf(api.MlopsApiError);
    expect(error.status).toBe(409);
    expect(error.message).toContain('scoring/blue');
    expect(error.errorName).toBe('ModelInUseError');
    expect(error.data).toEqual({ deployments: ['scoring/blue'] });
  });

  it('says how to enable the server extension on a bare 404', async () => {
    const { settings } = fakeServer({});
    const error = await api.listRuns({}, settings).catch(e => e);
    expect(error.status).toBe(404);
    expect(error.message).toContain('jupyter server extension enable jupyter_mlops');
  });

  it('keeps an API 404 message (unknown model) as it is', async () => {
    const { settings } = fakeServer({
      'GET models/chrun': [404, { message: "No model named 'chrun'.", error: 'NotFound' }]
    });
    const error = await api.getModel('chrun', settings).catch(e => e);
    expect(error.message).toBe("No model named 'chrun'.");
  });

  it('encodes path segments and sends JSON bodies', async () => {
    const { settings, calls } = fakeServer({
      'PUT models/my%20model/aliases/champion': [200, version('my model', 2)],
      'POST models/my%20model/versions': [201, version('my model', 3)],
      'PATCH models/my%20model/versions/2': [200, version('my model', 2)],
      'DELETE models/my%20model/aliases/champion': [204, null]
    });
    await api.setModelAlias('my model', 'champion', 2, settings);
    await api.registerModelVersion('my model', { source: 'runs:/abc/model', tags: { a: 'b' } }, settings);
    await api.updateModelVersion('my model', 2, { archived: true }, settings);
    expect(await api.deleteModelAlias('my model', 'champion', settings)).toBeNull();
    expect(calls.map(c => c.method)).toEqual(['PUT', 'POST', 'PATCH', 'DELETE']);
    expect(JSON.parse(calls[0].body!)).toEqual({ version: 2 });
    expect(JSON.parse(calls[1].body!)).toEqual({ source: 'runs:/abc/model', tags: { a: 'b' } });
  });

  it('builds the event stream URL with the token', () => {
    const { settings } = fakeServer({});
    expect(api.eventsURL(settings)).toBe('http://localhost:8888/lab-base/mlops/api/events?token=secret');
  });
});

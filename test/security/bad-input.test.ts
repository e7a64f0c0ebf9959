/**
 * Malformed input of any kind (bad Content-Encoding, too many form fields,
 * out-of-range or unknown query values) answers 4xx with the endpoint's own
 * error body, never 500, and is not logged as a server fault.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { pino } from 'pino';
import request from 'supertest';
import { ADMIN_AUTH, errorBody, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
const AUDIT_PARAMETERS = 'configId, outcome, since, limit, pageToken';

let gateway: TestGateway;
/** Every line logged at error level or above; each test must leave it empty. */
const errorLines: string[] = [];

beforeAll(async () => {
  const logger = pino({ level: 'error' }, { write: (line: string) => void errorLines.push(line) });
  gateway = await startTestGateway({ EXCHANGE_RATE_LIMIT: '0' }, { logger });
});

afterEach(() => {
  expect(errorLines.splice(0)).toEqual([]);
});

afterAll(async () => {
  await gateway.close();
  await gateway.database.drop();
});

const api = () => request(gateway.app);
const audit = (query: string) => api().get(`/v1/audit${query}`).set('Authorization', ADMIN_AUTH);
const oauthError = (error: string, description: string) => ({ error, error_description: description });
/** superagent serialises a Buffer by the Content-Type (JSON, form); these tests send their bytes as they are. */
const verbatim = (bytes: Buffer) => bytes as unknown as string;

const COMPRESS: Record<string, (data: Buffer) => Buffer> = {
  gzip: (data) => gzipSync(data),
  deflate: (data) => deflateSync(data),
  br: (data) => brotliCompressSync(data),
};

/** The three kinds of body reader: the exchange, an admin write, and the RFC 8693 form. */
const ENDPOINTS = {
  'POST /v1/auth/m2m/exchange': {
    post: () => api().post('/v1/auth/m2m/exchange').set('Content-Type', 'application/json'),
    body: Buffer.from('{"idToken":"a.b.c"}'),
    refusal: (status: number, message: string) => ({ status, body: errorBody(3, message) }),
  },
  'POST /v1/auth/m2m': {
    post: () => api().post('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).set('Content-Type', 'application/json'),
    body: Buffer.from('{"config":{}}'),
    refusal: (status: number, message: string) => ({ status, body: errorBody(3, message) }),
  },
  'POST /oauth2/token': {
    post: () => api().post('/oauth2/token').set('Content-Type', 'application/x-www-form-urlencoded'),
    body: Buffer.from(`grant_type=${encodeURIComponent(GRANT)}&subject_token=a.b.c`),
    refusal: (status: number, message: string) => ({ status, body: oauthError('invalid_request', message) }),
  },
};
type Endpoint = keyof typeof ENDPOINTS;
const endpointNames = Object.keys(ENDPOINTS) as Endpoint[];

/** Bodies that are not what their Content-Encoding says, from a well-formed `body`. */
const CORRUPT: Record<string, (body: Buffer, compress: (data: Buffer) => Buffer) => Buffer> = {
  'bytes that are not compressed at all': (body) => body,
  'a compressed body cut short': (body, compress) => compress(body).subarray(0, 8),
  'an empty body': () => Buffer.alloc(0),
};

describe('Content-Encoding', () => {
  const cases = endpointNames.flatMap((endpoint) =>
    Object.keys(COMPRESS).flatMap((coding) => Object.keys(CORRUPT).map((what) => [endpoint, coding, what] as const)),
  );

  it.each(cases)('%s refuses a %s body of %s with 400', async (endpoint, coding, what) => {
    const { post, body, refusal } = ENDPOINTS[endpoint];
    const sent = CORRUPT[what]!(body, COMPRESS[coding]!);
    const response = await post().set('Content-Encoding', coding).serialize(verbatim).send(sent);
    expect({ status: response.status, body: response.body }).toEqual(
      refusal(400, `request body is not valid ${coding} data`),
    );
  });

  it.each(Object.keys(COMPRESS))('still reads a well-formed %s body', async (coding) => {
    const compress = COMPRESS[coding]!;
    await api()
      .post('/v1/auth/m2m/exchange')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', coding)
      .serialize(verbatim)
      .send(compress(Buffer.from('{"idToken":42}')))
      .expect(400)
      .expect(errorBody(3, 'idToken is required'));
    await api()
      .post('/oauth2/token')
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .set('Content-Encoding', coding)
      .serialize(verbatim)
      .send(compress(Buffer.from('grant_type=password')))
      .expect(400)
      .expect(oauthError('unsupported_grant_type', `grant_type must be ${GRANT}`));
  });

  it('caps what a compressed body inflates to with 413', async () => {
    await api()
      .post('/v1/auth/m2m/exchange')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .serialize(verbatim)
      .send(gzipSync(Buffer.alloc(1024 * 1024, ' ')))
      .expect(413)
      .expect(errorBody(3, 'request body is larger than 32768 bytes'));
  });

  // RFC 9110 §15.5.16: an unsupported content coding is 415, with Accept-Encoding naming the ones that work.
  const unknown = endpointNames.flatMap((endpoint) =>
    ['compress', 'x-unheard-of', 'gzip, br'].map((coding) => [endpoint, coding] as const),
  );
  it.each(unknown)('%s refuses Content-Encoding %j with 415 and Accept-Encoding', async (endpoint, coding) => {
    const { post, body, refusal } = ENDPOINTS[endpoint];
    const response = await post().set('Content-Encoding', coding).serialize(verbatim).send(body);
    expect({ status: response.status, body: response.body }).toEqual(
      refusal(415, 'Content-Encoding must be gzip, deflate, br or identity'),
    );
    expect(response.headers['accept-encoding']).toBe('gzip, deflate, br');
  });
});

describe('form parameters on /oauth2/token', () => {
  const form = (count: number) =>
    [`grant_type=password`, ...Array.from({ length: count - 1 }, (_, i) => `p${i}=x`)].join('&');

  it('takes 20 parameters', async () => {
    await api()
      .post('/oauth2/token')
      .type('form')
      .send(form(20))
      .expect(400)
      .expect(oauthError('unsupported_grant_type', `grant_type must be ${GRANT}`));
  });

  it('refuses more than 20 parameters with 400 invalid_request', async () => {
    await api()
      .post('/oauth2/token')
      .type('form')
      .send(form(21))
      .expect(400)
      .expect(oauthError('invalid_request', 'request body has too many parameters'));
  });

  it('refuses a parameter given twice', async () => {
    await api()
      .post('/oauth2/token')
      .type('form')
      .send(`grant_type=${encodeURIComponent(GRANT)}&subject_token_type=${ID_TOKEN_TYPE}&subject_token_type=x`)
      .expect(400)
      .expect(oauthError('invalid_request', 'parameter subject_token_type is given more than once'));
  });
});

describe('GET /v1/audit', () => {
  const refused = (problem: string) => errorBody(3, `invalid audit query: ${problem}`);
  const token = (text: string) => Buffer.from(text).toString('base64url');

  it.each([
    '99999999999999999999',
    '9223372036854775808',
    '9999999999999999999',
    '18446744073709551616',
    '0',
    '-1',
    '01',
    '1.5',
  ])('refuses a pageToken holding %s', async (cursor) => {
    await audit(`?pageToken=${token(cursor)}`)
      .expect(400)
      .expect(refused('pageToken is not one this server gave'));
  });

  it('refuses a pageToken not written the way this server writes it', async () => {
    await audit('?pageToken=MQ==').expect(400).expect(refused('pageToken is not one this server gave'));
  });

  it('takes the largest pageToken a bigint id allows, and an empty one', async () => {
    await audit(`?pageToken=${token('9223372036854775807')}`).expect(200);
    await audit('?pageToken=').expect(200);
  });

  it.each([
    '-271821-04-20T00:00:00Z',
    '+275760-09-13T00:00:00Z',
    '+002024-01-01T00:00:00Z',
    '10000-01-01T00:00:00Z',
    '2024-01-01',
    '2024-01-01T00:00Z',
    '2024-01-01T00:00:00',
    '2024-01-01 00:00:00Z',
    '2024-01-01T00:00:00.Z',
    '2024-02-30T00:00:00Z',
    '2023-02-29T00:00:00Z',
    '2024-13-01T00:00:00Z',
    '2024-01-01T24:00:00Z',
    '2024-01-01T00:60:00Z',
    '2024-01-01T00:00:61Z',
    '2024-01-01T00:00:00+24:00',
    '2024-01-01T00:00:00+0100',
    'Mon, 01 Jan 2024 00:00:00 GMT',
    '1704067200000',
    '',
  ])('refuses since=%j', async (since) => {
    await audit(`?since=${encodeURIComponent(since)}`)
      .expect(400)
      .expect(refused('since must be an RFC 3339 time'));
  });

  it('refuses since in year 0000, which PostgreSQL does not have', async () => {
    await audit(`?since=${encodeURIComponent('0000-01-01T00:00:00Z')}`)
      .expect(400)
      .expect(refused('since must be from year 0001 to 9999'));
  });

  it.each([
    ['the earliest time', '0001-01-01T00:00:00Z', true],
    ['a time whose offset takes it before year 0001', '0001-01-01T00:00:00+01:00', true],
    ['a lower-case t and z (RFC 3339 §5.6)', '2000-01-01t00:00:00z', true],
    ['nanoseconds and an offset', '2000-01-01T05:30:00.123456789+05:30', true],
    ['a leap second', '2016-12-31T23:59:60Z', true],
    ['the latest time', '9999-12-31T23:59:59.999Z', false],
    ['a time whose offset takes it past year 9999', '9999-12-31T23:59:59-23:59', false],
  ])('takes since at %s', async (_what, since, seesEvents) => {
    await api().put('/v1/roles/audited').set('Authorization', ADMIN_AUTH).send({ permissions: {} }).expect(200);
    const { body } = await audit(`?since=${encodeURIComponent(since)}&limit=1`).expect(200);
    expect(body.events.length > 0).toBe(seesEvents);
  });

  it.each([
    ['?configid=5b8d2c1e-7a3f-4e6d-9c0b-1a2b3c4d5e6f', 'unknown parameter "configid"'],
    ['?outcome=refused&foo=1', 'unknown parameter "foo"'],
    ['?foo=1&foo=2', 'unknown parameter "foo"'],
    ['?outcome[]=refused', 'unknown parameter "outcome[]"'],
    ['?foo&limit=2&bar=', 'unknown parameters "foo", "bar"'],
  ])('refuses %s, naming the parameter', async (query, problem) => {
    await audit(query)
      .expect(400)
      .expect(refused(`${problem} (the parameters are ${AUDIT_PARAMETERS})`));
  });

  it.each([
    ['configId', '5b8d2c1e-7a3f-4e6d-9c0b-1a2b3c4d5e6f'],
    ['outcome', 'minted'],
    ['since', '2024-01-01T00:00:00Z'],
    ['limit', '5'],
    ['pageToken', Buffer.from('5').toString('base64url')],
  ])('refuses %s given twice', async (name, value) => {
    await audit(`?${name}=${value}&${name}=${value}`)
      .expect(400)
      .expect(refused(`${name} is given more than once`));
  });
});

describe('paths', () => {
  it('refuses a path parameter that is not valid percent-encoding with 400', async () => {
    await api()
      .get('/v1/auth/m2m/%E0%A4%A')
      .set('Authorization', ADMIN_AUTH)
      .expect(400)
      .expect(errorBody(3, 'request path is not valid percent-encoding'));
  });

  // PostgreSQL text cannot hold NUL: such a name or id must be refused before any query, not fail in one (500).
  it.each([
    ['get', '/v1/roles/%00'],
    ['post', '/v1/roles/%00'],
    ['put', '/v1/roles/a%00b'],
    ['delete', '/v1/roles/%00'],
    ['get', '/v1/auth/m2m/%00'],
    ['put', '/v1/auth/m2m/5b8d2c1e-7a3f-4e6d-9c0b-1a2b3c4d5e6f%00'],
    ['delete', '/v1/auth/m2m/%00'],
  ] as const)('refuses %s %s, a path parameter holding NUL, with 400', async (method, path) => {
    const agent = api();
    await agent[method](path)
      .set('Authorization', ADMIN_AUTH)
      .send({})
      .expect(400)
      .expect(errorBody(3, 'request path has a NUL character or an unpaired surrogate'));
  });
});

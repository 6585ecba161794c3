// End-to-end test of Sluice driven by the official `openai` npm package.
//
// e2e/node_test.go (TestOpenAINodeSDK) starts mockllm and sluice, seeds the
// providers, models and keys below, and runs `node --test e2e/node/` with:
//
//	SLUICE_BASE_URL           proxy base URL, e.g. http://127.0.0.1:P/v1
//	SLUICE_KEY                a valid Sluice key (unrestricted)
//	SLUICE_BAD_KEY            a well-formed key Sluice does not know
//	SLUICE_CHAT_MODEL         a model served by a healthy mock provider
//	SLUICE_EMBED_MODEL        a model for /v1/embeddings on the same provider
//	SLUICE_EMBED_DIMS         the mock's default embedding length
//	SLUICE_RATE_LIMITED_MODEL a model whose provider answers 429, Retry-After 3
//	SLUICE_BROKEN_MODEL       a model whose provider drops streams after 3 events
//	SLUICE_UNKNOWN_MODEL      a model name Sluice does not know
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

/** env returns the named variable or fails the run when it is unset. */
function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run this through go test -run TestOpenAINodeSDK ./e2e)`);
  return v;
}

const baseURL = env('SLUICE_BASE_URL');
const chatModel = env('SLUICE_CHAT_MODEL');
const embedModel = env('SLUICE_EMBED_MODEL');
const embedDims = Number(env('SLUICE_EMBED_DIMS'));
const rateLimitedModel = env('SLUICE_RATE_LIMITED_MODEL');
const brokenModel = env('SLUICE_BROKEN_MODEL');
const unknownModel = env('SLUICE_UNKNOWN_MODEL');

const client = new OpenAI({ baseURL, apiKey: env('SLUICE_KEY'), maxRetries: 0, timeout: 20_000 });
const badClient = new OpenAI({ baseURL, apiKey: env('SLUICE_BAD_KEY'), maxRetries: 0, timeout: 20_000 });

const messages = [{ role: 'user', content: 'Say hello to the end-to-end test.' }];

/** rejectsWith awaits fn and checks that it throws an instance of cls with status and code. */
async function rejectsWith(fn, cls, status, code) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `want ${cls.name} ${status}, got success`);
  assert.ok(err instanceof cls, `want ${cls.name}, got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, status, `status of ${err.message}`);
  if (code !== undefined) assert.equal(err.code, code, `code of ${err.message}`);
  assert.ok(err.type, `error has no type: ${err.message}`);
  assert.ok(err.message, 'error has no message');
  return err;
}

test('chat completion, non-streaming', async () => {
  const { data, response, request_id } = await client.chat.completions
    .create({ model: chatModel, messages })
    .withResponse();
  assert.equal(response.status, 200);
  assert.equal(data.object, 'chat.completion');
  assert.ok(data.id, 'no completion id');
  assert.equal(data.choices.length, 1);
  const choice = data.choices[0];
  assert.equal(choice.message.role, 'assistant');
  assert.equal(typeof choice.message.content, 'string');
  assert.ok(choice.message.content.length > 0, 'empty content');
  assert.ok(choice.finish_reason, 'no finish_reason');
  assert.ok(data.usage, 'no usage');
  assert.ok(data.usage.prompt_tokens > 0, `prompt_tokens ${data.usage.prompt_tokens}`);
  assert.ok(data.usage.completion_tokens > 0, `completion_tokens ${data.usage.completion_tokens}`);
  assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
  assert.ok(request_id, 'no x-request-id header');
  assert.equal(data._request_id, request_id);
});

test('chat completion, non-streaming, client x-request-id is echoed', async () => {
  const id = `node-e2e-${Date.now()}`;
  const data = await client.chat.completions.create(
    { model: chatModel, messages },
    { headers: { 'X-Request-Id': id } },
  );
  assert.equal(data._request_id, id);
});

test('chat completion, streaming with include_usage', async () => {
  const stream = await client.chat.completions.create({
    model: chatModel,
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length >= 2, `only ${chunks.length} chunks`);
  const last = chunks.at(-1);
  assert.ok(last.usage, `final chunk has no usage: ${JSON.stringify(last)}`);
  assert.deepEqual(last.choices, [], 'final usage chunk has choices');
  assert.ok(last.usage.prompt_tokens > 0 && last.usage.completion_tokens > 0, JSON.stringify(last.usage));
  for (const c of chunks.slice(0, -1)) {
    assert.ok(!c.usage, `usage before the final chunk: ${JSON.stringify(c)}`);
  }
  const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta?.content ?? '')).join('');
  assert.ok(text.length > 0, 'no streamed content');
  assert.ok(
    chunks.some((c) => c.choices.some((ch) => ch.finish_reason)),
    'no chunk carries a finish_reason',
  );
});

test('chat completion, streaming without include_usage', async () => {
  const stream = await client.chat.completions.create({ model: chatModel, messages, stream: true });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length >= 1, 'no chunks');
  for (const c of chunks) {
    assert.ok(!c.usage, `unrequested usage in a chunk: ${JSON.stringify(c)}`);
    assert.ok(c.choices.length > 0, `chunk without choices: ${JSON.stringify(c)}`);
  }
  const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta?.content ?? '')).join('');
  assert.ok(text.length > 0, 'no streamed content');
});

test('embeddings: SDK default (base64 on the wire) and float agree', async () => {
  const input = 'sluice end-to-end embedding';

  // The SDK sends encoding_format "base64" and decodes the answer.
  const { data: def, response } = await client.embeddings.create({ model: embedModel, input }).withResponse();
  assert.equal(response.status, 200);
  assert.equal(def.data.length, 1);
  const v64 = def.data[0].embedding;
  assert.ok(Array.isArray(v64), `default embedding is not an array: ${typeof v64}`);
  assert.equal(v64.length, embedDims);
  assert.ok(v64.every(Number.isFinite), 'non-finite value in the base64 embedding');
  assert.ok(def.usage?.prompt_tokens > 0, `usage ${JSON.stringify(def.usage)}`);

  // On the wire the answer really is a base64 string (not a float array the SDK tolerates).
  const raw = await client.embeddings.create({ model: embedModel, input }).asResponse();
  const rawBody = await raw.json();
  assert.equal(typeof rawBody.data[0].embedding, 'string', 'gateway did not answer base64 for encoding_format base64');
  assert.equal(Buffer.from(rawBody.data[0].embedding, 'base64').length, 4 * embedDims);

  const flt = await client.embeddings.create({ model: embedModel, input, encoding_format: 'float' });
  const vf = flt.data[0].embedding;
  assert.ok(Array.isArray(vf), 'float embedding is not an array');
  assert.equal(vf.length, embedDims);
  for (let i = 0; i < embedDims; i++) {
    assert.ok(Math.abs(vf[i] - v64[i]) < 1e-6, `component ${i}: float ${vf[i]} vs base64 ${v64[i]}`);
  }
});

test('embeddings: several inputs keep their order', async () => {
  const res = await client.embeddings.create({ model: embedModel, input: ['one', 'two', 'three'] });
  assert.deepEqual(
    res.data.map((d) => d.index),
    [0, 1, 2],
  );
  for (const d of res.data) assert.equal(d.embedding.length, embedDims);
});

test('models.list contains the seeded models', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  for (const want of [chatModel, embedModel]) {
    assert.ok(ids.includes(want), `${want} not in ${JSON.stringify(ids)}`);
  }
  assert.ok(!ids.includes(unknownModel), `${unknownModel} unexpectedly listed`);
});

test('bad key → AuthenticationError 401 invalid_api_key', async () => {
  const err = await rejectsWith(
    () => badClient.chat.completions.create({ model: chatModel, messages }),
    OpenAI.AuthenticationError,
    401,
    'invalid_api_key',
  );
  assert.ok(!err.message.includes(env('SLUICE_BAD_KEY')), 'error message echoes the key');
});

test('unknown model → NotFoundError 404 model_not_found', async () => {
  await rejectsWith(
    () => client.chat.completions.create({ model: unknownModel, messages }),
    OpenAI.NotFoundError,
    404,
    'model_not_found',
  );
});

test('upstream 429 → RateLimitError 429 with retry-after', async () => {
  const err = await rejectsWith(
    () => client.chat.completions.create({ model: rateLimitedModel, messages }),
    OpenAI.RateLimitError,
    429,
  );
  assert.equal(err.headers.get('retry-after'), '3');
});

test('broken upstream stream → APIError while iterating', async () => {
  const stream = await client.chat.completions.create({
    model: brokenModel,
    messages: [{ role: 'user', content: 'one two three four five six' }],
    stream: true,
  });
  let chunks = 0;
  let err;
  try {
    for await (const _ of stream) chunks++;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `stream ended cleanly after ${chunks} chunks`);
  assert.ok(err instanceof OpenAI.APIError, `want APIError, got ${err?.constructor?.name}: ${err?.message}`);
  assert.ok(chunks > 0, 'no chunk before the break');
  assert.ok(/stream_broken/.test(err.code ?? '') || /stream_broken/.test(err.message), `error ${err.code}: ${err.message}`);
});

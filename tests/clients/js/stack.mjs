/**
 * The local stack as lago-javascript-client's users reach it: a client built from
 * LAGO_API_URL and LAGO_API_KEY exactly as Lago's README shows, further organizations from the
 * local runner's documented `create-organization` command, unique codes so that tests share
 * one stack without colliding, and Lago's error body read through the client's own
 * `getLagoError`. A missing variable throws inside the test that needs it, so the test fails
 * rather than being skipped.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';

import { Client, getLagoError } from 'lago-javascript-client';

const RUNNER_ENV = ['LOCAL_RUNNER_BIN', 'RESOURCE_PREFIX', 'AWS_ENDPOINT_URL', 'AWS_REGION'];

/** The value of `name`, or an error saying how the suite is meant to be run. */
export function requiredEnv(name) {
  const value = (process.env[name] ?? '').trim();
  if (value === '') {
    throw new Error(
      `${name} is not set; run these tests through \`make test\`, or export LAGO_API_URL, ` +
        `LAGO_API_KEY, ${RUNNER_ENV.join(', ')} and the AWS credentials of a running stack`,
    );
  }
  return value;
}

/** A client for `apiKey`; the JavaScript client takes the base URL including `/api/v1`. */
export function clientFor(apiKey) {
  const apiUrl = requiredEnv('LAGO_API_URL').replace(/\/+$/, '');
  return Client(apiKey, { baseUrl: `${apiUrl}/api/v1` });
}

/** The client of the organization whose key the stack was started with. */
export function lago() {
  return clientFor(requiredEnv('LAGO_API_KEY'));
}

/** A new organization's API key, from `local-runner create-organization`. */
export async function createOrganization(name) {
  RUNNER_ENV.forEach(requiredEnv);
  const { stdout } = await promisify(execFile)(
    process.env.LOCAL_RUNNER_BIN,
    ['create-organization', '--name', name],
    { timeout: 120_000 },
  );
  const key = stdout.trim().split('\n').pop()?.trim();
  assert.ok(key, `create-organization printed no key: ${stdout}`);
  return key;
}

/** The client of an organization of the caller's own, whose lists hold only what it creates. */
export async function freshLago() {
  return clientFor(await createOrganization(`Fresh ${unique('org')}`));
}

/** A code no other test (or earlier run) uses: `unique('storage')` -> `storage_1a2b...`. */
export function unique(prefix) {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

/**
 * Awaits a call that must fail and returns what a user of the client sees: the HTTP status
 * of the thrown response and Lago's error body from `getLagoError`.
 */
export async function failureOf(call) {
  let thrown;
  try {
    await call;
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown, 'the call was expected to fail but succeeded');
  assert.ok(thrown instanceof Response, `the client threw something other than a response: ${thrown}`);
  return { status: thrown.status, body: await getLagoError(thrown) };
}

/** Every page of a list read `perPage` at a time, following `meta.next_page`. */
export async function allPages(findAll, resource, perPage) {
  const pages = [];
  let page = 1;
  while (page !== null && page !== undefined) {
    const { data } = await findAll({ page, per_page: perPage });
    pages.push({ items: data[resource], meta: data.meta });
    page = data.meta.next_page;
    assert.ok(pages.length <= 100, `${resource}: next_page never became null`);
  }
  return pages;
}

/** Lago's `meta` for every page of `totalCount` items read `perPage` at a time. */
export function expectedMetas(totalCount, perPage) {
  const totalPages = Math.ceil(totalCount / perPage);
  return Array.from({ length: totalPages }, (_, i) => ({
    current_page: i + 1,
    next_page: i + 1 < totalPages ? i + 2 : null,
    prev_page: i > 0 ? i : null,
    total_pages: totalPages,
    total_count: totalCount,
  }));
}

/** Lago's date-time format: UTC, second precision, `Z`. */
export const LAGO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/** A Lago id. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

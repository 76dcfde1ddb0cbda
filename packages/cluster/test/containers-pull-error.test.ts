import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pullError } from '../src/containers/docker/pull.js';
import type { Workload } from '../src/containers/workload.js';

const withCredentials = { container: { image: 'x', credentials: { usernamePassword: { username: 'ci-user', password: { fromSecret: 'registry-password' } } } } } as unknown as Workload;

// What Docker said is classified by words, never by digits that happen to be in a registry's port.
test('pull errors: an unknown image on a registry whose port contains 401 is not a refused credential', () => {
  const image = '127.0.0.1:42401/octelium-test/does-not-exist:v9';
  const notFound = pullError(image, withCredentials, new Error(`(HTTP code 404) unexpected - manifest for ${image} not found: manifest unknown: manifest unknown`));
  assert.match(notFound.message, /no such image or tag/);
  assert.doesNotMatch(notFound.message, /refused the credentials/);
  const refused = pullError(image, withCredentials, new Error('Head "https://127.0.0.1:42401/v2/x/manifests/v9": unauthorized: authentication required'));
  assert.match(refused.message, /refused the credentials of user "ci-user" \(check Secret "registry-password"\)/);
  assert.match(pullError(image, withCredentials, new Error('received unexpected HTTP status: 401 Unauthorized')).message, /refused the credentials/);
  assert.match(pullError('127.0.0.1:1/x:v1', withCredentials, new Error('dial tcp 127.0.0.1:1: connect: connection refused')).message, /registry 127\.0\.0\.1:1 is unreachable/);
});

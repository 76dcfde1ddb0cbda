import type Docker from 'dockerode';
import { registryOf, tagOf, type Workload } from '../workload.js';
import type { SecretReader } from '../runtime.js';

/** Why a pull failed, in words an operator can act on (never the credential itself). Exported for its tests. */
export function pullError(image: string, w: Workload, err: unknown): Error {
  const raw = ((err as { json?: { message?: string } }).json?.message ?? (err as Error).message ?? String(err)).trim();
  const registry = registryOf(image);
  let hint = '';
  // Whole words: a registry on port 42401 is not an HTTP 401 (a test registry on a random port was taken for one).
  if (/unauthorized|authentication required|no basic auth credentials|denied|\b401\b/i.test(raw)) {
    hint = w.container.credentials
      ? ` — the registry refused the credentials of user "${w.container.credentials.usernamePassword.username}" (check Secret "${w.container.credentials.usernamePassword.password.fromSecret}")`
      : ' — the registry needs credentials: set upstream.container.credentials.usernamePassword';
  } else if (/manifest unknown|not found|does not exist/i.test(raw)) {
    hint = ' — no such image or tag in the registry';
  } else if (/connection refused|no such host|timeout|\bEOF\b|dial tcp/i.test(raw)) {
    hint = ` — registry ${registry} is unreachable`;
  }
  return new Error(`pull of image ${image} failed: ${raw}${hint}`);
}

/**
 * Makes the image present: Kubernetes' IfNotPresent default — an image already on the host is used as is, unless its
 * tag is `latest` (then it is always pulled, as Kubernetes does). Registry credentials come from the Secret.
 */
export async function ensureImage(docker: Docker, w: Workload, secret: SecretReader): Promise<void> {
  const image = w.container.image;
  if (tagOf(image) !== 'latest') {
    try {
      await docker.getImage(image).inspect();
      return;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }
  const up = w.container.credentials?.usernamePassword;
  const authconfig = up ? { username: up.username, password: secret(up.password.fromSecret), serveraddress: registryOf(image) } : undefined;
  // An untagged reference would pull every tag of the repository.
  const ref = tagOf(image) === 'latest' && !/:[^/]+$/.test(image) ? `${image}:latest` : image;
  try {
    const stream = await docker.pull(ref, authconfig ? { authconfig } : {});
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
        const failed = events?.find((e) => e.error || e.errorDetail);
        if (err) reject(err);
        else if (failed) reject(new Error(failed.errorDetail?.message ?? failed.error));
        else resolve();
      });
    });
  } catch (err) {
    throw pullError(image, w, err);
  }
}

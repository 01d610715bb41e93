// The console's only way to the registry: same origin, the browser's own credentials, JSON in and out.
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, options = {}) {
  const response = await fetch(`/api/v1${path}`, {
    credentials: 'same-origin',
    headers: { Accept: 'application/json', ...(options.headers ?? {}) },
    ...options,
  });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      const error = body.errors?.[0];
      detail = error?.detail ?? error?.message ?? detail;
    } catch {
      // Not JSON: keep the status text.
    }
    throw new ApiError(response.status, response.status === 401 ? 'Sign in to see this (reload the page to get the prompt).' : detail);
  }
  return response.status === 204 || response.headers.get('content-length') === '0' ? null : response.json();
}

/** Path segments of a repository name, each escaped, joined by slashes (names keep their slashes). */
export function namePath(name) {
  return name.split('/').map(encodeURIComponent).join('/');
}

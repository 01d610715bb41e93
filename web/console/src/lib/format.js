const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(value) {
  if (value === null || value === undefined) return '–';
  let size = Number(value);
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit++;
  }
  return `${unit === 0 ? size : size.toFixed(size < 10 ? 1 : 0)} ${units[unit]}`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const steps = [[60, 'second'], [60, 'minute'], [24, 'hour'], [30, 'day'], [12, 'month'], [Infinity, 'year']];

export function date(value) {
  return value ? dateTime.format(new Date(value)) : '–';
}

/** "3 hours ago", with the exact time for a title. */
export function ago(value, now = Date.now()) {
  if (!value) return '–';
  let amount = (new Date(value).getTime() - now) / 1000;
  for (const [size, unit] of steps) {
    if (Math.abs(amount) < size) return relative.format(Math.round(amount), unit);
    amount /= size;
  }
  return date(value);
}

export function shortDigest(digest) {
  const colon = digest.indexOf(':');
  return colon < 0 ? digest.slice(0, 12) : `${digest.slice(0, colon)}:${digest.slice(colon + 1, colon + 13)}`;
}

const mediaTypeNames = {
  'application/vnd.oci.image.index.v1+json': 'OCI index',
  'application/vnd.oci.image.manifest.v1+json': 'OCI manifest',
  'application/vnd.docker.distribution.manifest.list.v2+json': 'Docker manifest list',
  'application/vnd.docker.distribution.manifest.v2+json': 'Docker manifest',
  'application/vnd.oci.image.layer.v1.tar': 'tar',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'tar+gzip (Docker)',
};

export function mediaType(value) {
  return mediaTypeNames[value] ?? value;
}

/** What kind of referrer an artifactType names: signature, SBOM, attestation, or the type itself. */
export function referrerKind(artifactType) {
  const type = (artifactType ?? '').toLowerCase();
  if (/sig|cosign|notary|signature/.test(type)) return 'signature';
  if (/sbom|spdx|cyclonedx|syft/.test(type)) return 'SBOM';
  if (/in-toto|intoto|attestation|provenance|slsa|vex/.test(type)) return 'attestation';
  return artifactType || 'artifact';
}

export function plural(count, one, many = `${one}s`) {
  return `${count.toLocaleString()} ${count === 1 ? one : many}`;
}

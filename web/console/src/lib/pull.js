// The commands that pull an image from this registry, as a node or a workstation would run them.
export const tools = [
  ['ctr', 'ctr (containerd)'],
  ['crictl', 'crictl'],
  ['skopeo', 'skopeo'],
];

export function pullCommand(tool, name, tag, user) {
  const host = location.host;
  const plain = location.protocol === 'http:';
  const reference = `${host}/${name}:${tag}`;
  switch (tool) {
    case 'crictl':
      return ['crictl pull', user ? `--creds ${user}` : '', reference].filter(Boolean).join(' ');
    case 'skopeo': {
      const file = `${name.split('/').at(-1)}-${tag}.tar`;
      return ['skopeo copy', plain ? '--src-tls-verify=false' : '', user ? `--src-creds ${user}` : '', `docker://${reference}`, `oci-archive:${file}`].filter(Boolean).join(' ');
    }
    default:
      return ['ctr -n k8s.io images pull', plain ? '--plain-http' : '', user ? `--user ${user}` : '', reference].filter(Boolean).join(' ');
  }
}

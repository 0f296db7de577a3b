/** What `fnmesh local` prints once it is up: where the gateway is, what runs, and calls to paste. */
import type { FunctionService } from '../common/manifest';

/** What the banner needs of the running replicas. */
export interface BannerReplicas {
  replicasOf(key: string): { id: string }[];
}

export function banner(
  gatewayUrl: string,
  opsUrl: string,
  natsUrl: string,
  embedded: boolean,
  services: FunctionService[],
  replicas: BannerReplicas,
  token: string | undefined,
  notReady: Set<string>,
  browsers: string,
  nats?: { dir: string; observerCreds: string },
): string {
  const lines: string[] = [
    '',
    'fnmesh local is ready',
    `  gateway   ${gatewayUrl}   (POST /v1/api/{namespace}/functions/{service}/{function})`,
    `  ops       ${opsUrl}   (GET /v1/services, /metrics, /healthz, /readyz)`,
    `  broker    ${natsUrl}${embedded ? '   (embedded)' : ''}${nats ? '   (every part its own NATS user; no anonymous client)' : ''}`,
    ...(nats
      ? [
          `  nats users ${nats.dir}   (removed at stop; look around: nats --server ${natsUrl} --creds ${nats.observerCreds} micro ls)`,
        ]
      : []),
    browsers,
    '  services',
  ];
  for (const fs of services) {
    const key = `${fs.metadata.namespace}/${fs.metadata.name}`;
    const list = replicas.replicasOf(key);
    const fns = fs.spec.functions.map((f) => `${f.name}${f.rule ? ` (${f.rule.rule})` : ''}`).join(', ');
    lines.push(
      `    ${key.padEnd(24)} ${fs.spec.local ? `${list.length} replica(s): ${list.map((r) => (notReady.has(r.id) ? `${r.id} (not ready)` : r.id)).join(' ') || '-'}` : 'rules only (no spec.local)'}`,
    );
    if (fns) lines.push(`    ${''.padEnd(24)} functions: ${fns}`);
  }
  if (services.length === 0)
    lines.push('    (none: see the manifest errors above, or give folders that hold FunctionService YAML)');
  const example = exampleCall(services, replicas);
  if (example) {
    lines.push(
      '',
      'Call a function (no token needed: its rule is allow):',
      `curl -s -X POST ${gatewayUrl}/v1/api/${example.namespace}/functions/${example.service}/${example.fn} -H 'content-type: application/json' -d '${JSON.stringify({ params: example.params })}'`,
    );
  } else {
    lines.push('', 'No running function has an allow rule to show a ready-to-paste call.');
  }
  const signedIn = services.find(
    (fs) => fs.metadata.name === 'greeter' && fs.spec.functions.some((f) => f.name === 'whoami'),
  );
  if (token && signedIn && replicas.replicasOf(`${signedIn.metadata.namespace}/greeter`).length > 0) {
    lines.push(
      '',
      `A signed-in call (a token for user "ada", role admin, valid 8 h, signed with this run's random secret; set FNMESH_JWT_SECRET to use yours):`,
      `  curl -s -X POST ${gatewayUrl}/v1/api/${signedIn.metadata.namespace}/functions/greeter/whoami -H 'content-type: application/json' -H 'authorization: Bearer ${token}' -d '{}'`,
    );
  }
  lines.push('', 'Edit a manifest and the mesh follows. Ctrl-C stops everything.', '');
  return lines.join('\n');
}

function exampleCall(
  services: FunctionService[],
  replicas: BannerReplicas,
): { namespace: string; service: string; fn: string; params: unknown } | undefined {
  const candidates: { namespace: string; service: string; fn: string; params: unknown }[] = [];
  for (const fs of services) {
    if (replicas.replicasOf(`${fs.metadata.namespace}/${fs.metadata.name}`).length === 0) continue;
    for (const f of fs.spec.functions) {
      if (f.rule?.rule !== 'allow' || f.name === 'default') continue;
      const params =
        fs.metadata.name === 'greeter' && f.name === 'hello'
          ? { name: 'Ada' }
          : fs.metadata.name === 'text'
            ? { text: 'hello mesh' }
            : {};
      candidates.push({ namespace: fs.metadata.namespace, service: fs.metadata.name, fn: f.name, params });
    }
  }
  return candidates.find((c) => c.service === 'greeter' && c.fn === 'hello') ?? candidates[0];
}

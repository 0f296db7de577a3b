/**
 * The one definition of what the operator and the gateway may do in the Kubernetes API (least privilege).
 * `npm run generate` (cli/rbac-files.ts) writes it twice: as deploy/rbac/{operator,gateway}.yaml (for
 * `kubectl apply`, the tests and `fnmesh cluster`) and as the chart's templates/_rbac-rules.tpl (the rules its
 * ClusterRoles and leader-election Role render). cli/rbac-files.test.ts fails when either file is stale, and
 * test/chart.test.ts that the chart's rendered roles hold exactly these rules.
 */

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** A rule with the reason it is needed, written above it in the generated files. */
export interface ExplainedRule {
  why: string;
  rule: PolicyRule;
}

export interface PartRbac {
  /** The ServiceAccount, ClusterRole and ClusterRoleBinding name in deploy/rbac/ (the chart prefixes its own). */
  name: string;
  /** The header of deploy/rbac/<file>: who this identity is and why it has no more than this. */
  summary: string[];
  clusterRules: ExplainedRule[];
  /** Rules that hold only in the part's own namespace (a Role), when it needs any. */
  namespaceRules?: { roleSuffix: string; rules: ExplainedRule[] };
}

/** The namespace deploy/rbac/ puts the ServiceAccounts (and the leader-election Role) in. */
export const DEPLOY_NAMESPACE = 'fnmesh-system';

export const OPERATOR_RBAC: PartRbac = {
  name: 'fnmesh-operator',
  summary: [
    "The fnmesh operator's identity and permissions, least privilege. With FNMESH_NATS_AUTH=none and no",
    'FNMESH_SIDECAR_NATS_TLS_CA_FILE the Secrets rule can be dropped. No other fnmesh identity may read Secrets',
    "(the gateway's credentials are mounted into its pod by the kubelet, not read through the API).",
  ],
  clusterRules: [
    {
      why: 'FunctionServices: read and watch (the informer)',
      rule: { apiGroups: ['fnmesh.io'], resources: ['functionservices'], verbs: ['get', 'list', 'watch'] },
    },
    {
      why: 'write only the status subresource',
      rule: { apiGroups: ['fnmesh.io'], resources: ['functionservices/status'], verbs: ['get', 'patch', 'update'] },
    },
    {
      why:
        'Deployments: read, watch, and create/patch/update (server-side apply creates through PATCH; they are ' +
        'deleted by the garbage collector through their owner reference, never by the operator)',
      rule: {
        apiGroups: ['apps'],
        resources: ['deployments'],
        verbs: ['get', 'list', 'watch', 'create', 'patch', 'update'],
      },
    },
    {
      why: 'Events: record what it did',
      rule: { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    },
    {
      why:
        'Secrets (FNMESH_NATS_AUTH=jwt, the default): get, create and patch, never list, watch, update or delete. ' +
        "get: the trust Secret (the seeds, in the operator's namespace) and each credentials Secret it minted, read " +
        'by name to decide rotation; create: the trust Secret once (a fixed name, so two replicas make one chain); ' +
        "patch (and create, for server-side apply's first write): the account Secret (public JWTs) and the " +
        "credentials Secrets and the sidecars' NATS CA Secrets (FNMESH_SIDECAR_NATS_TLS_CA_FILE, read back by name " +
        "too), which live in the FunctionServices' namespaces, hence cluster-wide. Both are deleted by the " +
        'garbage collector with their FunctionService (owner reference).',
      rule: { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create', 'patch'] },
    },
  ],
  namespaceRules: {
    roleSuffix: 'leader-election',
    rules: [
      {
        why: "Leases: leader election, only in the operator's own namespace",
        rule: { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
      },
    ],
  },
};

export const GATEWAY_RBAC: PartRbac = {
  name: 'fnmesh-gateway',
  summary: [
    "The fnmesh gateway's identity and permissions, least privilege. It gets no access to Secrets: its NATS",
    'credentials (the operator mints them into fnmesh-gateway-nats) are mounted into its pod by the kubelet, and',
    "the trust chain's seeds are the operator's alone.",
  ],
  clusterRules: [
    {
      why:
        "With FNMESH_RULE_SOURCE=kubernetes the gateway takes every service's rules from the FunctionService " +
        'objects: it reads and watches them (all namespaces; see FNMESH_WATCH_NAMESPACE for one) and writes nothing',
      rule: { apiGroups: ['fnmesh.io'], resources: ['functionservices'], verbs: ['get', 'list', 'watch'] },
    },
  ],
};

export const PARTS_RBAC = { operator: OPERATOR_RBAC, gateway: GATEWAY_RBAC } as const;

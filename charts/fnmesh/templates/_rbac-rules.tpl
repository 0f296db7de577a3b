{{/*
# GENERATED from common/rbac.ts by cli/rbac-files.ts (`npm run generate`); do not edit by hand:
# cli/rbac-files.test.ts fails when it is stale.
*/}}
{{- define "fnmesh.rbac.operator.clusterRules" -}}
# FunctionServices: read and watch (the informer)
- apiGroups: [fnmesh.io]
  resources: [functionservices]
  verbs: [get, list, watch]
# write only the status subresource
- apiGroups: [fnmesh.io]
  resources: [functionservices/status]
  verbs: [get, patch, update]
# Deployments: read, watch, and create/patch/update (server-side apply creates through PATCH; they are deleted
# by the garbage collector through their owner reference, never by the operator)
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update]
# Events: record what it did
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
# Secrets (FNMESH_NATS_AUTH=jwt, the default): get, create and patch, never list, watch, update or delete.
# get: the trust Secret (the seeds, in the operator's namespace) and each credentials Secret it minted, read
# by name to decide rotation; create: the trust Secret once (a fixed name, so two replicas make one chain);
# patch (and create, for server-side apply's first write): the account Secret (public JWTs) and the
# credentials Secrets and the sidecars' NATS CA Secrets (FNMESH_SIDECAR_NATS_TLS_CA_FILE, read back by name
# too), which live in the FunctionServices' namespaces, hence cluster-wide. Both are deleted by the garbage
# collector with their FunctionService (owner reference).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, patch]
{{- end -}}

{{- define "fnmesh.rbac.operator.namespaceRules" -}}
# Leases: leader election, only in the operator's own namespace
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
{{- end -}}

{{- define "fnmesh.rbac.gateway.clusterRules" -}}
# With FNMESH_RULE_SOURCE=kubernetes the gateway takes every service's rules from the FunctionService objects:
# it reads and watches them (all namespaces; see FNMESH_WATCH_NAMESPACE for one) and writes nothing
- apiGroups: [fnmesh.io]
  resources: [functionservices]
  verbs: [get, list, watch]
{{- end -}}

{{/* The prefix of every name: the release name, with "-fnmesh" unless it holds it (release fnmesh: "fnmesh"). */}}
{{- define "fnmesh.fullname" -}}
{{- if .Values.fullnameOverride -}}{{ .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else -}}{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; call with (dict "root" $ "component" "gateway"). */}}
{{- define "fnmesh.labels" -}}
{{ include "fnmesh.selectorLabels" . }}
app.kubernetes.io/part-of: fnmesh
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The labels a component's pods are selected by (never change them: selectors are immutable). */}}
{{- define "fnmesh.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* An image reference from {repository, tag, digest}: the digest wins; the tag defaults to .default. */}}
{{- define "fnmesh.imageRef" -}}
{{- if .image.digest -}}{{ .image.repository }}@{{ .image.digest }}
{{- else -}}{{ .image.repository }}:{{ default .default .image.tag }}{{- end -}}
{{- end -}}

{{- define "fnmesh.image" -}}
{{- include "fnmesh.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion) -}}
{{- end -}}

{{/* The injected sidecar: its own repository/tag/digest, each falling back to the fnmesh image's. */}}
{{- define "fnmesh.sidecarImage" -}}
{{- $s := .Values.sidecar.image -}}
{{- if or $s.repository $s.tag $s.digest -}}
{{- $image := dict "repository" (default .Values.image.repository $s.repository) "tag" $s.tag "digest" $s.digest -}}
{{- include "fnmesh.imageRef" (dict "image" $image "default" (default .Chart.AppVersion .Values.image.tag)) -}}
{{- else -}}{{ include "fnmesh.image" . }}{{- end -}}
{{- end -}}

{{- define "fnmesh.natsImage" -}}
{{- include "fnmesh.imageRef" (dict "image" .Values.nats.bundled.image "default" "") -}}
{{- end -}}

{{- define "fnmesh.natsName" -}}{{ include "fnmesh.fullname" . }}-nats{{- end -}}
{{- define "fnmesh.natsHeadless" -}}{{ include "fnmesh.fullname" . }}-nats-headless{{- end -}}
{{/* The Service in front of the gateway's embedded broker (nats.mode=embedded). */}}
{{- define "fnmesh.embeddedNatsName" -}}{{ include "fnmesh.fullname" . }}-gateway-nats{{- end -}}

{{/* The NATS URLs the sidecars (and in bundled/external mode the gateway) connect to. */}}
{{- define "fnmesh.natsUrl" -}}
{{- $ns := .Release.Namespace -}}
{{- if eq .Values.nats.mode "bundled" -}}nats://{{ include "fnmesh.natsName" . }}.{{ $ns }}.svc:4222
{{- else if eq .Values.nats.mode "embedded" -}}nats://{{ include "fnmesh.embeddedNatsName" . }}.{{ $ns }}.svc:4222
{{- else -}}{{ join "," .Values.nats.external.urls }}{{- end -}}
{{- end -}}

{{/* The Secrets the operator writes (FNMESH_NATS_ACCOUNT_SECRET, FNMESH_GATEWAY_NATS_CREDS_SECRET). */}}
{{- define "fnmesh.accountSecret" -}}{{ include "fnmesh.fullname" . }}-nats-account{{- end -}}
{{- define "fnmesh.gatewayCredsSecret" -}}{{ include "fnmesh.fullname" . }}-gateway-nats{{- end -}}
{{- define "fnmesh.delegationSecret" -}}
{{- default (printf "%s-gateway-delegation" (include "fnmesh.fullname" .)) .Values.gateway.delegationKey.existingSecret -}}
{{- end -}}

{{/* The grace period of a gateway pod: the preStop pause, the drain of in-flight calls, then 5 s to exit. */}}
{{- define "fnmesh.gatewayGraceSeconds" -}}
{{- $g := .Values.gateway -}}
{{- add $g.preStopSleepSeconds (div (add $g.shutdownTimeoutMs 999) 1000) 5 -}}
{{- end -}}

{{/* Every pod of the release: no root, the runtime's seccomp profile. */}}
{{- define "fnmesh.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Every container of the release. */}}
{{- define "fnmesh.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
nodeSelector, tolerations, affinity and topologySpreadConstraints of a component; call with
(dict "root" $ "component" "gateway" "values" .Values.gateway). A spread constraint without a labelSelector
gets the component's pods' labels (without one it would match no pod).
*/}}
{{- define "fnmesh.placement" -}}
{{- $v := .values -}}
{{- with $v.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.topologySpreadConstraints }}
{{- $selector := dict "matchLabels" (include "fnmesh.selectorLabels" (dict "root" $.root "component" $.component) | fromYaml) }}
topologySpreadConstraints:
{{- range . }}
{{- $c := deepCopy . }}
{{- if not $c.labelSelector }}{{ $_ := set $c "labelSelector" $selector }}{{ end }}
{{- toYaml (list $c) | nindent 2 }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "fnmesh.pullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Prometheus' scrape annotations on a pod (metrics.scrapeAnnotations), for the ops port given. */}}
{{- define "fnmesh.scrapeAnnotations" -}}
{{- if .root.Values.metrics.scrapeAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end -}}
{{- end -}}

{{/* Checks what the schema cannot: each stops the install with the fix. */}}
{{- define "fnmesh.validate" -}}
{{- $n := .Values.nats -}}
{{- if and (eq $n.mode "external") (not $n.external.urls) -}}
{{- fail "nats.external.urls is empty: nats.mode=external needs the URLs of your NATS servers, such as [nats://nats.nats.svc:4222]" -}}
{{- end -}}
{{- if and (eq $n.auth "token") (not $n.token.secretName) -}}
{{- fail "nats.token.secretName is empty: nats.auth=token needs an existing Secret holding the NATS token (key nats.token.secretKey)" -}}
{{- end -}}
{{- if and (eq $n.mode "embedded") .Values.gateway.autoscaling.enabled -}}
{{- fail "gateway.autoscaling.enabled must be false with nats.mode=embedded: the embedded broker lives in one gateway process, so the gateway cannot scale past 1 replica; use nats.mode=bundled to scale it" -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (not (dig "requests" "cpu" "" .Values.gateway.resources)) -}}
{{- fail "gateway.resources.requests.cpu is not set: gateway.autoscaling.enabled scales on CPU utilization, a percentage of the CPU request; set one, such as 100m" -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (lt (int .Values.gateway.autoscaling.maxReplicas) (int .Values.gateway.autoscaling.minReplicas)) -}}
{{- fail "gateway.autoscaling.maxReplicas is below gateway.autoscaling.minReplicas: raise maxReplicas or lower minReplicas" -}}
{{- end -}}
{{- end -}}

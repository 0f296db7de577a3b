{{- define "fnmesh.fullname" -}}
{{- if .Values.fullnameOverride -}}{{ .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else -}}{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- end -}}
{{- end -}}

{{- define "fnmesh.labels" -}}
app.kubernetes.io/part-of: fnmesh
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* the fnmesh image reference: digest beats tag; tag defaults to appVersion */}}
{{- define "fnmesh.image" -}}
{{- if .Values.image.digest -}}{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}{{- end -}}
{{- end -}}

{{- define "fnmesh.sidecarImage" -}}
{{- $repo := default .Values.image.repository .Values.sidecar.image.repository -}}
{{- if and (not .Values.sidecar.image.repository) (not .Values.sidecar.image.tag) .Values.image.digest -}}{{ $repo }}@{{ .Values.image.digest }}
{{- else -}}{{ $repo }}:{{ default (default .Chart.AppVersion .Values.image.tag) .Values.sidecar.image.tag }}{{- end -}}
{{- end -}}

{{- define "fnmesh.natsImage" -}}
{{- $i := .Values.nats.bundled.image -}}
{{- if $i.digest -}}{{ $i.repository }}@{{ $i.digest }}{{- else -}}{{ $i.repository }}:{{ $i.tag }}{{- end -}}
{{- end -}}

{{/* What the gateway and the sidecars connect to. */}}
{{- define "fnmesh.natsUrl" -}}
{{- $ns := .Release.Namespace -}}
{{- if eq .Values.nats.mode "bundled" -}}nats://{{ include "fnmesh.fullname" . }}-nats.{{ $ns }}.svc:4222
{{- else if eq .Values.nats.mode "embedded" -}}nats://{{ include "fnmesh.fullname" . }}-gateway-nats.{{ $ns }}.svc:4222
{{- else -}}{{ join "," .Values.nats.external.urls }}{{- end -}}
{{- end -}}

{{- define "fnmesh.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "fnmesh.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "fnmesh.placement" -}}
{{- with .nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints: {{- toYaml . | nindent 2 }}
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

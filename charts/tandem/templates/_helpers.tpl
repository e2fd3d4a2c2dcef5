{{/* Shared pieces of the operator's and the injector's objects. Names are fixed (see values.yaml). */}}

{{/* Labels on every object: tandem.labels (dict "root" $ "app" "tandem-operator" "component" "operator") */}}
{{- define "tandem.labels" -}}
app: {{ .app }}
app.kubernetes.io/name: {{ .app }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Values.global.tag | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: tandem
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with .root.Values.global.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The selector of a Deployment, its PDB and its Services: never changes between upgrades. */}}
{{- define "tandem.selectorLabels" -}}
app: {{ .app }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{/* An image reference: tandem.image (dict "root" $ "name" "tandem-operator") */}}
{{- define "tandem.image" -}}
{{- if contains "/" .name -}}
{{ .name }}
{{- else -}}
{{ .root.Values.global.registry }}/{{ .name }}:{{ .root.Values.global.tag }}
{{- end -}}
{{- end }}

{{/* Replicas of a control-plane Deployment: global.ha.replicaCount in HA mode, else its own. */}}
{{- define "tandem.replicas" -}}
{{- if .root.Values.global.ha.enabled -}}
{{ .root.Values.global.ha.replicaCount }}
{{- else -}}
{{ .values.replicaCount }}
{{- end -}}
{{- end }}

{{/* Whether the operator needs the leader Lease: more than one replica can run. */}}
{{- define "tandem.operator.leaderElect" -}}
{{- if or .Values.global.ha.enabled (gt (int .Values.tandem_operator.replicaCount) 1) -}}
true
{{- else -}}
false
{{- end -}}
{{- end }}

{{/* policy/v1 from Kubernetes 1.21 on; policy/v1beta1 before (removed in 1.25). */}}
{{- define "tandem.pdb.apiVersion" -}}
{{- if and (.Capabilities.APIVersions.Has "policy/v1") (semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version) -}}
policy/v1
{{- else -}}
policy/v1beta1
{{- end -}}
{{- end }}

{{/* Pod-level settings both Deployments share: tandem.podSpec (dict "root" $ "app" "...") */}}
{{- define "tandem.podSpec" -}}
{{- $global := .root.Values.global -}}
{{- with $global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- with $global.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $global.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $global.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - key: kubernetes.io/os
              operator: In
              values: [linux]
{{- if $global.ha.enabled }}
  podAntiAffinity:
{{- if eq $global.ha.podAntiAffinityPolicy "requiredDuringSchedulingIgnoredDuringExecution" }}
    requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchLabels:
            app: {{ .app }}
        topologyKey: {{ $global.ha.topologyKey }}
{{- else }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          labelSelector:
            matchLabels:
              app: {{ .app }}
          topologyKey: {{ $global.ha.topologyKey }}
{{- end }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ $global.runAsUser }}
  runAsGroup: {{ $global.runAsGroup }}
  seccompProfile:
    type: {{ $global.seccompProfile }}
{{- end }}

{{/* The container securityContext both control-plane containers run with. */}}
{{- define "tandem.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  privileged: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities:
    drop: [ALL]
{{- end }}

{{/* Pod annotations: prometheus scraping of the admin port, plus the component's own. */}}
{{- define "tandem.podAnnotations" -}}
{{- if .root.Values.global.prometheus.enabled }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .root.Values.global.prometheus.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with .values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Health probes on the admin port. */}}
{{- define "tandem.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: admin
  {{- toYaml .livenessProbe | nindent 2 }}
readinessProbe:
  httpGet:
    path: /readyz
    port: admin
  {{- toYaml .readinessProbe | nindent 2 }}
{{- end }}

{{/* A PodDisruptionBudget for an HA Deployment: tandem.pdb (dict "root" $ "app" "..." "component" "...") */}}
{{- define "tandem.pdb" -}}
{{- $disruption := .root.Values.global.ha.disruption -}}
apiVersion: {{ include "tandem.pdb.apiVersion" .root }}
kind: PodDisruptionBudget
metadata:
  name: {{ .app }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "tandem.labels" . | nindent 4 }}
spec:
{{- if $disruption.minimumAvailable }}
  minAvailable: {{ $disruption.minimumAvailable }}
{{- else if $disruption.maximumUnavailable }}
  maxUnavailable: {{ $disruption.maximumUnavailable }}
{{- else }}
  {{- fail "global.ha.disruption: set minimumAvailable or maximumUnavailable" }}
{{- end }}
  selector:
    matchLabels:
      {{- include "tandem.selectorLabels" . | nindent 6 }}
{{- end }}

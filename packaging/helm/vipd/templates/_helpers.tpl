{{/* The application's name: vipd unless nameOverride. */}}
{{- define "vipd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' name: the release's, with the application's appended
unless it already holds it (release vipd: vipd). */}}
{{- define "vipd.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "vipd.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* What the DaemonSet and the Service select a release's pods by. */}}
{{- define "vipd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vipd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The labels of every object helm manages. */}}
{{- define "vipd.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "vipd.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "vipd.image" -}}
{{ .repository }}:{{ .tag }}
{{- end }}

{{/* vipd's container, the same in the DaemonSet and the static pod. */}}
{{- define "vipd.container" -}}
- name: vipd
  image: {{ include "vipd.image" .Values.image }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["run", "--config", "/etc/vipd/vipd.yaml", "--log-format", {{ .Values.logFormat | quote }}]
  securityContext:
    # Root inside the container, but with only these two capabilities: a
    # non-root process would lose them at exec (Kubernetes sets no ambient
    # capabilities).
    runAsUser: 0
    runAsGroup: 0
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: ["ALL"]
      # NET_ADMIN: VIPs through netlink. NET_RAW: VRRP and ARP sockets.
      add: ["NET_ADMIN", "NET_RAW"]
    seccompProfile:
      type: RuntimeDefault
  {{- with .Values.metrics.port }}
  livenessProbe:
    httpGet:
      host: 127.0.0.1
      port: {{ . }}
      path: /healthz
    periodSeconds: 10
    failureThreshold: 3
  {{- end }}
  {{- with .Values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: config
      mountPath: /etc/vipd
      readOnly: true
    - name: run
      mountPath: /run/vipd
{{- end }}

{{/* The pod spec's fields that do not depend on the kind. */}}
{{- define "vipd.podSpec" -}}
# VRRP and gratuitous ARP happen on the host's interfaces.
hostNetwork: true
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
# vipd never talks to the API server.
automountServiceAccountToken: false
enableServiceLinks: false
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
{{- end }}

{{/* Fails the render on values that cannot work together. */}}
{{- define "vipd.validate" -}}
{{- if not (has .Values.kind (list "DaemonSet" "StaticPod")) }}
{{- fail (printf "kind is %q; want DaemonSet or StaticPod" .Values.kind) }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (eq .Values.kind "StaticPod") }}
{{- fail "serviceMonitor.enabled needs kind DaemonSet: a static pod is not installed through helm; scrape the nodes instead" }}
{{- end }}
{{- if eq .Values.kind "DaemonSet" }}
{{- $listen := dig "metrics" "listen" "" (.Values.config | default dict) | toString }}
{{- $port := regexReplaceAll "^.*:" $listen "" }}
{{- $host := regexReplaceAll ":[^:]*$" $listen "" | trimPrefix "[" | trimSuffix "]" }}
{{- if and .Values.metrics.port (ne $port (toString .Values.metrics.port)) }}
{{- fail (printf "metrics.port is %v but config.metrics.listen is %q: the liveness probe would fail" .Values.metrics.port $listen) }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not .Values.metrics.port) }}
{{- fail "serviceMonitor.enabled needs metrics.port, the port of config.metrics.listen" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (or (eq $listen "") (hasPrefix "127." $host) (eq $host "::1") (eq $host "localhost")) }}
{{- fail (printf "serviceMonitor.enabled needs config.metrics.listen reachable from Prometheus, such as \":%v\"; it is %q" .Values.metrics.port $listen) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Names. */}}
{{- define "neo-events-worker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "neo-events-worker.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The consumer group: .Values.group or the release name, checked like the worker does. */}}
{{- define "neo-events-worker.group" -}}
{{- $g := default .Release.Name .Values.group -}}
{{- if not (regexMatch "^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$" $g) -}}
{{- fail (printf "group %q: use letters, digits, '_', '.', '-' (no ':' or spaces)" $g) -}}
{{- end -}}
{{- $g -}}
{{- end -}}

{{- define "neo-events-worker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "neo-events-worker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object but the migration hook's, which says component: migrations. */}}
{{- define "neo-events-worker.labels" -}}
{{ include "neo-events-worker.commonLabels" . }}
app.kubernetes.io/component: worker
{{- end -}}

{{- define "neo-events-worker.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "neo-events-worker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: neo-events
app.kubernetes.io/managed-by: {{ .Release.Service }}
neo-events.io/group: {{ include "neo-events-worker.group" . | trunc 63 | trimSuffix "-" | quote }}
{{- end -}}

{{- define "neo-events-worker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "neo-events-worker.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "neo-events-worker.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
new.seconds turns a Go duration made of h, m, s and ms parts ("90s", "1m30s", "1500ms")
into whole seconds, rounded up. Anything else fails the render with the key named.
*/}}
{{- define "neo-events-worker.seconds" -}}
{{- $key := index . 0 -}}
{{- $d := toString (index . 1) -}}
{{- if not (regexMatch "^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$" $d) -}}
{{- fail (printf "config.%s %q: write it as a Go duration of h, m, s and ms parts, e.g. 30s or 1m30s" $key $d) -}}
{{- end -}}
{{- if eq $d "" -}}
{{- fail (printf "config.%s is empty" $key) -}}
{{- end -}}
{{- $ms := 0 -}}
{{- range $part := regexFindAll "[0-9]+(ms|h|m|s)" $d -1 -}}
{{- $n := int64 (regexFind "^[0-9]+" $part) -}}
{{- if hasSuffix "ms" $part -}}{{- $ms = add $ms $n -}}
{{- else if hasSuffix "h" $part -}}{{- $ms = add $ms (mul $n 3600000) -}}
{{- else if hasSuffix "m" $part -}}{{- $ms = add $ms (mul $n 60000) -}}
{{- else -}}{{- $ms = add $ms (mul $n 1000) -}}
{{- end -}}
{{- end -}}
{{- div (add $ms 999) 1000 -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: the worker's drain budget plus a margin for the flush. */}}
{{- define "neo-events-worker.terminationGracePeriodSeconds" -}}
{{- $shutdown := include "neo-events-worker.seconds" (list "worker.shutdown_timeout" .Values.config.worker.shutdown_timeout) | int -}}
{{- if lt (int .Values.shutdownGraceExtraSeconds) 5 -}}
{{- fail "shutdownGraceExtraSeconds must be at least 5: the pod needs time after the drain to flush status writes" -}}
{{- end -}}
{{- add $shutdown .Values.shutdownGraceExtraSeconds -}}
{{- end -}}

{{/* The port of config.http.addr; the probes and the Service need it. */}}
{{- define "neo-events-worker.httpPort" -}}
{{- $addr := toString .Values.config.http.addr -}}
{{- $port := regexFind ":[0-9]+$" $addr | trimPrefix ":" -}}
{{- if not $port -}}
{{- fail (printf "config.http.addr %q: needs a port (e.g. \":9090\"); the probes and metrics use it" $addr) -}}
{{- end -}}
{{- $port -}}
{{- end -}}

{{/* The worker config file. Only the worker's own keys; URLs and consumer come from env. */}}
{{- define "neo-events-worker.workerConfig" -}}
{{- $c := deepCopy .Values.config -}}
{{- $_ := set $c.worker "group" (include "neo-events-worker.group" .) -}}
{{- $_ := include "neo-events-worker.terminationGracePeriodSeconds" . -}}
{{- range $k := list "block" "claim_min_idle" "claim_interval" "shutdown_timeout" -}}
{{- $_ := include "neo-events-worker.seconds" (list (printf "worker.%s" $k) (index $c.worker $k)) -}}
{{- end -}}
{{- if not $c.redis.cluster_addrs -}}
{{- $_ := unset $c "redis" -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

{{- define "neo-events-worker.autoscaled" -}}
{{- if or .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled -}}true{{- end -}}
{{- end -}}

{{/* Containers' shared env: URLs from Secrets, consumer name from the pod. */}}
{{- define "neo-events-worker.env" -}}
- name: NEO_EVENTS_WORKER_CONSUMER
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- if .Values.redis.existingSecret }}
- name: NEO_EVENTS_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.secretKey }}
{{- else if not .Values.config.redis.cluster_addrs }}
{{- fail "redis.existingSecret is empty and config.redis.cluster_addrs is not set: the worker would have no Redis" }}
{{- end }}
{{- if not .Values.postgres.existingSecret }}
{{- fail "postgres.existingSecret is required: the Postgres URL carries a password and is never inlined" }}
{{- end }}
- name: NEO_EVENTS_POSTGRES_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.postgres.existingSecret }}
      key: {{ .Values.postgres.secretKey }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The redis-streams trigger's stream keys: explicit, or scopes x categories x partitions. */}}
{{- define "neo-events-worker.kedaStreams" -}}
{{- $r := .Values.autoscaling.keda.redisStreams -}}
{{- $streams := list -}}
{{- range $r.streams -}}{{- $streams = append $streams . -}}{{- end -}}
{{- $prefix := .Values.config.streams.prefix -}}
{{- range $scope := $r.scopes -}}
{{- range $cat := $r.categories -}}
{{- range $p := until (int $.Values.config.streams.partitions) -}}
{{- $streams = append $streams (printf "%s:%s:%s:%d" $prefix $scope $cat $p) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not $streams -}}
{{- fail "autoscaling.keda.trigger=redis-streams needs autoscaling.keda.redisStreams.streams, or scopes and categories" -}}
{{- end -}}
{{- toJson (uniq $streams) -}}
{{- end -}}

{{/* Names and labels */}}
{{- define "slamon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "slamon.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "slamon.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "slamon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: slamon
{{- end }}

{{/* selector labels of a component: include "slamon.selectorLabels" (list . "worker") */}}
{{- define "slamon.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "slamon.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "slamon.componentLabels" -}}
{{- $ := index . 0 -}}
{{ include "slamon.labels" $ }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "slamon.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{- define "slamon.workerHeadless" -}}
{{ include "slamon.fullname" . }}-worker
{{- end }}

{{- define "slamon.policiesConfigMap" -}}
{{- if .Values.policies.existingConfigMap -}}
{{ .Values.policies.existingConfigMap }}
{{- else -}}
{{ include "slamon.fullname" . }}-policies
{{- end -}}
{{- end }}

{{- define "slamon.kafkaTls" -}}
{{- if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}true{{ end }}
{{- end }}

{{- define "slamon.kafkaSasl" -}}
{{- if has .Values.kafka.securityProtocol (list "SASL_PLAINTEXT" "SASL_SSL") }}true{{ end }}
{{- end }}

{{/* Checks of values that do not fit together (rendered into every workload, prints nothing) */}}
{{- define "slamon.validate" -}}
{{- $protocols := list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL" }}
{{- if not (has .Values.kafka.securityProtocol $protocols) }}
{{- fail (printf "kafka.securityProtocol=%s: use one of %s" .Values.kafka.securityProtocol (join ", " $protocols)) }}
{{- end }}
{{- if and (include "slamon.kafkaSasl" .) (not .Values.kafka.sasl.existingSecret) }}
{{- fail (printf "kafka.securityProtocol=%s needs kafka.sasl.existingSecret (a Secret with the keys %s and %s)" .Values.kafka.securityProtocol .Values.kafka.sasl.usernameKey .Values.kafka.sasl.passwordKey) }}
{{- end }}
{{- if and (not (include "slamon.kafkaSasl" .)) .Values.kafka.sasl.existingSecret }}
{{- fail (printf "kafka.sasl.existingSecret is set but kafka.securityProtocol=%s does not use SASL" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if and (not (include "slamon.kafkaTls" .)) (or .Values.kafka.tls.caSecret .Values.kafka.tls.clientSecret) }}
{{- fail (printf "kafka.tls.* is set but kafka.securityProtocol=%s does not use TLS (SSL or SASL_SSL would)" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if not .Values.kafka.bootstrapServers }}
{{- fail "kafka.bootstrapServers is required" }}
{{- end }}
{{- if lt (int .Values.config.partitions) 1 }}
{{- fail "config.partitions must be positive" }}
{{- end }}
{{- end }}

{{/* The SLAMON_* settings of Kafka every component shares */}}
{{- define "slamon.kafkaEnv" -}}
- name: SLAMON_KAFKA_BOOTSTRAP
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: SLAMON_KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
{{- if include "slamon.kafkaSasl" . }}
- name: SLAMON_KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: SLAMON_KAFKA_SASL_USERNAME_FILE
  value: /etc/slamon/kafka-sasl/{{ .Values.kafka.sasl.usernameKey }}
- name: SLAMON_KAFKA_SASL_PASSWORD_FILE
  value: /etc/slamon/kafka-sasl/{{ .Values.kafka.sasl.passwordKey }}
{{- end }}
{{- if and (include "slamon.kafkaTls" .) .Values.kafka.tls.caSecret }}
- name: SLAMON_KAFKA_SSL_CAFILE
  value: /etc/slamon/kafka-ca/{{ .Values.kafka.tls.caKey }}
{{- end }}
{{- if and (include "slamon.kafkaTls" .) .Values.kafka.tls.clientSecret }}
- name: SLAMON_KAFKA_SSL_CERTFILE
  value: /etc/slamon/kafka-client/{{ .Values.kafka.tls.certKey }}
- name: SLAMON_KAFKA_SSL_KEYFILE
  value: /etc/slamon/kafka-client/{{ .Values.kafka.tls.keyKey }}
{{- end }}
- name: SLAMON_APP_ID
  value: {{ .Values.config.appId | quote }}
- name: SLAMON_TOPIC_PREFIX
  value: {{ .Values.config.topicPrefix | quote }}
- name: SLAMON_PARTITIONS
  value: {{ .Values.config.partitions | quote }}
- name: SLAMON_REPLICATION
  value: {{ .Values.config.replication | quote }}
- name: SLAMON_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
{{- end }}

{{/* Redis settings (board; workers with the API) */}}
{{- define "slamon.redisEnv" -}}
{{- if .Values.redis.existingSecret }}
- name: SLAMON_REDIS_URL_FILE
  value: /etc/slamon/redis/{{ .Values.redis.urlKey }}
{{- else }}
- name: SLAMON_REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
{{- if .Values.redis.caSecret }}
- name: SLAMON_REDIS_SSL_CAFILE
  value: /etc/slamon/redis-ca/{{ .Values.redis.caKey }}
{{- end }}
{{- end }}

{{/* The web server of a long-running component */}}
{{- define "slamon.webEnv" -}}
- name: SLAMON_WEB_HOST
  value: "0.0.0.0"
- name: SLAMON_WEB_PORT
  value: {{ .Values.config.webPort | quote }}
{{- end }}

{{/* Secret volumes: include "slamon.secretVolumes" (dict "root" . "redis" true) */}}
{{- define "slamon.secretVolumes" -}}
{{- $ := .root -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if include "slamon.kafkaSasl" $ }}
- name: kafka-sasl
  secret:
    secretName: {{ $.Values.kafka.sasl.existingSecret }}
    defaultMode: 0440
    items:
      - {key: {{ $.Values.kafka.sasl.usernameKey }}, path: {{ $.Values.kafka.sasl.usernameKey }}}
      - {key: {{ $.Values.kafka.sasl.passwordKey }}, path: {{ $.Values.kafka.sasl.passwordKey }}}
{{- end }}
{{- if and (include "slamon.kafkaTls" $) $.Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ $.Values.kafka.tls.caSecret }}
    defaultMode: 0444
    items:
      - {key: {{ $.Values.kafka.tls.caKey }}, path: {{ $.Values.kafka.tls.caKey }}}
{{- end }}
{{- if and (include "slamon.kafkaTls" $) $.Values.kafka.tls.clientSecret }}
- name: kafka-client
  secret:
    secretName: {{ $.Values.kafka.tls.clientSecret }}
    defaultMode: 0440
    items:
      - {key: {{ $.Values.kafka.tls.certKey }}, path: {{ $.Values.kafka.tls.certKey }}}
      - {key: {{ $.Values.kafka.tls.keyKey }}, path: {{ $.Values.kafka.tls.keyKey }}}
{{- end }}
{{- if and .redis $.Values.redis.existingSecret }}
- name: redis
  secret:
    secretName: {{ $.Values.redis.existingSecret }}
    defaultMode: 0440
    items:
      - {key: {{ $.Values.redis.urlKey }}, path: {{ $.Values.redis.urlKey }}}
{{- end }}
{{- if and .redis $.Values.redis.caSecret }}
- name: redis-ca
  secret:
    secretName: {{ $.Values.redis.caSecret }}
    defaultMode: 0444
    items:
      - {key: {{ $.Values.redis.caKey }}, path: {{ $.Values.redis.caKey }}}
{{- end }}
{{- if and .api $.Values.api.existingSecret }}
- name: api
  secret:
    secretName: {{ $.Values.api.existingSecret }}
    defaultMode: 0440
    items:
      - {key: {{ $.Values.api.tokenKey }}, path: {{ $.Values.api.tokenKey }}}
{{- end }}
{{- end }}

{{- define "slamon.secretMounts" -}}
{{- $ := .root -}}
- name: tmp
  mountPath: /tmp
{{- if include "slamon.kafkaSasl" $ }}
- {name: kafka-sasl, mountPath: /etc/slamon/kafka-sasl, readOnly: true}
{{- end }}
{{- if and (include "slamon.kafkaTls" $) $.Values.kafka.tls.caSecret }}
- {name: kafka-ca, mountPath: /etc/slamon/kafka-ca, readOnly: true}
{{- end }}
{{- if and (include "slamon.kafkaTls" $) $.Values.kafka.tls.clientSecret }}
- {name: kafka-client, mountPath: /etc/slamon/kafka-client, readOnly: true}
{{- end }}
{{- if and .redis $.Values.redis.existingSecret }}
- {name: redis, mountPath: /etc/slamon/redis, readOnly: true}
{{- end }}
{{- if and .redis $.Values.redis.caSecret }}
- {name: redis-ca, mountPath: /etc/slamon/redis-ca, readOnly: true}
{{- end }}
{{- if and .api $.Values.api.existingSecret }}
- {name: api, mountPath: /etc/slamon/api, readOnly: true}
{{- end }}
{{- end }}

{{/* Pod-level settings every pod shares */}}
{{- define "slamon.podCommon" -}}
automountServiceAccountToken: false
{{- if .Values.serviceAccountName }}
serviceAccountName: {{ .Values.serviceAccountName }}
{{- end }}
# no {SERVICE}_PORT variables: Faust reads e.g. WEB_PORT from the environment, which a Service named "web" would set
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}

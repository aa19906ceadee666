{{/* vim: set filetype=mustache: */}}

{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "codeq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified app name: <release>-<chart>, or the release name when it already contains the
chart name; truncated to 63 characters.
*/}}
{{- define "codeq.fullname" -}}
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

{{/*
Chart label value: <name>-<version>.
*/}}
{{- define "codeq.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels (immutable on a StatefulSet: never add to them).
*/}}
{{- define "codeq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "codeq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Common labels, on every resource.
*/}}
{{- define "codeq.labels" -}}
helm.sh/chart: {{ include "codeq.chart" . }}
{{ include "codeq.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: codeq
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Image reference: repository@digest, or repository:tag (tag defaults to appVersion).
*/}}
{{- define "codeq.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/*
ServiceAccount name.
*/}}
{{- define "codeq.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "codeq.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Name of the Secret holding PRODUCER_AUTH_CONFIG / WORKER_AUTH_CONFIG / WEBHOOK_HMAC_SECRET.
*/}}
{{- define "codeq.secretName" -}}
{{- default (include "codeq.fullname" .) .Values.auth.existingSecret -}}
{{- end -}}

{{/*
Path of the config file inside the container (CODEQ_CONFIG_PATH).
*/}}
{{- define "codeq.configPath" -}}
/etc/codeq/codeq.yaml
{{- end -}}

{{/*
Data directory of the embedded engine and artifacts directory, both on the data volume.
*/}}
{{- define "codeq.dataPath" -}}
{{- printf "%s/pebble" (trimSuffix "/" .Values.persistence.mountPath) -}}
{{- end -}}
{{- define "codeq.artifactsPath" -}}
{{- printf "%s/artifacts" (trimSuffix "/" .Values.persistence.mountPath) -}}
{{- end -}}

{{/*
The storage engine, normalised: "sqlite" (also for the "pebble" alias) or "postgres" (also for
"postgresql"); anything else is returned as given and refused by codeq.validateValues.
*/}}
{{- define "codeq.provider" -}}
{{- $p := lower (toString .Values.persistence.provider) -}}
{{- if has $p (list "sqlite" "pebble") -}}sqlite
{{- else if has $p (list "postgres" "postgresql") -}}postgres
{{- else -}}{{ $p }}
{{- end -}}
{{- end -}}

{{/*
With postgres: the Secret and key that hold PERSISTENCE_CONFIG ({"url","poolSize"} as JSON), either
persistence.postgres.existingSecret or the chart's own Secret (rendered from persistence.postgres).
*/}}
{{- define "codeq.postgresSecretName" -}}
{{- default (include "codeq.fullname" .) .Values.persistence.postgres.existingSecret -}}
{{- end -}}
{{- define "codeq.postgresConfigJson" -}}
{{- dict "url" .Values.persistence.postgres.url "poolSize" (int .Values.persistence.postgres.poolSize) | toJson -}}
{{- end -}}

{{/*
Does the chart render its own Secret? For the auth configs (unless auth.existingSecret) and, with
postgres, for PERSISTENCE_CONFIG (unless persistence.postgres.existingSecret). "true" or "".
*/}}
{{- define "codeq.ownSecret" -}}
{{- if or (not .Values.auth.existingSecret) (and (eq (include "codeq.provider" .) "postgres") (not .Values.persistence.postgres.existingSecret)) -}}true{{- end -}}
{{- end -}}

{{/*
Keys of the config file that the chart renders itself; `config` must not repeat them.
*/}}
{{- define "codeq.managedConfigKeys" -}}
port persistenceProvider persistenceConfig localArtifactsDir workerStreamAddr producerStreamAddr producerAuthProvider workerAuthProvider
{{- end -}}

{{/*
An auth provider config as JSON, for the Secret (a string config is passed through). A static provider with an empty token gets the
token already stored in this release's Secret (upgrades keep it) or a new random one.
Usage: include "codeq.authConfigJson" (dict "ctx" $ "auth" .Values.auth.producer "key" "PRODUCER_AUTH_CONFIG")
*/}}
{{- define "codeq.authConfigJson" -}}
{{- if kindIs "string" .auth.config -}}
{{- .auth.config -}}
{{- else -}}
{{- $config := deepCopy (.auth.config | default dict) -}}
{{- if and (eq (lower (toString .auth.provider)) "static") (not (get $config "token")) -}}
{{- $token := "" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace (include "codeq.fullname" .ctx) | default dict -}}
{{- $data := get $existing "data" | default dict -}}
{{- if hasKey $data .key -}}
{{- $previous := index $data .key | b64dec | fromJson -}}
{{- $token = get $previous "token" | default "" -}}
{{- end -}}
{{- $_ := set $config "token" ($token | default (randAlphaNum 40)) -}}
{{- end -}}
{{- toJson $config -}}
{{- end -}}
{{- end -}}

{{/*
The webhook HMAC secret: the configured one, else the one stored in this release's Secret, else new.
*/}}
{{- define "codeq.webhookHmacSecret" -}}
{{- if .Values.auth.webhookHmacSecret -}}
{{- .Values.auth.webhookHmacSecret -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "codeq.fullname" .) | default dict -}}
{{- $data := get $existing "data" | default dict -}}
{{- if hasKey $data "WEBHOOK_HMAC_SECRET" -}}
{{- index $data "WEBHOOK_HMAC_SECRET" | b64dec -}}
{{- else -}}
{{- randAlphaNum 48 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Refuse values that cannot work. Called from the StatefulSet template.
*/}}
{{- define "codeq.validateValues" -}}
{{- $provider := include "codeq.provider" . -}}
{{- if not (has $provider (list "sqlite" "postgres")) -}}
{{- fail (printf "persistence.provider must be sqlite (pebble is an alias) or postgres (postgresql is an alias), got %q" .Values.persistence.provider) -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (ne $provider "postgres") -}}
{{- fail (printf "replicaCount=%d needs persistence.provider=postgres: the embedded %s engine keeps its data in one directory locked by one process, so it runs exactly one replica" (int .Values.replicaCount) $provider) -}}
{{- end -}}
{{- if lt (int .Values.replicaCount) 0 -}}
{{- fail "replicaCount must not be negative" -}}
{{- end -}}
{{- range $key := splitList " " (include "codeq.managedConfigKeys" .) -}}
{{- if hasKey $.Values.config $key -}}
{{- fail (printf "config.%s is set by the chart; use the dedicated values instead (containerPorts, persistence, streams, auth)" $key) -}}
{{- end -}}
{{- end -}}
{{- if eq $provider "postgres" -}}
{{- $pg := .Values.persistence.postgres -}}
{{- if and (not $pg.url) (not $pg.existingSecret) -}}
{{- fail "persistence.provider=postgres needs persistence.postgres.url (postgres://user:password@host:5432/db) or persistence.postgres.existingSecret (a Secret with key PERSISTENCE_CONFIG holding {\"url\":\"postgres://...\",\"poolSize\":10})" -}}
{{- end -}}
{{- if and $pg.url (not $pg.existingSecret) (not (regexMatch "^postgres(ql)?://[^/]" (toString $pg.url))) -}}
{{- fail "persistence.postgres.url must be a postgres:// or postgresql:// URL" -}}
{{- end -}}
{{- if or (lt (int $pg.poolSize) 1) (gt (int $pg.poolSize) 1000) -}}
{{- fail (printf "persistence.postgres.poolSize must be an integer from 1 to 1000, got %v" $pg.poolSize) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.persistence.existingClaim (gt (int .Values.replicaCount) 1) (ne $provider "postgres") -}}
{{- fail "persistence.existingClaim cannot be shared by more than one replica" -}}
{{- end -}}
{{- if and (eq $provider "postgres") .Values.persistence.existingClaim (gt (int .Values.replicaCount) 1) -}}
{{- /* Every pod mounts the claim (shared artifacts): it must be ReadWriteMany. Checked when the claim can be looked up (not by helm template). */ -}}
{{- $claim := lookup "v1" "PersistentVolumeClaim" .Release.Namespace (tpl .Values.persistence.existingClaim .) | default dict -}}
{{- $modes := (get (get $claim "spec" | default dict) "accessModes") | default list -}}
{{- if and $claim $modes (not (has "ReadWriteMany" $modes)) -}}
{{- fail (printf "persistence.existingClaim %s has access modes %v: with replicaCount=%d every pod mounts it (shared artifacts), so it must be ReadWriteMany" (tpl .Values.persistence.existingClaim .) $modes (int .Values.replicaCount)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

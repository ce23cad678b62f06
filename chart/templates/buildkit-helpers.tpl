{{/*
Names and settings of the BuildKit builder (builder.type: buildkit). Only `define`s: this file
renders to nothing.
*/}}
{{- define "binderhub-service.buildkitName" -}}
{{- include "binderhub-service.suffixed" (list . "buildkit") }}
{{- end }}

{{/*
Where the certificates come from (builder.buildkit.tls): "existing" (existingSecrets),
"certManager", or "chart" (made here, kept by lookup). Fails on half or doubly given ones.
*/}}
{{- define "binderhub-service.buildkitTlsMode" -}}
{{- $tls := .Values.builder.buildkit.tls }}
{{- $existing := $tls.existingSecrets }}
{{- if and $existing.server $existing.client }}
{{- if $tls.certManager.enabled }}
{{- fail "builder.buildkit.tls: existingSecrets and certManager.enabled are both set; choose one" }}
{{- end }}
{{- print "existing" }}
{{- else if or $existing.server $existing.client }}
{{- fail "builder.buildkit.tls.existingSecrets: give both server and client (the daemon's and the build pods' Secrets)" }}
{{- else if $tls.certManager.enabled }}
{{- if not (.Capabilities.APIVersions.Has "cert-manager.io/v1") }}
{{- fail "builder.buildkit.tls.certManager.enabled: the cluster has no cert-manager.io/v1 API (install cert-manager first; with helm template, pass --api-versions cert-manager.io/v1)" }}
{{- end }}
{{- print "certManager" }}
{{- else }}
{{- print "chart" }}
{{- end }}
{{- end }}

{{/* The Secret with the daemon's certificate. */}}
{{- define "binderhub-service.buildkitServerSecret" -}}
{{- if eq (include "binderhub-service.buildkitTlsMode" .) "existing" }}
{{- .Values.builder.buildkit.tls.existingSecrets.server }}
{{- else }}
{{- include "binderhub-service.suffixed" (list . "buildkit-server") }}
{{- end }}
{{- end }}

{{/* The Secret with the build pods' client certificate. */}}
{{- define "binderhub-service.buildkitClientSecret" -}}
{{- if eq (include "binderhub-service.buildkitTlsMode" .) "existing" }}
{{- .Values.builder.buildkit.tls.existingSecrets.client }}
{{- else }}
{{- include "binderhub-service.suffixed" (list . "buildkit-client") }}
{{- end }}
{{- end }}

{{/*
The keys of the certificate Secrets, as {"ca": .., "cert": .., "key": ..}: cert-manager's
names (ca.crt, tls.crt, tls.key), or the chart's (ca.pem, cert.pem, key.pem).
*/}}
{{- define "binderhub-service.buildkitTlsKeys" -}}
{{- if eq (include "binderhub-service.buildkitTlsMode" .) "certManager" }}
{{- dict "ca" "ca.crt" "cert" "tls.crt" "key" "tls.key" | toJson }}
{{- else }}
{{- dict "ca" "ca.pem" "cert" "cert.pem" "key" "key.pem" | toJson }}
{{- end }}
{{- end }}

{{/*
What the daemon's checksum/tls covers: the certificates the chart made, or the names of the
Secrets (their content is the cluster's, never in a render: two renders are the same).
*/}}
{{- define "binderhub-service.buildkitTlsChecksum" -}}
{{- if eq (include "binderhub-service.buildkitTlsMode" .) "chart" }}
{{- include "binderhub-service.buildkitTls" . | sha256sum }}
{{- else }}
{{- list (include "binderhub-service.buildkitTlsMode" .) (include "binderhub-service.buildkitServerSecret" .) (include "binderhub-service.buildkitClientSecret" .) | toJson | sha256sum }}
{{- end }}
{{- end }}

{{/* The names the daemon's certificate carries: its Service's, as build pods reach it. */}}
{{- define "binderhub-service.buildkitHosts" -}}
{{- $name := include "binderhub-service.buildkitName" . }}
{{- $ns := .Release.Namespace }}
{{- list $name (printf "%s.%s" $name $ns) (printf "%s.%s.svc" $name $ns) (printf "%s.%s.svc.cluster.local" $name $ns) | toJson }}
{{- end }}

{{/* The address build pods reach the daemon at: the Service's name in this namespace. */}}
{{- define "binderhub-service.buildkitHost" -}}
{{- printf "tcp://%s.%s.svc:%d" (include "binderhub-service.buildkitName" .) .Release.Namespace (int .Values.builder.buildkit.port) }}
{{- end }}

{{/*
The mTLS material of the daemon and the build pods, as the two Secrets' data:
{"server": {ca.pem, cert.pem, key.pem}, "client": {...}} in JSON. What the cluster has
(lookup) when both Secrets exist, else a new CA and certificates, made once per render (kept
in .Values) so that the Secrets and the daemon's checksum/tls describe the same ones. The
checksum covers this data only: the Secrets' labels carry the chart's version, and an upgrade
that restarted the daemon would end every running build (issue 22).
*/}}
{{- define "binderhub-service.buildkitTls" -}}
{{- if not (hasKey .Values "__buildkitTls") }}
{{- $name := include "binderhub-service.buildkitName" . }}
{{- $server := (lookup "v1" "Secret" .Release.Namespace (include "binderhub-service.buildkitServerSecret" .)).data | default dict }}
{{- $client := (lookup "v1" "Secret" .Release.Namespace (include "binderhub-service.buildkitClientSecret" .)).data | default dict }}
{{- if not (and (index $server "cert.pem") (index $client "cert.pem")) }}
{{- $hosts := include "binderhub-service.buildkitHosts" . | fromJsonArray }}
{{- $days := int .Values.builder.buildkit.tls.validityDays }}
{{- $ca := genCA (printf "%s-ca" $name) $days }}
{{- $cert := genSignedCert $name nil $hosts $days $ca }}
{{- $clientCert := genSignedCert (printf "%s-client" $name) nil nil $days $ca }}
{{- $server = dict "ca.pem" (b64enc $ca.Cert) "cert.pem" (b64enc $cert.Cert) "key.pem" (b64enc $cert.Key) }}
{{- $client = dict "ca.pem" (b64enc $ca.Cert) "cert.pem" (b64enc $clientCert.Cert) "key.pem" (b64enc $clientCert.Key) }}
{{- end }}
{{- $_ := set .Values "__buildkitTls" (dict "server" $server "client" $client) }}
{{- end }}
{{- toJson (get .Values "__buildkitTls") }}
{{- end }}

{{- define "binderhub-service.buildkitImage" -}}
{{- printf "%s:%s" .Values.builder.buildkit.image.repository .Values.builder.buildkit.image.tag }}
{{- end }}

{{/* buildkitd.toml: the TLS listener, the OCI worker, the registries and extraConfig. */}}
{{- define "binderhub-service.buildkitdToml" -}}
{{- $bk := .Values.builder.buildkit -}}
# Written by the binderhub-service chart (builder.buildkit). Reference:
# https://docs.docker.com/build/buildkit/toml-configuration/
[grpc]
  address = ["tcp://0.0.0.0:{{ int $bk.port }}", "unix:///run/buildkit/buildkitd.sock"]
  [grpc.tls]
    cert = "/etc/buildkit/tls/cert.pem"
    key = "/etc/buildkit/tls/key.pem"
    ca = "/etc/buildkit/tls/ca.pem"

[worker.oci]
  enabled = true
  gc = true
  {{- with $bk.gc.maxUsedSpace }}
  maxUsedSpace = {{ . | quote }}
  {{- end }}
  {{- with $bk.gc.reservedSpace }}
  reservedSpace = {{ . | quote }}
  {{- end }}
  {{- with $bk.gc.minFreeSpace }}
  minFreeSpace = {{ . | quote }}
  {{- end }}

[worker.containerd]
  enabled = false
{{- range $bk.insecureRegistries }}

[registry.{{ . | quote }}]
  http = true
  insecure = true
{{- end }}
{{- with $bk.extraConfig }}

{{ . }}
{{- end }}
{{- end }}

{{/* builder.type buildkit-rootless: the ConfigMap with the build pods' buildkitd.toml. */}}
{{- define "binderhub-service.rootlessName" -}}
{{- include "binderhub-service.suffixed" (list . "buildkit-rootless") }}
{{- end }}

{{/* The service's kubernetes.rootless_buildkit (YAML): the daemon each build pod runs. */}}
{{- define "binderhub-service.rootlessSettings" -}}
{{- $r := .Values.builder.rootless -}}
image: {{ printf "%s:%s" $r.image.repository $r.image.tag | quote }}
image_pull_policy: {{ $r.image.pullPolicy }}
config_map: {{ include "binderhub-service.rootlessName" . }}
{{- with $r.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The rootless daemons' buildkitd.toml: the registries and extraConfig. */}}
{{- define "binderhub-service.rootlessToml" -}}
{{- $r := .Values.builder.rootless -}}
# Written by the binderhub-service chart (builder.rootless) for each build pod's rootless
# buildkitd (its socket, state and OCI worker are the image's defaults).
{{- range $r.insecureRegistries }}

[registry.{{ . | quote }}]
  http = true
  insecure = true
{{- end }}
{{- with $r.extraConfig }}

{{ . }}
{{- end }}
{{- end }}

{{/*
Names and settings of the BuildKit builder (builder.type: buildkit). Only `define`s: this file
renders to nothing.
*/}}
{{- define "binderhub-service.buildkitName" -}}
{{- include "binderhub-service.suffixed" (list . "buildkit") }}
{{- end }}

{{/* The Secret with the daemon's certificate (ca.pem, cert.pem, key.pem). */}}
{{- define "binderhub-service.buildkitServerSecret" -}}
{{- include "binderhub-service.suffixed" (list . "buildkit-server") }}
{{- end }}

{{/* The Secret with the build pods' client certificate (ca.pem, cert.pem, key.pem). */}}
{{- define "binderhub-service.buildkitClientSecret" -}}
{{- include "binderhub-service.suffixed" (list . "buildkit-client") }}
{{- end }}

{{/* The address build pods reach the daemon at: the Service's name in this namespace. */}}
{{- define "binderhub-service.buildkitHost" -}}
{{- printf "tcp://%s.%s.svc:%d" (include "binderhub-service.buildkitName" .) .Release.Namespace (int .Values.builder.buildkit.port) }}
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

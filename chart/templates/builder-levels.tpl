{{/*
Which Pod Security level each builder.type needs, and the install-time check of the namespace's
enforced level (issue 24). Only `define`s and one check (builder-checks.yaml renders nothing).

The levels are those of every pod the builder puts into the release's namespace, the service's
included (tests/cluster/test_builder_levels.py has the API server's admission judge each one):
  docker-socket      privileged  build pods mount the Docker socket (hostPath)
  dind               privileged  the docker-in-docker DaemonSet (privileged, hostPath)
  buildkit           privileged  the BuildKit daemon's pod (privileged)
  buildkit-rootless  baseline    build pods with a rootless daemon (user namespaces: no
                                 seccomp field, privilege escalation for newuidmap)
  buildkit-external  restricted  no daemon here; build pods and the service are restricted
*/}}
{{- define "binderhub-service.builderLevels" -}}
{{- dict "docker-socket" "privileged" "dind" "privileged" "buildkit" "privileged" "buildkit-rootless" "baseline" "buildkit-external" "restricted" | toJson }}
{{- end }}

{{/* What keeps a builder out of a stricter level, for the message. */}}
{{- define "binderhub-service.builderNeeds" -}}
{{- $needs := dict
    "docker-socket" "build pods that mount the nodes' Docker socket (hostPath)"
    "dind" "a privileged docker-in-docker DaemonSet with hostPath volumes"
    "buildkit" "a privileged BuildKit daemon pod"
    "buildkit-rootless" "build pods whose rootless BuildKit daemon makes user namespaces (no seccomp profile set, privilege escalation for newuidmap)"
    "buildkit-external" "nothing privileged"
}}
{{- get $needs . }}
{{- end }}

{{/*
The level the release's pods need: the builder's, or privileged when the service's own pod uses
the node's network (hostNetwork, which baseline refuses).
*/}}
{{- define "binderhub-service.releaseLevel" -}}
{{- $levels := include "binderhub-service.builderLevels" . | fromJson }}
{{- if .Values.hostNetwork }}privileged{{ else }}{{ get $levels .Values.builder.type }}{{ end }}
{{- end }}

{{/*
The checks of builder.type: its required values, and the namespace's enforced Pod Security
level read at install (lookup; `helm template` has no cluster and reads nothing, so it passes).
*/}}
{{- define "binderhub-service.builderChecks" -}}
{{- $b := .Values.builder }}
{{- if eq $b.type "buildkit-external" }}
{{- if not $b.external.host }}
{{- fail "builder.external.host is empty: builder.type buildkit-external needs the address of the BuildKit daemon it builds on (tcp://host:port)" }}
{{- end }}
{{- if not $b.external.tlsSecret }}
{{- fail "builder.external.tlsSecret is empty: builder.type buildkit-external needs a Secret of this namespace with the client certificate for the daemon at builder.external.host (ca.pem, cert.pem, key.pem)" }}
{{- end }}
{{- end }}
{{- if eq $b.type "buildkit-rootless" }}
{{- if not (and $b.rootless.image.repository $b.rootless.image.tag) }}
{{- fail "builder.rootless.image.repository and builder.rootless.image.tag name the rootless BuildKit daemon's image of builder.type buildkit-rootless: one is empty" }}
{{- end }}
{{- end }}
{{- $ns := lookup "v1" "Namespace" "" .Release.Namespace }}
{{- $labels := dig "metadata" "labels" dict $ns }}
{{- $enforce := get $labels "pod-security.kubernetes.io/enforce" }}
{{- $needed := include "binderhub-service.releaseLevel" . }}
{{- $rank := dict "privileged" 0 "baseline" 1 "restricted" 2 }}
{{- if and (hasKey $rank $enforce) (lt (int (get $rank $needed)) (int (get $rank $enforce))) }}
{{- $levels := include "binderhub-service.builderLevels" . | fromJson }}
{{- $fit := list }}
{{- range $type := list "buildkit-external" "buildkit-rootless" "buildkit" "dind" "docker-socket" }}
{{- if ge (int (get $rank (get $levels $type))) (int (get $rank $enforce)) }}
{{- $fit = append $fit (printf "%s (%s)" $type (get $levels $type)) }}
{{- end }}
{{- end }}
{{- if .Values.hostNetwork }}
{{- fail (printf "namespace %q enforces Pod Security %q (label pod-security.kubernetes.io/enforce), which refuses the service's pod with hostNetwork: true; set hostNetwork: false" .Release.Namespace $enforce) }}
{{- end }}
{{- fail (printf "namespace %q enforces Pod Security %q (label pod-security.kubernetes.io/enforce), which refuses a pod of builder.type %s: it needs %s (level %s). builder.type that fit this namespace: %s (docs/kubernetes.md, \"Which builder\")" .Release.Namespace $enforce $b.type (include "binderhub-service.builderNeeds" $b.type) $needed (join ", " $fit)) }}
{{- end }}
{{- end }}

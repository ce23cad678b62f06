{{/*
Names. Every object's name comes from one of these helpers, so that fullnameOverride and
the release name shape all of them the same way.
*/}}
{{- define "binderhub-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "binderhub-service.fullname" -}}
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

{{/* A name derived from the fullname with a suffix, kept within 63 characters. */}}
{{- define "binderhub-service.suffixed" -}}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "binderhub-service.fullname" (index . 0) | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{- define "binderhub-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; call with (list $ "component"). */}}
{{- define "binderhub-service.labels" -}}
{{- $ := index . 0 -}}
helm.sh/chart: {{ include "binderhub-service.chart" $ }}
{{ include "binderhub-service.selectorLabels" . }}
app.kubernetes.io/version: {{ $.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $.Release.Service }}
app.kubernetes.io/part-of: binderhub-service
{{- end }}

{{/* Labels that select a component's pods; call with (list $ "component"). */}}
{{- define "binderhub-service.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "binderhub-service.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "binderhub-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "binderhub-service.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "binderhub-service.buildServiceAccountName" -}}
{{- if .Values.builder.serviceAccount.create }}
{{- default (include "binderhub-service.suffixed" (list . "build")) .Values.builder.serviceAccount.name }}
{{- else }}
{{- .Values.builder.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "binderhub-service.secretName" -}}
{{- default (include "binderhub-service.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
The value of kubernetes.instance: the label the service puts on its build Jobs. It must be
unique per namespace, as the fullname is.
*/}}
{{- define "binderhub-service.instance" -}}
{{- include "binderhub-service.fullname" . }}
{{- end }}

{{/* The docker-in-docker daemon's socket directory on the nodes: one per release. */}}
{{- define "binderhub-service.dindSocketDir" -}}
{{- printf "%s/%s-%s" (trimSuffix "/" .Values.builder.dind.hostSocketDir) .Release.Namespace .Release.Name }}
{{- end }}

{{/*
The images of a release: `make release` writes their repositories into the released chart's
values (chart/release_chart.py) and the version into its appVersion, the default tag. A chart
that was not released names none, and says how to get one instead of rendering a pod that
can never pull its image (issue 22).
*/}}
{{- define "binderhub-service.image" -}}
{{- if not .Values.image.repository }}
{{- fail "image.repository is empty: this chart was not released, so it names no image of the service. Install a released chart (docs/helm.md), or build and push both images and a chart that names them with `make release REGISTRY=<registry> VERSION=<version>` (the service's image alone: `docker build .`), or set image.repository" }}
{{- end }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "binderhub-service.builderImage" -}}
{{- if not .Values.builder.image.repository }}
{{- fail "builder.image.repository is empty: this chart was not released, so it names no builder image. Install a released chart (docs/helm.md), or build and push both images and a chart that names them with `make release REGISTRY=<registry> VERSION=<version>` (the builder image alone: `docker build -f images/repo2docker/Dockerfile .`), or set builder.image.repository" }}
{{- end }}
{{- printf "%s:%s" .Values.builder.image.repository (default .Chart.AppVersion .Values.builder.image.tag) }}
{{- end }}

{{/*
Whether the Secret holds a key: a non-empty value when the chart makes the Secret, or the
key listed in secrets.existingSecretKeys. Call with (list $ "value name" "key").
*/}}
{{- define "binderhub-service.hasSecret" -}}
{{- $ := index . 0 }}
{{- if $.Values.secrets.existingSecret }}
{{- if has (index . 2) $.Values.secrets.existingSecretKeys }}true{{ end }}
{{- else if index $.Values.secrets (index . 1) }}true{{ end }}
{{- end }}

{{/*
Registry credentials: ONE setting serves the service's image check and every build's push
(issue 14). registry.username + secrets.registryPassword become a docker config.json in the
chart's Secret (key docker-config.json); secrets.dockerConfigJson is taken as it is. Build
pods mount that key (kubernetes.docker_config_secret) and the service reads the same file
(registry.docker_config), again whenever the Secret changes.
*/}}
{{- define "binderhub-service.checkCredentials" -}}
{{- $s := .Values.secrets }}
{{- if $s.existingSecret }}
{{- if and (has "registry-password" $s.existingSecretKeys) (not (has "docker-config.json" $s.existingSecretKeys)) }}
{{- fail "secrets.existingSecret: a registry-password key reaches only the service's image check; build pods push with a docker-config.json key (a docker config.json for the registry host): add it to the Secret and to existingSecretKeys" }}
{{- end }}
{{- else }}
{{- if and $s.registryPassword $s.dockerConfigJson }}
{{- fail "secrets.registryPassword and secrets.dockerConfigJson are both set: give the registry credentials once (the password with registry.username, or a docker config.json)" }}
{{- end }}
{{- if and $s.registryPassword (not .Values.registry.username) }}
{{- fail "secrets.registryPassword is set but registry.username is not" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The registry host of the image names (the first part of the image prefix). */}}
{{- define "binderhub-service.registryHost" -}}
{{- $prefix := .Values.config.image_prefix | default .Values.imagePrefix | default "127.0.0.1:5000/binder-" }}
{{- first (splitList "/" $prefix) }}
{{- end }}

{{/* The docker config.json the chart makes from registry.username and the password. */}}
{{- define "binderhub-service.madeDockerConfig" -}}
{{- $host := include "binderhub-service.registryHost" . }}
{{- $key := ternary "https://index.docker.io/v1/" $host (has $host (list "docker.io" "index.docker.io" "registry-1.docker.io")) }}
{{- $auth := printf "%s:%s" .Values.registry.username .Values.secrets.registryPassword | b64enc }}
{{- dict "auths" (dict $key (dict "auth" $auth)) | toJson }}
{{- end }}

{{/* Whether the Secret holds a docker config.json (given, or made from the password). */}}
{{- define "binderhub-service.hasDockerConfig" -}}
{{- if include "binderhub-service.hasSecret" (list . "dockerConfigJson" "docker-config.json") }}true
{{- else if and (not .Values.secrets.existingSecret) .Values.secrets.registryPassword .Values.registry.username }}true
{{- end }}
{{- end }}

{{- define "binderhub-service.stateDir" -}}/var/lib/binderhub-service{{- end }}

{{/*
Where the state is kept (issue 27): a database several replicas share, whose URL is in
database.existingSecret; else the SQLite file in the state directory, on the chart's claim
with persistence.enabled. "true" when the state is the SQLite file.
*/}}
{{- define "binderhub-service.sqliteState" -}}
{{- if not .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{/* "true" when the state directory is a PersistentVolumeClaim (the chart's or yours). */}}
{{- define "binderhub-service.persistentState" -}}
{{- if and .Values.persistence.enabled (include "binderhub-service.sqliteState" .) }}true{{ end }}
{{- end }}
{{- define "binderhub-service.configDir" -}}/etc/binderhub-service{{- end }}
{{- define "binderhub-service.secretDir" -}}/etc/binderhub-service-secret{{- end }}

{{/*
The service's settings file: what the chart's values say, with .Values.config merged over
it (config wins, key by key; lists are replaced whole).
*/}}
{{- define "binderhub-service.settings" -}}
{{- $v := .Values }}
{{- $k8s := dict
    "namespace" .Release.Namespace
    "instance" (include "binderhub-service.instance" .)
    "builder_image" (include "binderhub-service.builderImage" .)
    "builder_image_pull_policy" $v.builder.image.pullPolicy
    "builder" (include "binderhub-service.executorBuilder" .)
    "ttl_seconds_after_finished" (int $v.builder.ttlSecondsAfterFinished)
}}
{{- if eq $v.builder.type "buildkit" }}
{{- $_ := set $k8s "buildkit_host" (include "binderhub-service.buildkitHost" .) }}
{{- $_ := set $k8s "buildkit_tls_secret" (include "binderhub-service.buildkitClientSecret" .) }}
{{- $_ := set $k8s "buildkit_tls_keys" (include "binderhub-service.buildkitTlsKeys" . | fromJson) }}
{{- $_ := set $k8s "run_as_user" 1000 }}
{{- else if eq $v.builder.type "buildkit-external" }}
{{- $_ := set $k8s "buildkit_host" $v.builder.external.host }}
{{- $_ := set $k8s "buildkit_tls_secret" $v.builder.external.tlsSecret }}
{{- with $v.builder.external.tlsServerName }}{{ $_ := set $k8s "buildkit_tls_servername" . }}{{ end }}
{{- $_ := set $k8s "run_as_user" 1000 }}
{{- else if eq $v.builder.type "buildkit-rootless" }}
{{- $_ := set $k8s "rootless_buildkit" (include "binderhub-service.rootlessSettings" . | fromYaml) }}
{{- $_ := set $k8s "run_as_user" 1000 }}
{{- else if eq $v.builder.type "dind" }}
{{- $_ := set $k8s "docker_socket" (printf "%s/docker.sock" (include "binderhub-service.dindSocketDir" .)) }}
{{- else }}
{{- $_ := set $k8s "docker_socket" $v.builder.dockerSocket }}
{{- end }}
{{- /* build pods: the proxy and the CA bundle (each build pod adds it to its image's) */}}
{{- $buildEnv := dict }}
{{- range (include "binderhub-service.proxyEnv" (list . list) | fromYamlArray) }}
{{- $_ := set $buildEnv .name .value }}
{{- end }}
{{- with $buildEnv }}{{ $_ := set $k8s "env" . }}{{ end }}
{{- with include "binderhub-service.caConfigMap" . }}
{{- $_ := set $k8s "ca_bundle" (dict "name" . "key" (include "binderhub-service.caKey" $)) }}
{{- end }}
{{- $sa := include "binderhub-service.buildServiceAccountName" . }}
{{- if $sa }}{{ $_ := set $k8s "service_account" $sa }}{{ end }}
{{- with $v.builder.nodeSelector }}{{ $_ := set $k8s "node_selector" . }}{{ end }}
{{- with $v.builder.tolerations }}{{ $_ := set $k8s "tolerations" . }}{{ end }}
{{- with $v.builder.affinity }}{{ $_ := set $k8s "affinity" . }}{{ end }}
{{- with $v.builder.resources }}{{ $_ := set $k8s "resources" . }}{{ end }}
{{- with $v.builder.priorityClassName }}{{ $_ := set $k8s "priority_class_name" . }}{{ end }}
{{- $secret := include "binderhub-service.secretName" . }}
{{- $hasDockerConfig := include "binderhub-service.hasDockerConfig" . }}
{{- if $hasDockerConfig }}
{{- $_ := set $k8s "docker_config_secret" (dict "name" $secret "key" "docker-config.json") }}
{{- end }}
{{- if $v.secrets.gitCredentials }}
{{- fail "secrets.gitCredentials was removed (issue 20): give git credentials to the service as secrets.settings.forges (credentials: url prefix, username, password); each build pod gets the one that covers its repository (docs/kubernetes.md, Credentials)" }}
{{- end }}
{{- $registry := dict }}
{{- with $v.registry.url }}{{ $_ := set $registry "url" . }}{{ end }}
{{- with $v.registry.username }}{{ $_ := set $registry "username" . }}{{ end }}
{{- if $hasDockerConfig }}
{{- $_ := set $registry "docker_config" (printf "%s/docker-config.json" (include "binderhub-service.secretDir" .)) }}
{{- end }}
{{- $tokens := list }}
{{- range $v.apiTokens }}
{{- $hash := .sha256 | default (sha256sum (.token | default "")) }}
{{- $tokens = append $tokens (dict "name" .name "sha256" $hash "scopes" (.scopes | default (list "builds:read"))) }}
{{- end }}
{{- $settings := dict
    "listen" (printf "0.0.0.0:%d" (int $v.containerPort))
    "executor" "kubernetes"
    "state_path" (printf "%s/state.sqlite" (include "binderhub-service.stateDir" .))
    "allowed_repos" $v.allowedRepos
    "repos" $v.repos
    "registry" $registry
    "kubernetes" $k8s
    "auth" (dict "tokens" $tokens "open_read" $v.openRead)
    "webhooks" (dict "reconcile_interval" $v.reconcileInterval)
    "limits" (dict
        "max_concurrent_builds" (int $v.limits.maxConcurrentBuilds)
        "max_concurrent_builds_per_repo" (int $v.limits.maxConcurrentBuildsPerRepo)
        "build_timeout" $v.limits.buildTimeout)
    "quotas" (dict
        "per_user" (include "binderhub-service.quotaLimits" $v.quotas.perUser | fromYaml)
        "per_repo" (include "binderhub-service.quotaLimits" $v.quotas.perRepo | fromYaml))
    "log_level" $v.logLevel
    "log_format" $v.logFormat
    "retention" (dict
        "keep_per_ref" (int $v.retention.keepPerRef)
        "keep_days" $v.retention.keepDays
        "in_use" $v.retention.inUse
        "in_use_namespaces" (include "binderhub-service.inUseNamespaces" . | fromJsonArray)
        "guard_timeout" $v.retention.guardTimeout)
}}
{{- with $v.publicUrl }}{{ $_ := set $settings "public_url" . }}{{ end }}
{{- if include "binderhub-service.caConfigMap" . }}
{{- $_ := set $settings "ca_bundle" (printf "%s/ca.crt" (include "binderhub-service.caDir" .)) }}
{{- end }}
{{- if $v.prepull.enabled }}
{{- $_ := set $settings "prepull" (include "binderhub-service.prepullSettings" . | fromYaml) }}
{{- end }}
{{- with $v.imagePrefix }}{{ $_ := set $settings "image_prefix" . }}{{ end }}
{{- toYaml (mustMergeOverwrite $settings (deepCopy $v.config)) }}
{{- end }}

{{/* One quota section of the settings (``quotas.per_user``, ``quotas.per_repo``). */}}
{{- define "binderhub-service.quotaLimits" -}}
builds_per_window: {{ int .buildsPerWindow }}
window: {{ .window }}
max_queued: {{ int .maxQueued }}
{{- end }}

{{/*
"true" when the chart is installed into a cluster it can read (helm install, upgrade, or
template --dry-run=server), not rendered offline (helm template, GitOps tools): the
namespace's kube-root-ca.crt ConfigMap, which Kubernetes puts in every namespace, is found.
Checks that need the cluster (a named Secret exists) run only then.
*/}}
{{- define "binderhub-service.liveCluster" -}}
{{- if (lookup "v1" "ConfigMap" .Release.Namespace "kube-root-ca.crt") }}true{{ end }}
{{- end }}

{{/*
Fail, naming the value, when a live cluster lacks the object a value names. Call with
(list $ "Secret" "name" "the.value.path").
*/}}
{{- define "binderhub-service.requireObject" -}}
{{- include "binderhub-service.requireObjectIn" (append . (index . 0).Release.Namespace) }}
{{- end }}

{{/* requireObject in the namespace given last: (list $ kind name value namespace). */}}
{{- define "binderhub-service.requireObjectIn" -}}
{{- $ := index . 0 }}
{{- $kind := index . 1 }}
{{- $name := index . 2 }}
{{- $ns := index . 4 }}
{{- if and $name (include "binderhub-service.liveCluster" $) }}
{{- if not (lookup "v1" $kind $ns $name) }}
{{- fail (printf "%s: %s %q does not exist in namespace %q; create it first" (index . 3) $kind $name $ns) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The CA bundle (caBundle): the ConfigMap and key holding it, "" when none is given.
*/}}
{{- define "binderhub-service.caConfigMap" -}}
{{- $ca := .Values.caBundle }}
{{- if and $ca.pem $ca.existingConfigMap }}
{{- fail "caBundle.pem and caBundle.existingConfigMap are both set: give the certificates once" }}
{{- end }}
{{- if $ca.pem }}
{{- include "binderhub-service.suffixed" (list . "ca") }}
{{- else if $ca.existingConfigMap }}
{{- include "binderhub-service.requireObject" (list . "ConfigMap" $ca.existingConfigMap "caBundle.existingConfigMap") }}
{{- $ca.existingConfigMap }}
{{- end }}
{{- end }}

{{- define "binderhub-service.caKey" -}}
{{- if .Values.caBundle.pem }}ca.crt{{ else }}{{ .Values.caBundle.existingConfigMapKey }}{{ end }}
{{- end }}

{{/* Where pods find the CA bundle: a directory holding it as ca.crt only. */}}
{{- define "binderhub-service.caDir" -}}/etc/binderhub-service-ca{{- end }}

{{/*
builder.external.host's host name or address (tcp://host:port; an IPv6 address without
its brackets), "" when none is given.
*/}}
{{- define "binderhub-service.externalBuildkitHostname" -}}
{{- $address := trimPrefix "tcp://" .Values.builder.external.host }}
{{- regexReplaceAll ":[0-9]+$" $address "" | trimPrefix "[" | trimSuffix "]" }}
{{- end }}

{{/*
NO_PROXY: the cluster's own names (and the daemon's Service, or builder.external.host's
host, which build pods reach by name: gRPC, like curl and Go, goes through HTTPS_PROXY
unless NO_PROXY says not) first, then proxy.noProxy.
*/}}
{{- define "binderhub-service.noProxy" -}}
{{- $ := index . 0 }}
{{- $names := concat (list "localhost" "127.0.0.1" ".svc" ".cluster.local") (index . 1) }}
{{- if eq $.Values.builder.type "buildkit" }}
{{- $names = append $names (include "binderhub-service.buildkitName" $) }}
{{- else if eq $.Values.builder.type "buildkit-external" }}
{{- with include "binderhub-service.externalBuildkitHostname" $ }}{{ $names = append $names . }}{{ end }}
{{- end }}
{{- with $.Values.proxy.noProxy }}{{ $names = append $names . }}{{ end }}
{{- join "," $names }}
{{- end }}

{{/*
The proxy's env entries (both spellings: Go reads either, curl and git the lower case).
Call with (list $ extraNoProxy): the service adds the Kubernetes API's address, which the
kubelet puts in $(KUBERNETES_SERVICE_HOST) (the Python client reads the proxy variables).
*/}}
{{- define "binderhub-service.proxyEnv" -}}
{{- $ := index . 0 }}
{{- $p := $.Values.proxy }}
{{- if or $p.httpProxy $p.httpsProxy }}
{{- range $name, $value := dict "HTTP_PROXY" $p.httpProxy "HTTPS_PROXY" $p.httpsProxy "NO_PROXY" (include "binderhub-service.noProxy" .) }}
{{- if $value }}
- name: {{ $name }}
  value: {{ $value | quote }}
- name: {{ lower $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The labels the service puts on its build Jobs' pods (jobs/executors: selector_labels). */}}
{{- define "binderhub-service.buildSelectorLabels" -}}
app.kubernetes.io/managed-by: binderhub-service
app.kubernetes.io/instance: {{ include "binderhub-service.instance" . }}
app.kubernetes.io/component: build
{{- end }}

{{/*
Egress rules of build pods and the BuildKit daemon: networkPolicy.egressAllowRules (the
names and ranges of zero-to-jupyterhub's), then the extra rules given. Call with
(list $ extraRules). An empty result denies every connection.
*/}}
{{- define "binderhub-service.egressRules" -}}
{{- $ := index . 0 }}
{{- $allow := $.Values.networkPolicy.egressAllowRules }}
{{- $private := list "10.0.0.0/8" "172.16.0.0/12" "192.168.0.0/16" }}
{{- $rules := list }}
{{- if $allow.dnsPorts }}
{{- $to := list (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" "kube-system"))) }}
{{- range (append $private "169.254.0.0/16") }}
{{- $to = append $to (dict "ipBlock" (dict "cidr" .)) }}
{{- end }}
{{- $rules = append $rules (dict "ports" (list (dict "port" 53 "protocol" "UDP") (dict "port" 53 "protocol" "TCP")) "to" $to) }}
{{- end }}
{{- if $allow.nonPrivateIPs }}
{{- $rules = append $rules (dict "to" (list (dict "ipBlock" (dict "cidr" "0.0.0.0/0" "except" (append $private "169.254.0.0/16"))))) }}
{{- end }}
{{- if $allow.privateIPs }}
{{- $to := list }}
{{- range $private }}{{ $to = append $to (dict "ipBlock" (dict "cidr" .)) }}{{ end }}
{{- $rules = append $rules (dict "to" $to) }}
{{- end }}
{{- if $allow.cloudMetadataServer }}
{{- $rules = append $rules (dict "to" (list (dict "ipBlock" (dict "cidr" "169.254.169.254/32")))) }}
{{- end }}
{{- $rules = concat $rules (index . 1) }}
{{- if $rules }}
{{- toYaml $rules }}
{{- else }}
[]
{{- end }}
{{- end }}

{{/*
The service's kubernetes.builder for builder.type: every buildkit* type builds with builder/'s
engine on a BuildKit daemon ("buildkit": a daemon at an address; "buildkit-rootless": one in
the build pod); docker-socket and dind through a Docker socket.
*/}}
{{- define "binderhub-service.executorBuilder" -}}
{{- $type := .Values.builder.type }}
{{- if eq $type "buildkit-rootless" }}buildkit-rootless
{{- else if hasPrefix "buildkit" $type }}buildkit
{{- else }}docker-socket
{{- end }}
{{- end }}

{{/* "true" when build pods build with builder/'s buildkit engine (every buildkit* type). */}}
{{- define "binderhub-service.buildkitEngine" -}}
{{- if hasPrefix "buildkit" .Values.builder.type }}true{{ end }}
{{- end }}

{{/* Where the pre-pull DaemonSet, its Lease and Role live: prepull.namespace, else the release's. */}}
{{- define "binderhub-service.prepullNamespace" -}}
{{- .Values.prepull.namespace | default .Release.Namespace }}
{{- end }}

{{/*
The setting `prepull` from the values `prepull` (issue 26): the DaemonSet's pods idle in
the service's own image (a `sleep`), which the nodes can pull with the chart's
imagePullSecrets, added to prepull.imagePullSecrets.
*/}}
{{- define "binderhub-service.prepullSettings" -}}
{{- $p := .Values.prepull }}
namespace: {{ include "binderhub-service.prepullNamespace" . | quote }}
{{- $secrets := list }}
{{- range $p.imagePullSecrets }}{{ $secrets = append $secrets . }}{{ end }}
{{- range .Values.imagePullSecrets }}{{ if not (has .name $secrets) }}{{ $secrets = append $secrets .name }}{{ end }}{{ end }}
enabled: true
node_selector: {{ $p.nodeSelector | default dict | toJson }}
tolerations: {{ $p.tolerations | default list | toJson }}
image_pull_secrets: {{ $secrets | toJson }}
max_nodes_pulling: {{ int $p.maxNodesPulling }}
max_images: {{ int $p.maxImages }}
interval: {{ $p.interval }}
pause_image: {{ include "binderhub-service.image" . | quote }}
{{- end }}

{{/*
The environment that gives a pod of the service's image the service's settings: the
database URL (database.existingSecret) and each secrets.settings key (or each settings.*.json
key of secrets.existingSecret) as a BINDERHUB_SERVICE_<SECTION> JSON variable. The service's
Deployment and the retention CronJob both take it, so that both read the same settings.
*/}}
{{- define "binderhub-service.settingsEnv" -}}
{{- $secret := include "binderhub-service.secretName" . }}
{{- with .Values.database.existingSecret }}
- name: BINDERHUB_SERVICE_DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.database.existingSecretKey }}
{{- end }}
{{- $settingsKeys := list }}
{{- if .Values.secrets.existingSecret }}
{{- range .Values.secrets.existingSecretKeys }}
{{- if regexMatch "^settings\\.[a-z_0-9]+\\.json$" . }}
{{- $settingsKeys = append $settingsKeys (trimSuffix ".json" (trimPrefix "settings." .)) }}
{{- end }}
{{- end }}
{{- else }}
{{- $settingsKeys = keys .Values.secrets.settings | sortAlpha }}
{{- end }}
{{- range $settingsKeys }}
- name: BINDERHUB_SERVICE_{{ upper . }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: settings.{{ . }}.json
{{- end }}
{{- end }}

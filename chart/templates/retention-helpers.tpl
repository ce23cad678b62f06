{{/*
Registry retention (retention.*): the names of its objects and the namespaces whose pods'
images are in use (retention.inUseNamespaces, else the release's), as a JSON list.
*/}}
{{- define "binderhub-service.retentionName" -}}
{{- include "binderhub-service.suffixed" (list . "retention") }}
{{- end }}

{{- define "binderhub-service.inUseNamespaces" -}}
{{- default (list .Release.Namespace) .Values.retention.inUseNamespaces | uniq | toJson }}
{{- end }}

{{- define "binderhub-service.retentionServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- include "binderhub-service.retentionName" . }}
{{- else }}
{{- include "binderhub-service.serviceAccountName" . }}
{{- end }}
{{- end }}

{{/*
Refuse what cannot work: a run judges images by the service's records, so it needs them
(a database, or the state file on a claim it can mount).
*/}}
{{- define "binderhub-service.checkRetention" -}}
{{- if and (include "binderhub-service.sqliteState" .) (not (include "binderhub-service.persistentState" .)) }}
{{- fail "retention.enabled needs the service's records, which it reads and adds to: a database (database.existingSecret), or the state file on a claim (persistence.enabled: true); with persistence.enabled false the records live in the service pod's emptyDir, which the CronJob cannot read" }}
{{- end }}
{{- end }}

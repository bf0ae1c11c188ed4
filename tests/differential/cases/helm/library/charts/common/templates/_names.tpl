{{- define "common.labels" -}}
managed-by: {{ .Release.Service }}
{{- range $k, $v := .Values.labels }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end -}}
{{- define "common.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Values.name }}
  labels: {{- include "common.labels" . | nindent 4 }}
data:
  library: {{ .Values.common.libDefault | quote }}
{{- end -}}

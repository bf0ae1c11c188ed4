{{- define "tplfn.greeting" -}}
hello {{ . }}
{{- end -}}
{{- define "tplfn.recurse" -}}
{{- if gt (int .) 0 -}}{{ . }},{{ include "tplfn.recurse" (sub (int .) 1) }}{{- end -}}
{{- end -}}

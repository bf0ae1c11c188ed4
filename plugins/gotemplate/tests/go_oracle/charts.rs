//! Whole chart templates, as `helm create` writes them.

use super::*;

/// The templates `helm create` writes, with the values real charts override, through both engines.
#[test]
fn helm_create_chart_renders_like_go() {
    const HELPERS: &str = r#"{{/*
Expand the name of the chart.
*/}}
{{- define "mychart.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mychart.fullname" -}}
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

{{- define "mychart.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mychart.labels" -}}
helm.sh/chart: {{ include "mychart.chart" . }}
{{ include "mychart.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "mychart.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mychart.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mychart.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mychart.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}
"#;
    const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "mychart.fullname" . }}
  labels:
    {{- include "mychart.labels" . | nindent 4 }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "mychart.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      labels:
        {{- include "mychart.labels" . | nindent 8 }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      serviceAccountName: {{ include "mychart.serviceAccountName" . }}
      securityContext:
        {{- toYaml .Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ .Chart.Name }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          ports:
            - name: http
              containerPort: {{ .Values.service.port }}
              protocol: TCP
          env:
            {{- range $k, $v := .Values.env }}
            - name: {{ $k }}
              value: {{ $v | quote }}
            {{- end }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          {{- with .Values.volumeMounts }}
          volumeMounts:
            {{- toYaml . | nindent 12 }}
          {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
"#;
    const INGRESS: &str = r#"{{- if .Values.ingress.enabled -}}
{{- $fullName := include "mychart.fullname" . -}}
{{- $svcPort := .Values.service.port -}}
apiVersion: {{ if semverCompare ">=1.19-0" .Capabilities.KubeVersion.GitVersion }}networking.k8s.io/v1{{ else }}networking.k8s.io/v1beta1{{ end }}
kind: Ingress
metadata:
  name: {{ $fullName }}
  labels:
    {{- include "mychart.labels" . | nindent 4 }}
  {{- with .Values.ingress.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- if .Values.ingress.className }}
  ingressClassName: {{ .Values.ingress.className }}
  {{- end }}
  {{- if .Values.ingress.tls }}
  tls:
    {{- range .Values.ingress.tls }}
    - hosts:
        {{- range .hosts }}
        - {{ . | quote }}
        {{- end }}
      secretName: {{ .secretName }}
    {{- end }}
  {{- end }}
  rules:
    {{- range .Values.ingress.hosts }}
    - host: {{ .host | quote }}
      http:
        paths:
          {{- range .paths }}
          - path: {{ .path }}
            pathType: {{ .pathType }}
            backend:
              service:
                name: {{ $fullName }}
                port:
                  number: {{ $svcPort }}
          {{- end }}
    {{- end }}
{{- end }}
"#;
    const CONFIGMAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "mychart.fullname" . }}-config
data:
  {{- range $key, $value := .Values.config }}
  {{ $key }}: {{ tpl (toString $value) $ | quote }}
  {{- end }}
  settings.json: |
    {{- toJson .Values.settings | nindent 4 }}
  settings.yaml: |
    {{- toYaml .Values.settings | nindent 4 }}
  checksum: {{ toYaml .Values.settings | sha256sum | trunc 8 }}
  secret: {{ .Values.password | default "changeme" | b64enc | quote }}
  {{- if .Values.extra }}
  {{- $merged := merge (dict "a" 1) .Values.extra }}
  merged: {{ $merged | toJson | quote }}
  {{- end }}
  replicas-times-two: {{ mul .Values.replicaCount 2 }}
  port-as-string: {{ .Values.service.port | toString | quote }}
  big-number: {{ .Values.bigNumber }}
  big-number-int: {{ .Values.bigNumber | int64 }}
  float: {{ .Values.ratio }}
  lookup: {{ lookup "v1" "Secret" .Release.Namespace "x" | len }}
"#;
    let values = |overrides: serde_json::Value| {
        let mut v = json!({
            "replicaCount": 1,
            "image": {"repository": "nginx", "pullPolicy": "IfNotPresent", "tag": ""},
            "imagePullSecrets": [],
            "nameOverride": "",
            "fullnameOverride": "",
            "serviceAccount": {"create": true, "annotations": {}, "name": ""},
            "podAnnotations": {},
            "podLabels": {},
            "podSecurityContext": {},
            "service": {"type": "ClusterIP", "port": 80},
            "ingress": {"enabled": false, "className": "", "annotations": {}, "hosts": [{"host": "chart-example.local", "paths": [{"path": "/", "pathType": "ImplementationSpecific"}]}], "tls": []},
            "resources": {},
            "autoscaling": {"enabled": false},
            "nodeSelector": {},
            "tolerations": [],
            "env": {},
            "config": {"greeting": "hello {{ .Release.Name }}", "count": 3},
            "settings": {"debug": true, "level": "info", "items": ["a", "b"], "nested": {"x": 1.5}},
            "bigNumber": 1000000,
            "ratio": 0.25
        });
        if let (Some(base), Some(extra)) = (v.as_object_mut(), overrides.as_object()) {
            for (k, x) in extra {
                base.insert(k.clone(), x.clone());
            }
        }
        v
    };
    let data = |overrides: serde_json::Value, release: &str| {
        json!({
            "Values": values(overrides),
            "Chart": {"Name": "mychart", "Version": "0.1.0+build.1", "AppVersion": "1.16.0"},
            "Release": {"Name": release, "Namespace": "default", "Service": "Helm"},
            "Capabilities": {"KubeVersion": {"GitVersion": "v1.29.3-gke.1200"}},
            "Template": {"Name": "mychart/templates/main.yaml", "BasePath": "mychart/templates"}
        })
    };
    let chart = |main: &str, d: serde_json::Value| {
        multi(
            &[("mychart/templates/_helpers.tpl", HELPERS), ("main", main)],
            d,
        )
    };
    let overrides = [
        json!({}),
        json!({"fullnameOverride": "a-very-long-full-name-override-that-goes-beyond-sixty-three-characters-x"}),
        json!({"nameOverride": "web", "image": {"repository": "r", "tag": "v2", "pullPolicy": "Always"}, "replicaCount": 3}),
        json!({"autoscaling": {"enabled": true}, "podAnnotations": {"prometheus.io/scrape": "true", "checksum/config": "abc"}, "podLabels": {"tier": "web"}}),
        json!({"resources": {"limits": {"cpu": "100m", "memory": "128Mi"}, "requests": {"cpu": 0.5}}, "nodeSelector": {"disktype": "ssd"}, "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]}),
        json!({"env": {"B": 2, "A": "x", "EMPTY": "", "BOOL": true}, "imagePullSecrets": [{"name": "regcred"}], "volumeMounts": [{"name": "data", "mountPath": "/data"}]}),
        json!({"ingress": {"enabled": true, "className": "nginx", "annotations": {"a/b": "c"}, "hosts": [{"host": "x.example", "paths": [{"path": "/", "pathType": "Prefix"}, {"path": "/api", "pathType": "Exact"}]}], "tls": [{"secretName": "tls", "hosts": ["x.example"]}]}}),
        json!({"serviceAccount": {"create": false, "name": ""}, "password": "s3cret", "extra": {"b": [1, 2], "a": 5}}),
        json!({"serviceAccount": {"create": true, "name": "custom"}, "service": {"port": 8080}}),
    ];
    let mut cases = Vec::new();
    for (i, o) in overrides.iter().enumerate() {
        let release = if i % 2 == 0 {
            "release"
        } else {
            "mychart-prod"
        };
        for main in [DEPLOYMENT, INGRESS, CONFIGMAP] {
            cases.push(chart(main, data(o.clone(), release)));
        }
    }
    // Helm's strict mode (missingkey=error) on the same charts: a value the defaults lack fails.
    let strict: Vec<Case> = overrides
        .iter()
        .flat_map(|o| {
            [DEPLOYMENT, INGRESS, CONFIGMAP].map(|main| Case {
                missing_key: "error",
                ..chart(main, data(o.clone(), "strict"))
            })
        })
        .collect();
    compare(strict);
    // Everything renders except the ingress, which only one override enables.
    let rendered = cases
        .iter()
        .filter(|c| matches!(run_rust(c), Outcome::Output(ref o) if o.contains("name: ")))
        .count();
    assert_eq!(rendered, cases.len() - overrides.len() + 1);
    compare(cases);
}

snippet of {{ .Chart.Name }}

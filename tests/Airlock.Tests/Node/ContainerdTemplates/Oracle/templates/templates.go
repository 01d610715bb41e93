// Package templates mirrors K3s's pkg/agent/templates data and Linux template functions.
package templates

import (
	"encoding/json"
	"path/filepath"
	"text/template"

	"oracle/config"
	"oracle/registries"
)

type ContainerdRuntimeConfig struct {
	RuntimeType string
	BinaryName  string
}

type ContainerdConfig struct {
	NodeConfig            *config.Node
	DisableCgroup         bool
	SystemdCgroup         bool
	IsRunningInUserNS     bool
	EnableUnprivileged    bool
	NoDefaultEndpoint     bool
	PrivateRegistryConfig *registries.Registry
	ExtraRuntimes         map[string]ContainerdRuntimeConfig
	Program               string
}

var Funcs = template.FuncMap{
	"deschemify": func(s string) string { return s },
	"toJson": func(v any) string {
		output, _ := json.Marshal(v)
		return string(output)
	},
	"filepathjoin": filepath.Join,
}

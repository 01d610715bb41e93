// Command oracle renders the cases in ../Vectors/semantics.txt with Go's own text/template and K3s's
// template functions over the same data Airlock's tests use, writing ../Vectors/semantics.expected.
// Run: cd Oracle && go run . (needs a Go toolchain; the tests themselves do not).
package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"text/template"

	"oracle/config"
	"oracle/registries"
	"oracle/templates"
)

func data() templates.ContainerdConfig {
	return templates.ContainerdConfig{
		NodeConfig: &config.Node{
			AgentConfig: config.Agent{
				NodeName:        "node-1",
				PauseImage:      "registry.example.com/pause:3.10",
				Snapshotter:     "overlayfs",
				CNIBinDir:       "/opt/cni/bin",
				CNIConfDir:      "/etc/cni/net.d",
				PrivateRegistry: "/etc/airlock/registries.yaml",
				Systemd:         true,
			},
			Containerd: config.Containerd{
				Address:  "/run/containerd/containerd.sock",
				Root:     "/var/lib/containerd",
				State:    "/run/containerd",
				Config:   "/var/lib/airlock/agent/etc/containerd/config.toml",
				Opt:      "/opt/containerd",
				Template: "/var/lib/airlock/agent/etc/containerd",
				Registry: "/var/lib/airlock/agent/etc/containerd/certs.d",
			},
		},
		SystemdCgroup:      true,
		EnableUnprivileged: true,
		PrivateRegistryConfig: &registries.Registry{
			Mirrors: map[string]registries.Mirror{
				"docker.io": {
					Endpoints: []string{"https://mirror.example.com", "https://registry-1.docker.io"},
					Rewrites:  map[string]string{"^library/(.*)": "mirrored/$1"},
				},
				"registry.example.com": {Endpoints: []string{"https://registry.example.com:5000"}},
			},
			Configs: map[string]registries.RegistryConfig{
				"registry.example.com": {
					Auth: &registries.AuthConfig{Username: "user", Password: "p{{x}}<&>"},
					TLS:  &registries.TLSConfig{CAFile: "/etc/ssl/ca.pem"},
				},
				"insecure.example.com": {TLS: &registries.TLSConfig{InsecureSkipVerify: true}},
			},
		},
		ExtraRuntimes: map[string]templates.ContainerdRuntimeConfig{
			"nvidia": {RuntimeType: "io.containerd.runc.v2", BinaryName: "/usr/bin/nvidia-container-runtime"},
		},
		Program: "airlock",
	}
}

var goError = regexp.MustCompile(`^template: [^:]+:(\d+)(?::\d+)?: (.*)$`)

func main() {
	src, err := os.ReadFile("../Vectors/semantics.txt")
	if err != nil {
		panic(err)
	}
	var out strings.Builder
	for _, c := range strings.Split(string(src), "\n=== ")[1:] {
		name, body, _ := strings.Cut(c, "\n")
		body = strings.TrimSuffix(body, "\n")
		fmt.Fprintf(&out, "=== %s\n%s\n", name, render(body))
	}
	if err := os.WriteFile("../Vectors/semantics.expected", []byte(out.String()), 0o644); err != nil {
		panic(err)
	}
}

func render(body string) (result string) {
	defer func() {
		if r := recover(); r != nil {
			result = fmt.Sprintf("PANIC %v", r)
		}
	}()
	t, err := template.New("t.tmpl").Funcs(templates.Funcs).Parse(body)
	if err == nil {
		_, err = t.New("base").Parse("BASE\n")
	}
	if err != nil {
		return describe(err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data()); err != nil {
		return describe(err)
	}
	return "OK " + fmt.Sprintf("%q", buf.String())
}

func describe(err error) string {
	if m := goError.FindStringSubmatch(err.Error()); m != nil {
		return "ERROR " + m[1] + " " + m[2]
	}
	return "ERROR ? " + err.Error()
}

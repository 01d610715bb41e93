// Package config mirrors the part of K3s's pkg/daemons/config.Node that Airlock fills in.
package config

type Containerd struct {
	Address  string
	Log      string
	Root     string
	State    string
	Config   string
	Opt      string
	Template string
	Registry string
	SELinux  bool
	Debug    bool
}

type Agent struct {
	NodeName           string
	PauseImage         string
	Snapshotter        string
	CNIBinDir          string
	CNIConfDir         string
	ImageServiceSocket string
	PrivateRegistry    string
	Rootless           bool
	Systemd            bool
}

type Node struct {
	Docker                   bool
	ContainerRuntimeEndpoint string
	DefaultRuntime           string
	NoFlannel                bool
	SELinux                  bool
	AgentConfig              Agent
	Containerd               Containerd
}

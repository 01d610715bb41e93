namespace Airlock.Node.Preflight;

/// <summary>
/// The long flag names of <c>k3s server</c> and <c>k3s agent</c> (K3s's CLI reference, v1.2x–v1.3x), which are the
/// keys of K3s's config.yaml; a file written for K3s is checked as it is. Deprecated flags still accepted are listed.
/// </summary>
internal static class K3sConfigKeys
{
    public static readonly IReadOnlyList<string> All =
    [
        // config, logging, listener, data
        "config", "debug", "v", "vmodule", "log", "alsologtostderr", "bind-address", "https-listen-port", "supervisor-port", "apiserver-port",
        "apiserver-bind-address", "advertise-address", "advertise-port", "tls-san", "tls-san-security", "data-dir",
        // networking
        "cluster-cidr", "service-cidr", "service-node-port-range", "cluster-dns", "cluster-domain", "flannel-backend", "flannel-ipv6-masq",
        "flannel-external-ip", "egress-selector-mode", "servicelb-namespace", "node-ip", "node-external-ip", "node-internal-dns", "node-external-dns",
        "resolv-conf", "flannel-iface", "flannel-conf", "flannel-cni-conf", "vpn-auth", "vpn-auth-file", "multi-cluster-cidr",
        // client, helm
        "write-kubeconfig", "write-kubeconfig-mode", "write-kubeconfig-group", "helm-job-image",
        // cluster, datastore, etcd
        "token", "token-file", "agent-token", "agent-token-file", "server", "cluster-init", "cluster-reset", "cluster-reset-restore-path",
        "kube-apiserver-arg", "etcd-arg", "kube-controller-manager-arg", "kube-scheduler-arg", "kube-cloud-controller-manager-arg",
        "datastore-endpoint", "datastore-cafile", "datastore-certfile", "datastore-keyfile", "etcd-expose-metrics", "etcd-disable-snapshots",
        "etcd-snapshot-name", "etcd-snapshot-schedule-cron", "etcd-snapshot-retention", "etcd-snapshot-dir", "etcd-snapshot-compress", "etcd-s3",
        "etcd-s3-endpoint", "etcd-s3-endpoint-ca", "etcd-s3-skip-ssl-verify", "etcd-s3-access-key", "etcd-s3-secret-key", "etcd-s3-bucket",
        "etcd-s3-region", "etcd-s3-folder", "etcd-s3-proxy", "etcd-s3-config-secret", "etcd-s3-insecure", "etcd-s3-timeout",
        // storage, components
        "default-local-storage-path", "disable", "disable-scheduler", "disable-cloud-controller", "disable-kube-proxy", "disable-network-policy",
        "disable-helm-controller", "disable-apiserver", "disable-controller-manager", "disable-etcd", "disable-apiserver-lb", "embedded-registry",
        "supervisor-metrics", "secrets-encryption", "secrets-encryption-provider", "enable-pprof", "rootless", "prefer-bundled-bin", "disable-agent",
        // agent: node, runtime, containerd
        "node-name", "with-node-id", "node-label", "node-taint", "image-credential-provider-bin-dir", "image-credential-provider-config", "docker",
        "container-runtime-endpoint", "default-runtime", "image-service-endpoint", "disable-default-registry-endpoint", "nonroot-devices",
        "pause-image", "snapshotter", "private-registry", "system-default-registry", "airgap-extra-registry", "kubelet-arg", "kube-proxy-arg",
        "protect-kernel-defaults", "selinux", "lb-server-port", "node-labels",
        // deprecated, still parsed
        "no-flannel", "no-deploy", "cluster-secret", "kube-controller-arg", "kube-cloud-controller-arg",
    ];
}

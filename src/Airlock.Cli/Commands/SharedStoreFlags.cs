using System.CommandLine;
using Airlock.Cli.Hosting;
using Airlock.Content.S3;
using Airlock.Tls;

namespace Airlock.Cli.Commands;

/// <summary>
/// The flags choosing the registry's store, shared by <c>airlock registry</c> and <c>airlock registry gc</c> (the
/// collector must open the same store the replicas serve): <c>--storage</c>, <c>--s3-credentials</c>, <c>--metadata</c>
/// and etcd's client TLS files, plus <c>--s3-redirect</c> for the server.
/// </summary>
internal sealed class SharedStoreFlags
{
    public Option<string> Storage { get; } = new("--storage")
    {
        Description = "Where blobs live: fs (the data directory) or s3://BUCKET[/PREFIX]?endpoint=URL&region=R[&path-style=true] (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN] or --s3-credentials; the bucket is created when missing).",
        DefaultValueFactory = _ => "fs",
    };

    public PathOption Credentials { get; } = new("--s3-credentials", PathKind.File, "AWS shared-credentials file (aws_access_key_id, aws_secret_access_key[, aws_session_token]) for --storage s3://.");

    public Option<bool> Redirect { get; } = new("--s3-redirect") { Description = "Answer blob GETs with a presigned S3 URL (307) so the bytes go from the object store to the client." };

    public Option<string?> Metadata { get; } = new("--metadata") { Description = "etcd://HOST:2379[,HOST:2379…][/PREFIX]: tags, links, upload sessions and GC marks in etcd, shared by every replica. Without it --storage s3:// keeps them in <data-dir>/s3-metadata: a single replica." };

    public PathOption EtcdCa { get; } = new("--etcd-ca", PathKind.File, "PEM CA certificates etcd's server certificate must chain to (etcd over TLS).");

    public PathOption EtcdCert { get; } = new("--etcd-cert", PathKind.File, "PEM client certificate for etcd's --client-cert-auth (with --etcd-key).");

    public PathOption EtcdKey { get; } = new("--etcd-key", PathKind.File, "PEM private key of --etcd-cert.");

    public IEnumerable<Option> All(bool server) =>
        server ? [Storage, Credentials, Redirect, Metadata, EtcdCa, EtcdCert, EtcdKey] : [Storage, Credentials, Metadata, EtcdCa, EtcdCert, EtcdKey];

    /// <summary>The shared store the flags name (null for the filesystem store); problems are added, all at once.</summary>
    public S3StoreOptions? Read(ParseResult parseResult, string dataDirectory, List<string> problems) =>
        S3StoreOptions.FromFlags(
            parseResult.GetValue(Storage)!,
            parseResult.GetValue(Credentials),
            parseResult.GetValue(Redirect),
            parseResult.GetValue(Metadata),
            new TlsSettings { CaFile = parseResult.GetValue(EtcdCa), CertFile = parseResult.GetValue(EtcdCert), KeyFile = parseResult.GetValue(EtcdKey) },
            dataDirectory,
            problems);
}

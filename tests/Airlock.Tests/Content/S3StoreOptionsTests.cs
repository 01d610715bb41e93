using Airlock.Content.S3;
using Airlock.Tls;

namespace Airlock.Tests.Content;

/// <summary>The S3 store's flags: without <c>--metadata</c> the metadata go to the data directory (one replica).</summary>
public sealed class S3StoreOptionsTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("airlock-s3-flags-").FullName;

    public void Dispose() => Directory.Delete(_data, recursive: true);

    private S3StoreOptions? FromFlags(string? metadata, TlsSettings tls, List<string> problems)
    {
        var credentials = Path.Combine(_data, "credentials");
        File.WriteAllText(credentials, "[default]\naws_access_key_id = key\naws_secret_access_key = secret\n");
        return S3StoreOptions.FromFlags("s3://registry?endpoint=http://127.0.0.1:7480&path-style=true", credentials, redirect: false, metadata, tls, _data, problems);
    }

    [Fact]
    public void Without_metadata_the_store_keeps_them_in_the_data_directory()
    {
        var problems = new List<string>();
        var options = FromFlags(metadata: null, new TlsSettings(), problems);

        Assert.Empty(problems);
        Assert.Null(options!.Metadata);
        Assert.Equal(Path.Combine(_data, "s3-metadata"), options.MetadataDirectory);
    }

    [Fact]
    public void Etcd_tls_files_without_metadata_are_refused_rather_than_ignored()
    {
        var problems = new List<string>();
        FromFlags(metadata: null, new TlsSettings { CaFile = "/etc/airlock/etcd/ca.crt" }, problems);

        Assert.Equal(["--etcd-ca/--etcd-cert/--etcd-key apply to --metadata etcd://…; without --metadata the metadata live in the data directory"], problems);
    }

    [Fact]
    public void Options_with_neither_etcd_nor_a_metadata_directory_are_refused()
    {
        var options = S3StoreOptions.Parse("s3://registry", new S3Credentials("key", "secret"), Path.Combine(_data, "buffers"), out _)!;

        Assert.Contains(options.Validate(), p => p.Contains("--metadata etcd://HOST:2379", StringComparison.Ordinal));
        Assert.Empty((options with { MetadataDirectory = Path.Combine(_data, "s3-metadata") }).Validate());
    }
}

using Airlock.Content.Etcd;
using Airlock.Tls;

namespace Airlock.Content.S3;

/// <summary>
/// A store whose blobs live in an S3 bucket: <c>--storage s3://BUCKET[/PREFIX]?endpoint=URL&amp;region=R[&amp;path-style=true]</c>,
/// credentials from <c>AWS_ACCESS_KEY_ID</c> / <c>AWS_SECRET_ACCESS_KEY</c> / <c>AWS_SESSION_TOKEN</c> or
/// <c>--s3-credentials FILE</c>, and its metadata in etcd (<see cref="Metadata"/>; several replicas) or, without it, in
/// the data directory's own etcd-less form: one replica.
/// </summary>
public sealed record S3StoreOptions
{
    public required string Bucket { get; init; }

    /// <summary>Key prefix inside the bucket ("" or ending in '/').</summary>
    public string Prefix { get; init; } = string.Empty;

    /// <summary>The S3 endpoint, e.g. <c>http://rgw.site:7480</c>; null for AWS itself (by region).</summary>
    public Uri? Endpoint { get; init; }

    public string Region { get; init; } = "us-east-1";

    /// <summary>Address buckets as <c>endpoint/bucket/key</c> (radosgw, MinIO) instead of <c>bucket.endpoint/key</c>.</summary>
    public bool PathStyle { get; init; }

    public required S3Credentials Credentials { get; init; }

    /// <summary>Answer blob GETs with a presigned URL (307) so the bytes go from the object store to the client.</summary>
    public bool Redirect { get; init; }

    /// <summary>How long a presigned URL is valid.</summary>
    public TimeSpan RedirectValidity { get; init; } = TimeSpan.FromMinutes(20);

    /// <summary>How long one S3 request may take (a stopped object store answers 503 after this).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Bytes per multipart part, buffered on local disk before it is sent (S3's minimum for every part but the last is
    /// 5 MiB). A body up to this size is one PUT.
    /// </summary>
    public int PartSize { get; init; } = 16 << 20;

    /// <summary>Where the tags, links, upload sessions and GC marks live; null: in the data directory, one replica only.</summary>
    public EtcdOptions? Metadata { get; init; }

    /// <summary>
    /// Where the metadata live when <see cref="Metadata"/> is null (a folder of the data directory): the store is then a
    /// single replica, and a second process on the folder is refused.
    /// </summary>
    public string? MetadataDirectory { get; init; }

    /// <summary>Where parts are buffered before they are sent (a folder of the data directory).</summary>
    public required string BufferDirectory { get; init; }

    public string Location => $"s3://{Bucket}/{Prefix}" + (Endpoint is null ? string.Empty : $" at {Endpoint}");

    /// <summary>
    /// Parses the <c>--storage</c> URL (credentials and the rest are the caller's); null with <paramref name="error"/>
    /// when it is not <c>s3://BUCKET[/PREFIX]?endpoint=URL&amp;region=R[&amp;path-style=true]</c>.
    /// </summary>
    public static S3StoreOptions? Parse(string value, S3Credentials credentials, string bufferDirectory, out string? error)
    {
        error = null;
        const string scheme = "s3://";
        if (!value.StartsWith(scheme, StringComparison.Ordinal))
        {
            error = $"--storage \"{value}\" is neither fs nor s3://BUCKET[/PREFIX]?endpoint=URL&region=R[&path-style=true]";
            return null;
        }

        var rest = value[scheme.Length..];
        var query = string.Empty;
        var question = rest.IndexOf('?', StringComparison.Ordinal);
        if (question >= 0)
        {
            query = rest[(question + 1)..];
            rest = rest[..question];
        }

        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var bucket = slash < 0 ? rest : rest[..slash];
        var prefix = slash < 0 ? string.Empty : rest[(slash + 1)..].Trim('/');
        var problems = new List<string>();
        if (!IsBucketName(bucket))
        {
            problems.Add($"\"{bucket}\" is not an S3 bucket name (3-63 lower-case letters, digits, '-' and '.')");
        }

        Uri? endpoint = null;
        var region = "us-east-1";
        var pathStyle = false;
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var name = equals < 0 ? pair : pair[..equals];
            var setting = equals < 0 ? string.Empty : Uri.UnescapeDataString(pair[(equals + 1)..]);
            switch (name)
            {
                case "endpoint" when Uri.TryCreate(setting, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https":
                    endpoint = uri;
                    break;
                case "endpoint":
                    problems.Add($"endpoint \"{setting}\" is not an http:// or https:// URL");
                    break;
                case "region" when setting.Length > 0:
                    region = setting;
                    break;
                case "path-style" when setting is "true" or "false":
                    pathStyle = setting == "true";
                    break;
                default:
                    problems.Add($"\"{pair}\" is not endpoint=URL, region=R or path-style=true|false");
                    break;
            }
        }

        if (problems.Count > 0)
        {
            error = $"--storage \"{value}\": " + string.Join("; ", problems);
            return null;
        }

        return new S3StoreOptions
        {
            Bucket = bucket,
            Prefix = prefix.Length == 0 ? string.Empty : prefix + "/",
            Endpoint = endpoint,
            Region = region,
            PathStyle = pathStyle,
            Credentials = credentials,
            BufferDirectory = bufferDirectory,
        };
    }

    /// <summary>
    /// The shared store the command-line flags describe: null for <c>--storage fs</c> (the data directory), the S3 + etcd
    /// store otherwise. Every problem is added to <paramref name="problems"/> at once (a flag that cannot take effect is
    /// refused, never ignored).
    /// </summary>
    public static S3StoreOptions? FromFlags(string storage, string? credentialsFile, bool redirect, string? metadata, TlsSettings etcdTls, string dataDirectory, List<string> problems)
    {
        if (storage == "fs")
        {
            foreach (var (flag, given) in new[] { ("--s3-credentials", credentialsFile is not null), ("--s3-redirect", redirect), ("--metadata", metadata is not null), ("--etcd-ca/--etcd-cert/--etcd-key", etcdTls.CaFile is not null || etcdTls.CertFile is not null || etcdTls.KeyFile is not null) })
            {
                if (given)
                {
                    problems.Add($"{flag} applies to --storage s3://…; the filesystem store (--storage fs) has no use for it");
                }
            }

            return null;
        }

        S3Credentials? credentials = null;
        if (credentialsFile is not null)
        {
            if (!File.Exists(credentialsFile))
            {
                problems.Add($"--s3-credentials {credentialsFile}: no such file");
            }
            else
            {
                try
                {
                    credentials = S3Credentials.Read(credentialsFile);
                }
                catch (InvalidDataException ex)
                {
                    problems.Add($"--s3-credentials {ex.Message}");
                }
            }
        }
        else
        {
            credentials = S3Credentials.FromEnvironment();
            if (credentials is null)
            {
                problems.Add("--storage s3://… needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or give --s3-credentials FILE");
            }
        }

        var options = Parse(storage, credentials ?? new S3Credentials("-", "-"), Path.Combine(dataDirectory, "s3-buffers"), out var error);
        if (options is null)
        {
            problems.Add(error!);
            return null;
        }

        EtcdOptions? etcd = null;
        if (metadata is null)
        {
            if (etcdTls.CaFile is not null || etcdTls.CertFile is not null || etcdTls.KeyFile is not null)
            {
                problems.Add("--etcd-ca/--etcd-cert/--etcd-key apply to --metadata etcd://…; without --metadata the metadata live in the data directory");
            }
        }
        else if ((etcd = EtcdOptions.Parse(metadata, out var etcdError)) is null)
        {
            problems.Add(etcdError!);
        }

        options = options with
        {
            Redirect = redirect,
            Metadata = etcd is null ? null : etcd with { Tls = etcdTls },
            MetadataDirectory = Path.Combine(dataDirectory, "s3-metadata"),
        };
        var validation = options.Validate();
        problems.AddRange(validation.Where(p => !problems.Contains(p)));
        return options;
    }

    /// <summary>Every problem at once.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (!IsBucketName(Bucket))
        {
            problems.Add($"\"{Bucket}\" is not an S3 bucket name");
        }

        if (PartSize < 5 << 20)
        {
            problems.Add("the S3 part size must be at least 5 MiB (S3's minimum)");
        }

        if (RequestTimeout <= TimeSpan.Zero || RedirectValidity <= TimeSpan.Zero)
        {
            problems.Add("the S3 request timeout and the presigned URL validity must be positive");
        }

        if (Metadata is not null)
        {
            problems.AddRange(Metadata.Validate());
        }
        else if (string.IsNullOrEmpty(MetadataDirectory))
        {
            problems.Add("an S3 store keeps its metadata in etcd (--metadata etcd://HOST:2379) or in the data directory: neither was given");
        }

        return problems;
    }

    private static bool IsBucketName(string name) =>
        name.Length is >= 3 and <= 63
        && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '.')
        && char.IsAsciiLetterOrDigit(name[0]) && char.IsAsciiLetterOrDigit(name[^1]);
}

/// <summary>An S3 access key (with its secret and, for temporary credentials, a session token).</summary>
public sealed record S3Credentials(string AccessKeyId, string SecretAccessKey, string? SessionToken = null)
{
    /// <summary>
    /// Reads <c>--s3-credentials FILE</c>: the AWS shared-credentials form (<c>aws_access_key_id = …</c>,
    /// <c>aws_secret_access_key = …</c>, optional <c>aws_session_token = …</c>; a <c>[default]</c> header and comments are
    /// ignored). Throws <see cref="InvalidDataException"/> naming the file when it lacks the key or the secret.
    /// </summary>
    public static S3Credentials Read(string path)
    {
        string? key = null, secret = null, token = null;
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';' or '[')
            {
                continue;
            }

            var equals = line.IndexOf('=', StringComparison.Ordinal);
            if (equals < 0)
            {
                continue;
            }

            var value = line[(equals + 1)..].Trim();
            switch (line[..equals].Trim().ToLowerInvariant())
            {
                case "aws_access_key_id":
                    key = value;
                    break;
                case "aws_secret_access_key":
                    secret = value;
                    break;
                case "aws_session_token":
                    token = value;
                    break;
            }
        }

        if (string.IsNullOrEmpty(key) || string.IsNullOrEmpty(secret))
        {
            throw new InvalidDataException($"{path} has no aws_access_key_id and aws_secret_access_key");
        }

        return new S3Credentials(key, secret, string.IsNullOrEmpty(token) ? null : token);
    }

    /// <summary>From <c>AWS_ACCESS_KEY_ID</c>, <c>AWS_SECRET_ACCESS_KEY</c> and <c>AWS_SESSION_TOKEN</c>; null when the first two are not both set.</summary>
    public static S3Credentials? FromEnvironment()
    {
        var key = Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID");
        var secret = Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY");
        var token = Environment.GetEnvironmentVariable("AWS_SESSION_TOKEN");
        return string.IsNullOrEmpty(key) || string.IsNullOrEmpty(secret) ? null : new S3Credentials(key, secret, string.IsNullOrEmpty(token) ? null : token);
    }

    public override string ToString() => $"S3Credentials {{ AccessKeyId = {AccessKeyId} }}";
}

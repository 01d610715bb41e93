using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Airlock.IO;

namespace Airlock.Cluster.Membership;

/// <summary>What is kept per member in <c>server/nodes/&lt;name&gt;.json</c>.</summary>
internal sealed record NodeRecord
{
    public required string Name { get; init; }

    public NodeRole Role { get; init; }

    public Dictionary<string, string> Labels { get; init; } = [];

    public List<string> Taints { get; init; } = [];

    public List<string> Addresses { get; init; } = [];

    public string? Version { get; init; }

    public DateTimeOffset Joined { get; init; }

    public DateTimeOffset LastSeen { get; init; }

    /// <summary>The interval the server asked this node to send heartbeats at, for its Ready/NotReady status.</summary>
    public int HeartbeatSeconds { get; init; }

    /// <summary>SHA-256 of the node password (K3s's node password: only the node that first took a name may take it again).</summary>
    public required string PasswordSha256 { get; init; }

    public DateTimeOffset? CertificateExpires { get; init; }

    /// <summary>Which token it joined with (<c>server token</c>, <c>agent token</c>, <c>bootstrap token abc123</c>).</summary>
    public string? JoinedWith { get; init; }
}

/// <summary>A join refused by membership (a name taken by another node); nothing was written.</summary>
public sealed class MembershipRefusedException(string message) : Exception(message);

/// <summary>
/// The cluster's members, one JSON file each under <c>server/nodes/</c> (written atomically), and the running server's view of
/// them in memory (with each node's latest advertisement). Names are unique: a name already taken is given again only to the
/// node that holds its node password (the same node joining again, e.g. after its certificates were lost), as K3s does.
/// </summary>
public sealed class MembershipStore
{
    /// <summary>A node is NotReady after this many heartbeat intervals without one (K3s: 40 s at 10 s).</summary>
    public const int GraceHeartbeats = 4;

    private readonly ServerDirectory _directory;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, NodeRecord> _records;
    private readonly Dictionary<string, NodeAdvertisement> _advertisements = new(StringComparer.Ordinal);

    private MembershipStore(ServerDirectory directory, TimeProvider time, Dictionary<string, NodeRecord> records)
    {
        _directory = directory;
        _time = time;
        _records = records;
    }

    /// <summary>
    /// Reads every member. A file that cannot be read stops the load with its name (it is never overwritten or skipped: that
    /// would hand its node's name to another).
    /// </summary>
    public static MembershipStore Open(ServerDirectory directory, TimeProvider time)
    {
        var records = new Dictionary<string, NodeRecord>(StringComparer.Ordinal);
        if (Directory.Exists(directory.Nodes))
        {
            foreach (var file in Directory.EnumerateFiles(directory.Nodes, "*.json"))
            {
                NodeRecord? record;
                try
                {
                    record = JsonSerializer.Deserialize(File.ReadAllBytes(file), MembershipJson.Default.NodeRecord);
                }
                catch (JsonException ex)
                {
                    throw new InvalidDataException($"{file} is not a node record ({ex.Message}): restore it from a backup, or delete it to let that node join again", ex);
                }

                if (record is null || record.Name + ".json" != Path.GetFileName(file))
                {
                    throw new InvalidDataException($"{file} does not hold the record of the node its name says: restore it from a backup, or delete it to let that node join again");
                }

                records[record.Name] = record;
            }
        }

        return new MembershipStore(directory, time, records);
    }

    /// <summary>Every member, by name, with its status now.</summary>
    public IReadOnlyList<ClusterNode> List()
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            return _records.Values.OrderBy(r => r.Name, StringComparer.Ordinal).Select(r => View(r, now)).ToList();
        }
    }

    public ClusterNode? Find(string name)
    {
        lock (_gate)
        {
            return _records.TryGetValue(name, out var record) ? View(record, _time.GetUtcNow()) : null;
        }
    }

    /// <summary>SHA-256 hex of a node password, as stored.</summary>
    public static string HashPassword(string password) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(password)));

    /// <summary>
    /// Checks that <paramref name="name"/> may be (re)joined by the holder of <paramref name="password"/>; throws
    /// <see cref="MembershipRefusedException"/> when another node has it.
    /// </summary>
    internal void CheckName(string name, string password)
    {
        lock (_gate)
        {
            if (_records.TryGetValue(name, out var existing)
                && !CryptographicOperations.FixedTimeEquals(Convert.FromHexString(existing.PasswordSha256), Convert.FromHexString(HashPassword(password))))
            {
                throw new MembershipRefusedException(
                    $"node name {name} is already taken by another node (joined {existing.Joined.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}"
                    + (existing.Addresses.Count > 0 ? $" from {string.Join(", ", existing.Addresses)}" : string.Empty)
                    + "): give this node another --node-name, or --with-node-id to add a unique suffix");
            }
        }
    }

    /// <summary>Records a join (after <see cref="CheckName"/> and the certificates were issued).</summary>
    internal void Join(NodeRecord record)
    {
        lock (_gate)
        {
            if (_records.TryGetValue(record.Name, out var existing))
            {
                if (existing.PasswordSha256 != record.PasswordSha256)
                {
                    throw new MembershipRefusedException($"node name {record.Name} was taken by another node while this one joined: give it another --node-name");
                }

                record = record with { Joined = existing.Joined };
            }

            Save(record);
            _records[record.Name] = record;
            _advertisements.Remove(record.Name);
        }
    }

    /// <summary>Records a heartbeat of a member; false when the node is not (or no longer) a member.</summary>
    internal bool Heartbeat(string name, IReadOnlyList<string>? addresses, string? version, NodeAdvertisement? advertisement)
    {
        lock (_gate)
        {
            if (!_records.TryGetValue(name, out var record))
            {
                return false;
            }

            record = record with
            {
                LastSeen = _time.GetUtcNow(),
                Addresses = addresses is { Count: > 0 } ? [.. addresses] : record.Addresses,
                Version = version ?? record.Version,
            };
            Save(record);
            _records[name] = record;
            if (advertisement is not null)
            {
                _advertisements[name] = advertisement;
            }

            return true;
        }
    }

    /// <summary>Records that a member renewed its certificates.</summary>
    internal void Renewed(string name, DateTimeOffset certificateExpires)
    {
        lock (_gate)
        {
            if (_records.TryGetValue(name, out var record))
            {
                record = record with { CertificateExpires = certificateExpires, LastSeen = _time.GetUtcNow() };
                Save(record);
                _records[name] = record;
            }
        }
    }

    internal NodeRecord? Record(string name)
    {
        lock (_gate)
        {
            return _records.GetValueOrDefault(name);
        }
    }

    private void Save(NodeRecord record)
    {
        Directory.CreateDirectory(_directory.Nodes, DirectoryOwner.Private);
        AtomicFile.Write(Path.Combine(_directory.Nodes, record.Name + ".json"),
            JsonSerializer.SerializeToUtf8Bytes(record, MembershipJson.Default.NodeRecord), AtomicFile.Private);
    }

    private ClusterNode View(NodeRecord record, DateTimeOffset now) => new()
    {
        Name = record.Name,
        Role = record.Role,
        Status = now - record.LastSeen <= TimeSpan.FromSeconds(Math.Max(1, record.HeartbeatSeconds) * GraceHeartbeats) ? NodeStatus.Ready : NodeStatus.NotReady,
        Addresses = record.Addresses,
        Labels = record.Labels,
        Taints = record.Taints,
        Version = record.Version,
        Joined = record.Joined,
        LastSeen = record.LastSeen,
        CertificateExpires = record.CertificateExpires,
        Advertises = _advertisements.GetValueOrDefault(record.Name),
    };
}

using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Airlock.Conformance.Tests.Suite;

/// <summary>A blob or manifest with its digest, as the suite's TestBlob.</summary>
internal sealed record TestBlob(byte[] Content, string Digest)
{
    public string ContentLength => Content.Length.ToString(CultureInfo.InvariantCulture);

    public static TestBlob Of(byte[] content) => new(content, OciJson.Sha256(content));
}

/// <summary>A blob split in two chunks for the chunked-upload checks, with the Content-Range of each.</summary>
internal sealed record ChunkedBlob(TestBlob Whole, byte[] Chunk1, byte[] Chunk2)
{
    public string Chunk1Range => $"0-{Chunk1.Length - 1}";

    public string Chunk2Range => $"{Chunk1.Length}-{Whole.Content.Length - 1}";

    public string Chunk1Length => Chunk1.Length.ToString(CultureInfo.InvariantCulture);

    public string Chunk2Length => Chunk2.Length.ToString(CultureInfo.InvariantCulture);

    /// <summary>setupChunkedBlob: a reproducible random blob, first chunk one byte longer than half.</summary>
    public static ChunkedBlob Create(int size, int seed)
    {
        var whole = TestBlob.Of(SuiteData.RandomBlob(size, seed));
        return new ChunkedBlob(whole, whole.Content[..(size / 2 + 1)], whole.Content[(size / 2 + 1)..]);
    }
}

/// <summary>
/// The content the upstream suite generates before it runs (its setup.go init): one unique config and one
/// manifest per workflow slot, a gzip tar layer, random blobs for the upload checks, and the artifacts with
/// a <c>subject</c> for the referrers checks. Generated fresh for each run, so digests never collide with
/// content a previous run left in an external registry.
/// </summary>
internal sealed class SuiteData
{
    public const string ImageManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
    public const string ImageIndexMediaType = "application/vnd.oci.image.index.v1+json";
    public const string ImageConfigMediaType = "application/vnd.oci.image.config.v1+json";
    public const string LayerMediaType = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string EmptyJsonMediaType = "application/vnd.oci.empty.v1+json";
    public const string EmptyJsonDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    public const string TestTagName = "tagtest0";
    public const string EmptyLayerTestTag = "emptylayer";
    public const string NonexistentManifest = ".INVALID_MANIFEST_NAME";
    public const string ArtifactTypeFilter = "artifactType";
    public const string TestAnnotationKey = "org.opencontainers.conformance.test";
    public const string TestRefArtifactTypeA = "application/vnd.nhl.peanut.butter.bagel";
    public const string TestRefArtifactTypeB = "application/vnd.nba.strawberry.jam.croissant";
    public const string TestRefArtifactTypeIndex = "application/vnd.food.stand";

    /// <summary>
    /// Upstream sizes its config/manifest arrays with a constant that, by Go's iota, is 1 &lt;&lt; 4: slots
    /// 0-3 belong to the workflows in order and slot 4 is the referrers subject; the rest go unused.
    /// </summary>
    public const int WorkflowSlots = 16;

    /// <summary>
    /// A gzip tar of one text file ("you bothered to find out what was in here. Congratulations!"),
    /// the same bytes as upstream's layerBase64String.
    /// </summary>
    private const string LayerBase64 =
        "H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0" +
        "WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD" +
        "jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA";

    public static readonly IReadOnlyList<string> ErrorCodes =
    [
        "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "MANIFEST_UNVERIFIED", "NAME_INVALID", "NAME_UNKNOWN",
        "SIZE_INVALID", "TAG_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED",
    ];

    public static readonly SuiteData Current = new(RandomNumberGenerator.GetInt32(int.MaxValue - 2));

    private static readonly byte[] InvalidManifest = "blablabla"u8.ToArray();

    public SuiteData(int seed)
    {
        Seed = seed;
        Layer = TestBlob.Of(Convert.FromBase64String(LayerBase64));
        var layerDescriptor = OciDescriptor.Of(LayerMediaType, Layer.Content);
        var unspecified = "hello world"u8.ToArray();

        var configs = new List<TestBlob>();
        var manifests = new List<TestBlob>();
        for (var i = 0; i < WorkflowSlots; i++)
        {
            // A random author makes each config, and so each manifest, unique to this run.
            var config = TestBlob.Of(OciJson.Config(RandomAuthor(), "amd64", "linux"));
            configs.Add(config);
            manifests.Add(TestBlob.Of(OciJson.Manifest(new OciManifest(ConfigDescriptor(config, unspecified), [layerDescriptor])
            {
                MediaType = ImageManifestMediaType,
            })));
        }

        Configs = configs;
        Manifests = manifests;

        // Used by the push checks: no mediaType and no layers.
        EmptyLayerManifest = TestBlob.Of(OciJson.Manifest(new OciManifest(ConfigDescriptor(configs[1], unspecified), [])));

        TestBlobA = TestBlob.Of(RandomBlob(42, seed + 1));
        TestBlobB = ChunkedBlob.Create(42, seed + 2);
        DummyDigest = OciJson.Sha256("hello world"u8.ToArray());

        EmptyJsonBlob = "{}"u8.ToArray();
        var emptyJson = OciDescriptor.Of(EmptyJsonMediaType, EmptyJsonBlob);
        EmptyJsonDescriptorDigest = emptyJson.Digest;
        TestRefBlobA = TestBlob.Of(Encoding.UTF8.GetBytes("NHL Peanut Butter on my NHL bagel"));
        TestRefBlobB = TestBlob.Of(Encoding.UTF8.GetBytes("NBA Strawberry Jam on my NBA croissant"));

        var subject = OciDescriptor.Of(ImageManifestMediaType, manifests[4].Content);
        var annotationValues = new Dictionary<string, string>(StringComparer.Ordinal);
        TestBlob Artifact(OciManifest manifest)
        {
            var blob = TestBlob.Of(OciJson.Manifest(manifest));
            if (manifest.Annotations is { } annotations)
            {
                annotationValues[blob.Digest] = annotations[TestAnnotationKey];
            }

            return blob;
        }

        Dictionary<string, string> Annotation(string value) => new(StringComparer.Ordinal) { [TestAnnotationKey] = value };

        // Artifacts whose type is carried by config.mediaType.
        RefsManifestAConfigArtifact = Artifact(new OciManifest(OciDescriptor.Of(TestRefArtifactTypeA, TestRefBlobA.Content), [emptyJson])
        {
            MediaType = ImageManifestMediaType,
            Subject = subject,
            Annotations = Annotation("test config a"),
        });
        RefsManifestBConfigArtifact = Artifact(new OciManifest(OciDescriptor.Of(TestRefArtifactTypeB, TestRefBlobB.Content), [emptyJson])
        {
            MediaType = ImageManifestMediaType,
            Subject = subject,
            Annotations = Annotation("test config b"),
        });

        // Artifacts whose type is carried by artifactType, with the empty JSON config.
        RefsManifestALayerArtifact = Artifact(new OciManifest(emptyJson, [OciDescriptor.Of(TestRefArtifactTypeA, TestRefBlobA.Content)])
        {
            MediaType = ImageManifestMediaType,
            ArtifactType = TestRefArtifactTypeA,
            Subject = subject,
            Annotations = Annotation("test layer a"),
        });
        RefsManifestBLayerArtifact = Artifact(new OciManifest(emptyJson, [OciDescriptor.Of(TestRefArtifactTypeB, TestRefBlobB.Content)])
        {
            MediaType = ImageManifestMediaType,
            ArtifactType = TestRefArtifactTypeB,
            Subject = subject,
            Annotations = Annotation("test layer b"),
        });

        // The same as B's layer artifact, but its subject (manifest slot 3) is never pushed in that workflow.
        RefsManifestCLayerArtifact = Artifact(new OciManifest(emptyJson, [OciDescriptor.Of(TestRefArtifactTypeB, TestRefBlobB.Content)])
        {
            MediaType = ImageManifestMediaType,
            ArtifactType = TestRefArtifactTypeB,
            Subject = OciDescriptor.Of(ImageManifestMediaType, manifests[3].Content),
        });

        RefsIndexArtifact = TestBlob.Of(OciJson.Index(new OciIndex(
        [
            OciDescriptor.Of(ImageManifestMediaType, RefsManifestAConfigArtifact.Content),
            OciDescriptor.Of(ImageManifestMediaType, RefsManifestALayerArtifact.Content),
        ])
        {
            MediaType = ImageIndexMediaType,
            ArtifactType = TestRefArtifactTypeIndex,
            Subject = subject,
            Annotations = Annotation("test index"),
        }));
        annotationValues[RefsIndexArtifact.Digest] = "test index";
        TestAnnotationValues = annotationValues;
    }

    /// <summary>The run's seed for the random blobs (upstream uses ginkgo's random seed).</summary>
    public int Seed { get; }

    public IReadOnlyList<TestBlob> Configs { get; }

    public IReadOnlyList<TestBlob> Manifests { get; }

    public TestBlob Layer { get; }

    public TestBlob EmptyLayerManifest { get; }

    public TestBlob TestBlobA { get; }

    public ChunkedBlob TestBlobB { get; }

    public string DummyDigest { get; }

    public byte[] InvalidManifestContent => InvalidManifest;

    public byte[] EmptyJsonBlob { get; }

    public string EmptyJsonDescriptorDigest { get; }

    public TestBlob TestRefBlobA { get; }

    public TestBlob TestRefBlobB { get; }

    public TestBlob RefsManifestAConfigArtifact { get; }

    public TestBlob RefsManifestBConfigArtifact { get; }

    public TestBlob RefsManifestALayerArtifact { get; }

    public TestBlob RefsManifestBLayerArtifact { get; }

    public TestBlob RefsManifestCLayerArtifact { get; }

    public TestBlob RefsIndexArtifact { get; }

    /// <summary>The annotation value each referrer was pushed with, by its digest.</summary>
    public IReadOnlyDictionary<string, string> TestAnnotationValues { get; }

    /// <summary>randomBlob: reproducible pseudo-random bytes for a seed.</summary>
    public static byte[] RandomBlob(int size, int seed)
    {
        var bytes = new byte[size];
#pragma warning disable CA5394 // Reproducible test content from a seed, not a secret.
        new Random(seed).NextBytes(bytes);
#pragma warning restore CA5394
        return bytes;
    }

    private static OciDescriptor ConfigDescriptor(TestBlob config, byte[] unspecified) =>
        OciDescriptor.Of(ImageConfigMediaType, config.Content) with { Data = config.Content, NewUnspecifiedField = unspecified };

    private static string RandomAuthor() =>
        RandomNumberGenerator.GetString("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-", 16);
}

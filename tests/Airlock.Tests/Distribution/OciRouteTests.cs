using Airlock.Distribution;
using Airlock.Oci;

namespace Airlock.Tests.Distribution;

/// <summary>The route grammar both ways: what the registry and the mirror parse is what the client and the mirror build.</summary>
public sealed class OciRouteTests
{
    private static readonly Digest Hello = Digest.Parse("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");

    [Theory]
    [InlineData("/v2/a/manifests/1?n=2", "/v2/a/manifests/1")]
    [InlineData("http://host:5000/v2/zz/%2e%2e/a/tags/list?n=1", "/v2/zz/%2e%2e/a/tags/list")]
    [InlineData("https://user@host/v2/", "/v2/")]
    [InlineData("http://host", "/")]
    [InlineData("http://host?x=1", "/")]
    [InlineData("*", null)]
    [InlineData("host:443", null)]
    public void The_path_of_a_request_target_is_taken_as_sent_in_origin_and_absolute_form(string target, string? path)
    {
        Assert.Equal(path, OciRoute.TargetPath(target));
    }

    [Theory]
    [InlineData("/v2/", OciRouteKind.Base, "", "")]
    [InlineData("/v2", OciRouteKind.Base, "", "")]
    [InlineData("/v2/_catalog", OciRouteKind.Catalog, "", "")]
    [InlineData("/v2/a/b/c/manifests/latest", OciRouteKind.Manifest, "a/b/c", "latest")]
    [InlineData("/v2/manifests/manifests/v1", OciRouteKind.Manifest, "manifests", "v1")]
    [InlineData("/v2/app/blobs/uploads/", OciRouteKind.UploadStart, "app", "")]
    [InlineData("/v2/app/blobs/uploads", OciRouteKind.UploadStart, "app", "")]
    [InlineData("/v2/x/blobs/uploads/0b0a6ae3-5d53-4b8e-8c0a-2c1e8f3f3b11", OciRouteKind.Upload, "x", "0b0a6ae3-5d53-4b8e-8c0a-2c1e8f3f3b11")]
    [InlineData("/v2/x/y/tags/list", OciRouteKind.TagList, "x/y", "")]
    [InlineData("/v2/x/referrers/sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", OciRouteKind.Referrers, "x", "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")]
    [InlineData("/v2/x/blobs/sha256%3A2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", OciRouteKind.Blob, "x", "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")]
    public void Route_parser_reads_the_resource_and_the_name_with_slashes(string path, OciRouteKind kind, string name, string reference)
    {
        Assert.True(OciRoute.TryParse(path, out var route));
        Assert.Equal(kind, route.Kind);
        Assert.Equal(name, route.Name);
        Assert.Equal(reference, route.Reference);
    }

    [Theory]
    [InlineData("/v2x/app/manifests/v1")]
    [InlineData("/healthz")]
    public void Paths_outside_v2_are_not_registry_routes(string path) => Assert.False(OciRoute.TryParse(path, out _));

    public static TheoryData<string, string> Built => new()
    {
        { OciRoute.Base.Path, "/v2/" },
        { OciRoute.Catalog.Path, "/v2/_catalog" },
        { OciRoute.ForManifest("a/b/c", "latest").Path, "/v2/a/b/c/manifests/latest" },
        { OciRoute.ForManifest("app", Hello.ToString()).Path, $"/v2/app/manifests/{Hello}" },
        { OciRoute.ForBlob("x/y", Hello).Path, $"/v2/x/y/blobs/{Hello}" },
        { OciRoute.ForUploadStart("app").Path, "/v2/app/blobs/uploads/" },
        { OciRoute.ForTagList("x/y").Path, "/v2/x/y/tags/list" },
        { OciRoute.ForReferrers("x", Hello).Path, $"/v2/x/referrers/{Hello}" },
    };

    [Theory]
    [MemberData(nameof(Built))]
    public void A_built_path_is_the_one_the_API_defines(string built, string expected) => Assert.Equal(expected, built);

    [Fact]
    public void Every_built_route_parses_back_to_itself()
    {
        OciRoute[] routes =
        [
            OciRoute.Base,
            OciRoute.Catalog,
            OciRoute.ForManifest("a/b/c", "latest"),
            OciRoute.ForManifest("app", Hello.ToString()),
            OciRoute.ForBlob("x/y", Hello),
            OciRoute.ForUploadStart("app"),
            OciRoute.ForTagList("x/y"),
            OciRoute.ForReferrers("x", Hello),
        ];

        foreach (var route in routes)
        {
            Assert.True(OciRoute.TryParse(route.Path, out var parsed), route.Path);
            Assert.Equal(route, parsed);
        }
    }

    [Fact]
    public void A_manifest_route_by_digest_carries_the_digest_and_no_tag()
    {
        var byDigest = OciRoute.ForManifest("app", Hello.ToString());
        var byTag = OciRoute.ForManifest("app", "v1");

        Assert.Equal(Hello, byDigest.Digest);
        Assert.Null(byDigest.Tag);
        Assert.Null(byTag.Digest);
        Assert.Equal("v1", byTag.Tag);
    }
}

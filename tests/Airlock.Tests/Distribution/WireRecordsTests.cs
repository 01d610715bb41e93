using System.Buffers;
using System.Text;
using System.Text.Json;
using Airlock.Distribution;

namespace Airlock.Tests.Distribution;

/// <summary>The wire records both sides of the API share: what the server writes is what the client reads.</summary>
public sealed class WireRecordsTests
{
    [Fact]
    public void An_error_body_written_by_the_server_reads_back_in_the_client()
    {
        var buffer = new ArrayBufferWriter<byte>();
        ErrorBody.Write(buffer, new RegistryError("MANIFEST_UNKNOWN", "manifest unknown to registry", "app:v1"));

        Assert.Equal(
            """{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown to registry","detail":"app:v1"}]}""",
            Encoding.UTF8.GetString(buffer.WrittenSpan));
        Assert.Equal([new RegistryError("MANIFEST_UNKNOWN", "manifest unknown to registry", "app:v1")], ErrorBody.Parse(buffer.WrittenSpan));
    }

    [Theory]
    [InlineData("")]
    [InlineData("<html>502 Bad Gateway</html>")]
    [InlineData("""{"errors":[{"message":"no code"}]}""")]
    [InlineData("""{"other":1}""")]
    public void A_body_that_is_not_an_error_body_yields_no_errors(string body) => Assert.Empty(ErrorBody.Parse(Encoding.UTF8.GetBytes(body)));

    [Fact]
    public void A_structured_detail_as_distribution_sends_it_is_kept_as_its_JSON_text()
    {
        var errors = ErrorBody.Parse("""{"errors":[{"code":"DENIED","message":"denied","detail":{"Type":"repository","Name":"app"}}]}"""u8);

        Assert.Equal("""{"Type":"repository","Name":"app"}""", Assert.Single(errors).Detail);
    }

    [Fact]
    public void Tag_list_and_catalog_pages_written_by_the_server_read_back_in_the_client()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            TagList.Write(json, "team/app", ["1", "latest"]);
        }

        Assert.Equal("""{"name":"team/app","tags":["1","latest"]}""", Encoding.UTF8.GetString(buffer.WrittenSpan));
        var tags = TagList.Parse(buffer.WrittenSpan)!;
        Assert.Equal("team/app", tags.Name);
        Assert.Equal(["1", "latest"], tags.Tags!);

        buffer.Clear();
        using (var json = new Utf8JsonWriter(buffer))
        {
            CatalogPage.Write(json, ["a", "b/c"]);
        }

        Assert.Equal("""{"repositories":["a","b/c"]}""", Encoding.UTF8.GetString(buffer.WrittenSpan));
        Assert.Equal(["a", "b/c"], CatalogPage.Parse(buffer.WrittenSpan)!.Repositories!);
    }

    [Fact]
    public async Task A_token_answer_written_by_the_token_endpoint_reads_back_in_the_client()
    {
        using var output = new MemoryStream();
        await new TokenResponse { Token = "t", AccessToken = "t", ExpiresIn = 900, IssuedAt = "2025-01-02T03:04:05Z" }.WriteAsync(output, CancellationToken.None);

        Assert.Equal("""{"token":"t","access_token":"t","expires_in":900,"issued_at":"2025-01-02T03:04:05Z"}""", Encoding.UTF8.GetString(output.ToArray()));
        Assert.Equal(900, TokenResponse.Parse(output.ToArray())!.ExpiresIn);
    }
}
